// Helper for test_start_method: programs the test runs and watches from outside.
//   no-init      creates a forkserver Pool without mpp::init: prints "LOGIC <what>" on
//                std::logic_error, exits 0 then (3 if anything else happened)
//   serve        mpp::init, a forkserver Pool(2) used once, prints "SERVER <pid>" and
//                "WORKERS <p1> <p2>", then "READY", then sleeps until killed
//   warn         starts a thread, then a fork Pool(1) (the warning goes to stderr); exits 0
//   warn-quiet   the same, with MPP_NO_FORK_WARNING=1 set before
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mpp/pool.hpp"
#include "process/forker.hpp"

namespace {
int square(int x) { return x * x; }

int threaded_pool() {
  std::mutex m;
  std::condition_variable cv;
  bool stop = false;
  std::thread t([&] {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return stop; });
  });
  int rc = 0;
  {
    mpp::Pool pool(mpp::PoolOptions{.processes = 1, .start_method = mpp::StartMethod::fork});
    rc = pool.apply(square, 3) == 9 ? 0 : 4;
  }
  {
    std::lock_guard lock(m);
    stop = true;
  }
  cv.notify_one();
  t.join();
  return rc;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "no-init") {
    try {
      mpp::Pool pool(
          mpp::PoolOptions{.processes = 1, .start_method = mpp::StartMethod::forkserver});
    } catch (const std::logic_error& e) {
      std::printf("LOGIC %s\n", e.what());
      return 0;
    } catch (...) {
    }
    return 3;
  }
  mpp::init(argc, argv);
  if (mode == "serve") {
    mpp::Pool pool(mpp::PoolOptions{.processes = 2, .start_method = mpp::StartMethod::forkserver});
    if (pool.apply(square, 4) != 16) return 4;
    std::printf("SERVER %d\nWORKERS", static_cast<int>(mpp::detail::Forker::server_pid()));
    for (pid_t p : pool.worker_pids()) std::printf(" %d", static_cast<int>(p));
    std::printf("\nREADY\n");
    std::fflush(stdout);
    for (;;) ::pause();
  }
  if (mode == "warn") return threaded_pool();
  if (mode == "warn-quiet") {
    ::setenv("MPP_NO_FORK_WARNING", "1", 1);
    return threaded_pool();
  }
  return 2;
}
