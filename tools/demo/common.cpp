#include <sys/resource.h>

#include <chrono>
#include <cstdio>

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

void print_table(const std::vector<Row>& rows, unsigned cpus) {
  std::printf("\n%-7s %-26s %9s %9s %13s %8s %11s  %s\n", "work", "variant", "wall s", "cpu s",
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
        "%-7s %-26s %9.3f %9.3f %13.0f %7.2fx %10s  %s%s\n", r.workload.c_str(), r.variant.c_str(),
        r.wall_s, r.cpu_s, r.wall_s > 0 ? r.words / r.wall_s : 0, speedup,
        sequential ? "-" : (std::to_string(static_cast<int>(eff * 100 + 0.5)) + "%").c_str(),
        r.verified ? "verified" : "NOT VERIFIED", r.note.empty() ? "" : ("; " + r.note).c_str());
  }
  std::printf("\n(%u CPUs available; efficiency = speedup / CPUs)\n", cpus);
}

}  // namespace demo
