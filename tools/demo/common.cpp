#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo.hpp"

namespace demo {

namespace {
double cpu_seconds() {
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return secs(self.ru_utime) + secs(self.ru_stime) + secs(kids.ru_utime) + secs(kids.ru_stime);
}
}  // namespace

Row timed(const std::string& workload, const std::string& variant,
          const std::function<double()>& fn) {
  Row r;
  r.workload = workload;
  r.variant = variant;
  double c0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  r.words = fn();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = cpu_seconds() - c0;
  r.verified = true;  // fn throws when its output is wrong
  return r;
}

Sample time_it(const std::function<void()>& fn) {
  Sample s;
  double c0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  fn();
  s.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.cpu_s = cpu_seconds() - c0;
  return s;
}

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}
}  // namespace

std::vector<Row> measure(const std::string& workload, const std::vector<Variant>& variants,
                         double words, const Options& o) {
  std::vector<std::vector<Sample>> samples(variants.size());
  std::optional<std::uint64_t> reference;  // fingerprint of the same_output variants
  auto check = [&](const Variant& v, const Sample& s) {
    if (!v.same_output) return;
    if (!reference) reference = s.fingerprint;
    if (s.fingerprint != *reference)
      throw std::runtime_error(workload + ": " + v.name + " gave other words (fingerprint " +
                               std::to_string(s.fingerprint) + ", expected " +
                               std::to_string(*reference) + ")");
  };
  for (int round = 0; round < o.warmup + std::max(1, o.repeats); ++round) {
    for (std::size_t i = 0; i < variants.size(); ++i) {
      Sample s = variants[i].run();
      check(variants[i], s);
      if (round >= o.warmup) samples[i].push_back(s);
    }
  }
  std::vector<Row> rows;
  for (std::size_t i = 0; i < variants.size(); ++i) {
    Row r;
    r.workload = workload;
    r.variant = variants[i].name;
    std::vector<double> wall, cpu;
    for (const auto& s : samples[i]) {
      wall.push_back(s.wall_s);
      cpu.push_back(s.cpu_s);
    }
    r.wall_s = median(wall);
    r.cpu_s = median(cpu);
    r.wall_min = *std::min_element(wall.begin(), wall.end());
    r.wall_max = *std::max_element(wall.begin(), wall.end());
    r.runs = static_cast<int>(wall.size());
    r.words = words;
    r.verified = true;  // each run throws when its output is wrong
    r.note = variants[i].note;
    rows.push_back(r);
  }
  return rows;
}

std::optional<Row> run_python(const std::string& workload, const std::string& script,
                              const std::string& args, double words, int scale) {
  const char* python = "/usr/bin/python3";
  if (scale <= 0 || access(python, X_OK) != 0) return std::nullopt;
  std::string cmd = std::string(python) + " " + MPP_DEMO_PYTHON_DIR + "/" + script + " " + args;
  double secs = -1;
  Row r = timed(workload, "Python multiprocessing (1/" + std::to_string(scale) + " size)", [&] {
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr) return 0.0;
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) secs = std::strtod(line, nullptr);
    if (pclose(f) != 0) secs = -1;
    return words;
  });
  if (secs <= 0) return std::nullopt;
  r.wall_s = r.wall_min = r.wall_max = secs;
  r.note = "the wiki's Python code, same shape; 1 run";
  return r;
}

void print_table(const std::vector<Row>& rows, unsigned cpus) {
  int runs = 0;
  for (const auto& r : rows) runs = std::max(runs, r.runs);
  std::printf(
      "\nwall s and cpu s: medians of %d timed runs per variant, after warm-up; the variants of a\n"
      "workload run interleaved, each run from the same state (the previous run's output freed,\n"
      "its files removed and flushed); [min-max] is the range of the timed runs.\n",
      runs);
  std::printf("%-7s %-36s %9s %17s %9s %13s %8s %11s  %s\n", "work", "variant", "wall s",
              "[min-max]", "cpu s", "words/s", "speedup", "efficiency", "output");
  std::string last;
  double base = 0;
  for (const auto& r : rows) {
    if (r.workload != last) {
      last = r.workload;
      base = r.wall_s;  // each workload's first row is its sequential baseline
    }
    double speedup = r.wall_s > 0 ? base / r.wall_s : 0;
    // Parallel efficiency: speedup over the cores that could actually run in parallel.
    double eff = speedup / static_cast<double>(cpus);
    bool sequential = r.variant.rfind("sequential", 0) == 0;
    char range[40];
    std::snprintf(range, sizeof range, "[%.3f-%.3f]", r.wall_min, r.wall_max);
    std::printf(
        "%-7s %-36s %9.3f %17s %9.3f %13.0f %7.2fx %10s  %s%s\n", r.workload.c_str(),
        r.variant.c_str(), r.wall_s, range, r.cpu_s, r.wall_s > 0 ? r.words / r.wall_s : 0, speedup,
        sequential ? "-" : (std::to_string(static_cast<int>(eff * 100 + 0.5)) + "%").c_str(),
        r.variant.rfind("Python", 0) == 0 ? "-"
        : r.verified                      ? "verified"
                                          : "NOT VERIFIED",
        r.note.empty() ? "" : ("; " + r.note).c_str());
  }
  std::printf("\n(%u CPUs available; efficiency = speedup / CPUs)\n", cpus);
  // mpp against the wiki's Python, workload by workload: best parallel mpp rate over Python's rate.
  for (const auto& py : rows) {
    if (py.variant.rfind("Python", 0) != 0 || py.wall_s <= 0) continue;
    double best = 0;
    for (const auto& r : rows)
      if (r.workload == py.workload && r.variant.rfind("Python", 0) != 0 &&
          r.variant.rfind("sequential", 0) != 0 && r.wall_s > 0)
        best = std::max(best, r.words / r.wall_s);
    if (best > 0)
      std::printf("%-7s mpp %.0f words/s vs Python %.0f words/s: %.0fx faster\n",
                  py.workload.c_str(), best, py.words / py.wall_s, best / (py.words / py.wall_s));
  }
}

}  // namespace demo
