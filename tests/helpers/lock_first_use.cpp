// A fresh program whose threads use mpp for the first time (a Lock, an RLock, a Condition, and a
// Queue each creates: the queue registers a fork hook) while its main thread forks mpp::Process
// children that do the same. Whatever mpp sets up on first use must never leave a child stuck:
// a function-local static whose initialisation a fork caught half-way in another thread did (the
// child waited on the static's guard forever; issue 16 part 1).
// Used by test_sync (LockFirstUse) and by the chaos harness (its "first-lock" cases), each run
// being a new program because what mpp sets up on a program's first use happens once.
// argv[1]: threads (default 4); argv[2]: children (default 12).
// Exit status: 0 when every child did its work and ended, 2 when one hung (it is killed; "HUNG"
// on stderr), 3 when a child ended with an unexpected exit code.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "mpp/sync.hpp"

namespace {
// GCC 12's ASan allocator is not fork-safe: a fork while another thread is inside malloc copies
// the allocator's size-class lock held, and the child hangs in its first malloc (seen in CI: the
// child's stack ended in __sanitizer::SizeClassAllocator64::GetFromAllocator under the Queue's
// constructor; glibc's malloc takes its arena locks across fork, LLVM 17's ASan does too). So in
// sanitizer builds the threads leave out the one first use that allocates, the Queue; the children
// still make one, and the normal build checks the threads' Queue too.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kThreadsMayAllocate = false;
#else
constexpr bool kThreadsMayAllocate = true;
#endif

// What each thread and each child does: first lock, first recursive lock, first condition, first
// queue of its process.
void first_uses(mpp::Lock& lock, mpp::RLock& rlock, mpp::Condition& cond, bool queue = true) {
  lock.acquire();
  lock.release();
  rlock.acquire();
  rlock.acquire();
  rlock.release();
  rlock.release();
  cond.acquire();
  cond.notify_all();
  cond.release();
  if (!queue) return;
  mpp::Queue<int> q(mpp::QueueOptions{.capacity_bytes = 64 * 1024});
  q.put(1);
  (void)q.get();
}
}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  const int children = argc > 2 ? std::atoi(argv[2]) : 12;
  // Created before any thread; nothing here has taken a lock yet.
  mpp::Lock lock;
  mpp::RLock rlock;
  mpp::Condition cond;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      // Spread the first uses over the time the forks take (a fork costs 0.1-6 ms here), so
      // that some land while a fork is in progress.
      std::this_thread::sleep_for(std::chrono::microseconds(150 * i));
      first_uses(lock, rlock, cond, kThreadsMayAllocate);
    });
  }
  while (ready.load() != threads) std::this_thread::yield();
  std::vector<mpp::Process> procs;
  procs.reserve(static_cast<std::size_t>(children));
  for (int i = 0; i < children; ++i) procs.emplace_back([&] { first_uses(lock, rlock, cond); });
  go.store(true, std::memory_order_release);
  for (auto& p : procs) p.start();  // forks while the threads use mpp for the first time
  int status = 0;
  for (auto& p : procs) {
    if (!p.join(std::chrono::seconds(5))) {
      std::fprintf(stderr, "HUNG: child %d did not finish within 5 s\n", p.pid());
      p.kill();
      p.join();
      status = 2;
    } else if (p.exitcode() != 0 && status == 0) {
      std::fprintf(stderr, "child %d ended with %d\n", p.pid(), p.exitcode().value_or(-999));
      status = 3;
    }
  }
  for (auto& t : pool) t.join();
  return status;
}
