#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

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
  r.wall_s = secs;
  r.note = "the wiki's Python code, same shape";
  return r;
}

void print_table(const std::vector<Row>& rows, unsigned cpus) {
  std::printf("\n%-7s %-36s %9s %9s %13s %8s %11s  %s\n", "work", "variant", "wall s", "cpu s",
              "words/s", "speedup", "efficiency", "output");
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
    std::printf(
        "%-7s %-36s %9.3f %9.3f %13.0f %7.2fx %10s  %s%s\n", r.workload.c_str(), r.variant.c_str(),
        r.wall_s, r.cpu_s, r.wall_s > 0 ? r.words / r.wall_s : 0, speedup,
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
