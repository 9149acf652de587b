// Rank 0 maps slow tasks over the worker ranks with a task_timeout while the test cuts one host
// off the network (tests/mpi/netns_test.sh). MPI never notices a partition; the pool must turn it
// into an error for the task that rank was running, finish the rest elsewhere, and not hang.
#include <chrono>
#include <cstdio>
#include <mpp/mpi.hpp>
#include <ranges>
#include <thread>

namespace {
int slow(int i) {
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return i;
}
}  // namespace
MPP_MPI_REGISTER(slow);

int main() {
  mpp::mpi::PoolOptions o;
  o.task_timeout = std::chrono::milliseconds(1500);
  mpp::mpi::Pool pool(o);
  std::printf("ready: %u worker ranks\n", pool.processes());
  std::fflush(stdout);
  int lost = 0;
  int done = 0;
  auto results = pool.imap(slow, std::views::iota(0, 40), 1);
  for (auto it = results.begin(); it != results.end(); ++it) {
    try {
      (void)*it;
      ++done;
    } catch (const mpp::WorkerLost& e) {
      ++lost;
      std::printf("partition detected: %s\n", e.what());
      std::fflush(stdout);
    }
  }
  std::printf("done: %d results, %d lost, %u worker ranks left\n", done, lost, pool.processes());
  std::fflush(stdout);
  return done + lost == 40 && lost >= 1 ? 0 : 1;
}
