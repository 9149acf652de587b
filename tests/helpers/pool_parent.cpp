// Helper for test_pool_faults: a program that starts a Pool, reports its workers' pids on stdout
// ("PIDS p1 p2 ...", then "READY"), and keeps them busy with slow tasks until it is killed.
// argv[1]: number of workers (default 2).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ranges>
#include <thread>

#include "mpp/pool.hpp"

namespace {
int sleepy(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return x;
}
}  // namespace

int main(int argc, char** argv) {
  const unsigned n = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 2u;
  mpp::Pool pool(n);
  std::printf("PIDS");
  for (pid_t p : pool.worker_pids()) std::printf(" %d", static_cast<int>(p));
  std::printf("\nREADY\n");
  std::fflush(stdout);
  for (;;) (void)pool.map(sleepy, std::views::iota(0, 1000), 1);
}
