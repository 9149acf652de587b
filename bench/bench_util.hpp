// Small helpers shared by mpp's benchmark programs: medians of repeated runs, and running the
// Python peer scripts (Debian's /usr/bin/python3) to compare in the same run.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <class F>
double seconds(F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs `python3 script args` and returns the last number it printed on stdout, or -1 when Python
// (or the script) is missing or fails: benchmarks then print "n/a" for that peer.
inline double python_peer(const std::string& script, const std::string& args) {
  const char* py = "/usr/bin/python3";
  std::string path = std::string(MPP_BENCH_DIR) + "/" + script;
  std::string cmd = std::string(py) + " " + path + " " + args + " 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return -1;
  double v = -1;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    char* end = nullptr;
    double x = std::strtod(line, &end);
    if (end != line) v = x;
  }
  return pclose(f) == 0 ? v : -1;
}

inline void print_ratio_line(const char* what, double mpp_value, double peer_value,
                             const char* unit, bool lower_is_better = true) {
  if (peer_value <= 0) {
    std::printf("  %-44s mpp %10.3f %-6s peer n/a\n", what, mpp_value, unit);
    return;
  }
  double ratio = lower_is_better ? peer_value / mpp_value : mpp_value / peer_value;
  std::printf("  %-44s mpp %10.3f %-6s peer %10.3f %-6s  mpp is %.2fx %s\n", what, mpp_value, unit,
              peer_value, unit, ratio, ratio >= 1 ? "better" : "worse");
}

}  // namespace bench

namespace bench {

// Machine-readable line for bench/report's plots: "RESULT <plot> <series> <x> <y>".
// plot: speedup (x = workers, y = speedup over sequential), throughput (x = item bytes,
// y = MB/s), latency (x = 0, y = microseconds per round trip; series names the mechanism).
inline void result(const char* plot, const std::string& series, double x, double y) {
  std::printf("RESULT %s %s %.6g %.6g\n", plot, series.c_str(), x, y);
}

}  // namespace bench
