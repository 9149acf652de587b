// N processes increment one shared counter under its lock (Python's Value + get_lock()).
//
//   Python:                                   mpp:
//   counter = Value('l', 0)                   mpp::Value<long> counter(0);
//   def work(c, n):                           auto work = [](mpp::Value<long> c, long n) {
//       for _ in range(n):                      for (long i = 0; i < n; ++i) {
//           with c.get_lock():                    std::lock_guard g(c.get_lock());
//               c.value += 1                      c.set(c.get() + 1);
//                                               }};
//
// Usage: shared_counter [processes=4] [increments per process=1000000]
// Prints the total and exits 1 if it is not exactly processes * increments.
// test-args: 3 200000
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mpp/mpp.hpp>
#include <mpp/shared.hpp>
#include <mutex>
#include <vector>

int main(int argc, char** argv) {
  const int procs = argc > 1 ? std::atoi(argv[1]) : 4;
  const long per = argc > 2 ? std::atol(argv[2]) : 1'000'000;
  if (procs < 1 || per < 0) {
    std::fprintf(stderr, "usage: shared_counter [processes>=1] [increments>=0]\n");
    return 2;
  }

  mpp::Value<long> counter(0);  // lives in shared memory; children see the same object

  auto work = [](mpp::Value<long> c, long n) {
    for (long i = 0; i < n; ++i) {
      std::lock_guard g(c.get_lock());  // compound update: hold the lock across get and set
      c.set(c.get() + 1);               // get/set reuse the caller's hold: no deadlock
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<mpp::Process>> ps;
  for (int i = 0; i < procs; ++i) {
    ps.push_back(std::make_unique<mpp::Process>(work, counter, per));
    ps.back()->start();
  }
  for (auto& p : ps) p->join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const long expected = procs * per;
  std::printf("%d processes x %ld locked increments = %ld (expected %ld) in %.3f s\n", procs, per,
              counter.get(), expected, s);
  // Without the lock the same loop loses updates: c.set(c.get() + 1) is not atomic on its own.
  return counter.get() == expected ? 0 : 1;
}
