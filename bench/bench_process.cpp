// Process start + join against raw fork + waitpid (the floor), and Python's
// multiprocessing.Process (fork context), in one run. Alternating rounds, medians.
//
// Usage: bench_process [rounds=15] [per_round=40]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <mpp/process.hpp>
#include <string>
#include <vector>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::stoi(argv[1]) : 15;
  const int per_round = argc > 2 ? std::stoi(argv[2]) : 40;
  std::vector<double> raw, mpp_times, ratios;
  for (int r = 0; r < rounds; ++r) {
    double t_raw = bench::seconds([&] {
                     for (int i = 0; i < per_round; ++i) {
                       pid_t pid = fork();
                       if (pid == 0) _exit(0);
                       int st;
                       waitpid(pid, &st, 0);
                     }
                   }) /
                   per_round;
    double t_mpp = bench::seconds([&] {
                     for (int i = 0; i < per_round; ++i) {
                       mpp::Process p([] {});
                       p.start();
                       p.join();
                     }
                   }) /
                   per_round;
    raw.push_back(t_raw * 1e6);
    mpp_times.push_back(t_mpp * 1e6);
    ratios.push_back(t_mpp / t_raw);
  }
  double py = bench::python_peer("process_peer.py", std::to_string(per_round * 5));
  std::printf("bench_process: start + join of a child that exits at once (%d rounds x %d)\n",
              rounds, per_round);
  std::printf("  raw fork+waitpid         median %8.1f us\n", bench::median(raw));
  std::printf("  mpp::Process start+join  median %8.1f us\n", bench::median(mpp_times));
  std::printf("  ratio mpp / raw (median of per-round ratios): %.3f  (target <= 1.3)\n",
              bench::median(ratios));
  if (py > 0) {
    std::printf("  Python multiprocessing.Process (fork) median %8.1f us  -> mpp is %.1fx faster\n",
                py, py / bench::median(mpp_times));
  } else {
    std::printf("  Python peer: n/a (/usr/bin/python3 missing)\n");
  }
  return 0;
}
