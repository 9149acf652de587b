// Tests for <mpp/sync.hpp>: exact totals under Lock across processes, robustness when a holder is
// SIGKILLed (child, parent and grandchild holders), misuse errors, and every primitive working
// between processes. No zombies after any test; every test runs under a watchdog.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/sync.hpp"
#include "sys/fault.hpp"
#include "sys/proc.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

// Shared scratch memory for results that children report to the test.
template <class T>
struct Shared {
  Shared() {
    void* m = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    p = new (m) T{};
  }
  ~Shared() { munmap(p, sizeof(T)); }
  T* operator->() const { return p; }
  T& operator*() const { return *p; }
  T* p;
};

// Forks a child that runs f() and _exits with its result (never returns into gtest).
pid_t spawn(const std::function<int()>& f) { return mpp::test::fork_child(f); }
int reap(pid_t pid) { return mpp::test::reap_child(pid); }

class SyncTest : public ::testing::Test {
 protected:
  void TearDown() override {
    auto z = mpp::test::zombie_children();
    EXPECT_TRUE(z.empty()) << "zombie children left: " << z.size();
  }
  mpp::test::Watchdog watchdog_{std::chrono::seconds(150), "sync test"};
};

// ---- Lock: exact totals ------------------------------------------------------------------------

class LockTotals : public SyncTest, public ::testing::WithParamInterface<int> {};

TEST_P(LockTotals, ProcessesTimesMillionLockedIncrementsAreExact) {
  const int nproc = GetParam();
  constexpr long kPerProcess = 1'000'000;
  mpp::Lock lock;
  // A plain (non-atomic) counter: only the lock makes the increments exact.
  Shared<long> counter;
  std::vector<pid_t> kids;
  for (int i = 0; i < nproc; ++i) {
    kids.push_back(spawn([&] {
      for (long k = 0; k < kPerProcess; ++k) {
        std::lock_guard g(lock);
        long v = *counter;
        *counter = v + 1;
      }
      return 0;
    }));
  }
  for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
  EXPECT_EQ(*counter, nproc * kPerProcess);
}

INSTANTIATE_TEST_SUITE_P(Workers, LockTotals, ::testing::Values(1, 2, 3, 4));

// ---- Lock: misuse and basics -------------------------------------------------------------------

TEST_F(SyncTest, LockReacquireByOwnerThrowsInsteadOfDeadlocking) {
  mpp::Lock lock;
  lock.acquire();
  EXPECT_THROW(lock.acquire(), std::logic_error);
  EXPECT_THROW((void)lock.try_acquire(), std::logic_error);
  EXPECT_THROW((void)lock.acquire(10ms), std::logic_error);
  lock.release();
  EXPECT_TRUE(lock.try_acquire());
  lock.release();
}

TEST_F(SyncTest, LockReleaseWithoutHoldingThrows) {
  mpp::Lock lock;
  EXPECT_THROW(lock.release(), std::logic_error);
  lock.acquire();
  std::thread([&] { EXPECT_THROW(lock.release(), std::logic_error); }).join();
  lock.release();
  EXPECT_THROW(lock.release(), std::logic_error);
}

TEST_F(SyncTest, LockHeldByChildTimesOutThenIsFree) {
  mpp::Lock lock;
  mpp::Event held, done;
  pid_t kid = spawn([&] {
    lock.acquire();
    held.set();
    done.wait();
    lock.release();
    return 0;
  });
  held.wait();
  EXPECT_FALSE(lock.try_acquire());
  EXPECT_FALSE(lock.acquire(30ms));
  done.set();
  EXPECT_TRUE(lock.acquire(10s));
  EXPECT_FALSE(lock.owner_died());
  lock.release();
  EXPECT_EQ(reap(kid), 0);
}

TEST_F(SyncTest, CopiesOfALockHandleShareTheLock) {
  mpp::Lock a;
  mpp::Lock b = a;
  a.acquire();
  std::thread([&] { EXPECT_FALSE(b.try_acquire()); }).join();
  b.release();  // same lock, same owner thread
  std::thread([&] {
    EXPECT_TRUE(b.try_acquire());
    b.release();
  }).join();
}

TEST_F(SyncTest, ForkedChildDoesNotOwnTheParentsLock) {
  mpp::Lock lock;
  lock.acquire();
  pid_t kid = spawn([&] {
    bool got = lock.try_acquire();
    bool release_refused = false;
    try {
      lock.release();
    } catch (const std::logic_error&) {
      release_refused = true;
    }
    return (!got && release_refused) ? 0 : 1;
  });
  EXPECT_EQ(reap(kid), 0);
  lock.release();
}

// ---- Lock: robustness --------------------------------------------------------------------------

TEST_F(SyncTest, ChildKilledHoldingLockDoesNotBlockAndNextHolderIsTold) {
  mpp::Lock lock;
  mpp::Event held;
  Shared<long> state;  // invariant: even, except mid-update
  pid_t kid = spawn([&] {
    lock.acquire();
    *state = 1;  // half-way through an update
    held.set();
    pause();
    return 0;
  });
  held.wait();
  kill(kid, SIGKILL);
  EXPECT_EQ(reap(kid), -SIGKILL);
  ASSERT_TRUE(lock.acquire(20s)) << "the lock of a dead holder was never recovered";
  EXPECT_TRUE(lock.owner_died());
  EXPECT_EQ(lock.owner_deaths(), 1u);
  if (lock.owner_died()) *state = 0;  // the repair a user would do
  lock.release();
  // Recovered for good: later acquisitions are ordinary ones.
  lock.acquire();
  EXPECT_FALSE(lock.owner_died());
  EXPECT_EQ(*state, 0);
  lock.release();
}

// Makes the kernel's next pid `pid` (root in this pid namespace only); false where it cannot.
bool set_next_pid(pid_t pid) {
  FILE* f = std::fopen("/proc/sys/kernel/ns_last_pid", "w");
  if (f == nullptr) return false;
  const bool ok = std::fprintf(f, "%d", static_cast<int>(pid - 1)) > 0;
  return std::fclose(f) == 0 && ok;
}

// A holder that died while the kernel gave its id to a new process: the lock word names the
// holder by thread id and start time (shm::OwnerLock), so the waiter sees that the live process
// with that id is another one and takes the lock over. With the thread id alone (before issue 21
// unified the ring's and mpp::Lock's lock words) it waited for the new process forever.
TEST_F(SyncTest, LockHeldByADeadProcessWhosePidWasGivenToAnotherIsTakenOver) {
  mpp::Lock lock;
  mpp::Event held;
  const pid_t holder = spawn([&] {
    lock.acquire();  // from the child's main thread: the lock word holds its pid
    held.set();
    pause();
    return 0;
  });
  ASSERT_TRUE(held.wait(20s));
  const std::uint32_t holder_start = mpp::sys::process_start_time(holder);
  ASSERT_NE(holder_start, 0u);
  kill(holder, SIGKILL);
  ASSERT_EQ(reap(holder), -SIGKILL);
  // A new process gets the dead holder's pid (other processes of the machine may take it first:
  // try again), and a start time that differs in the bits the word keeps (a clock tick later).
  pid_t heir = -1;
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (!set_next_pid(holder)) GTEST_SKIP() << "cannot write /proc/sys/kernel/ns_last_pid";
    heir = spawn([] {
      pause();
      return 0;
    });
    if (heir == holder && ((mpp::sys::process_start_time(heir) ^ holder_start) & 0x1ffu) != 0)
      break;
    kill(heir, SIGKILL);
    reap(heir);
    heir = -1;
    std::this_thread::sleep_for(10ms);  // a clock tick, for the start time to move on
  }
  ASSERT_EQ(heir, holder) << "could not give the holder's pid to a new process";
  ASSERT_TRUE(mpp::sys::process_alive(heir));
  EXPECT_TRUE(lock.acquire(20s)) << "waited for a new process that got the dead holder's pid";
  EXPECT_TRUE(lock.owner_died());
  if (lock.owner_died()) lock.release();
  kill(heir, SIGKILL);
  EXPECT_EQ(reap(heir), -SIGKILL);
}

TEST_F(SyncTest, ParentKilledHoldingLockItsChildRecovers) {
  mpp::Lock lock;
  Shared<std::atomic<int>> result;  // 1: child recovered and was told; 2: not told
  Shared<std::atomic<pid_t>> grandchild;
  mpp::Event child_ready;
  // The test's child plays the "parent" that holds the lock, forks its own child, and is killed.
  pid_t holder = spawn([&] {
    lock.acquire();
    pid_t gc = mpp::sys::fork_or_throw("fork");
    if (gc == 0) {
      child_ready.set();
      lock.acquire();  // blocks until the holder (our parent) dies
      *result = lock.owner_died() ? 1 : 2;
      lock.release();
      _exit(0);
    }
    *grandchild = gc;
    pause();
    return 0;
  });
  child_ready.wait();
  while (grandchild->load() == 0) std::this_thread::sleep_for(1ms);
  kill(holder, SIGKILL);
  EXPECT_EQ(reap(holder), -SIGKILL);
  // The grandchild was re-parented away from us: wait for its report, not for its exit status.
  for (int i = 0; i < 20000 && result->load() == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(result->load(), 1);
  EXPECT_TRUE(mpp::test::gone_within(grandchild->load(), 10s));
  lock.acquire();
  EXPECT_FALSE(lock.owner_died());
  lock.release();
}

TEST_F(SyncTest, GrandchildKilledHoldingLockGrandparentRecovers) {
  mpp::Lock lock;
  Shared<std::atomic<pid_t>> holder;
  mpp::Event held;
  pid_t kid = spawn([&] {
    pid_t gc = mpp::sys::fork_or_throw("fork");
    if (gc == 0) {
      lock.acquire();
      held.set();
      pause();
      _exit(0);
    }
    *holder = gc;
    int st = 0;
    while (waitpid(gc, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 1;
  });
  held.wait();
  while (holder->load() == 0) std::this_thread::sleep_for(1ms);
  ASSERT_GT(holder->load(), 0);
  kill(holder->load(), SIGKILL);
  EXPECT_EQ(reap(kid), 0);
  ASSERT_TRUE(lock.acquire(20s));
  EXPECT_TRUE(lock.owner_died());
  lock.release();
  EXPECT_FALSE(lock.owner_died());
}

TEST_F(SyncTest, ThreadExitingWhileHoldingLockIsAlsoDetected) {
  mpp::Lock lock;
  std::thread([&] { lock.acquire(); }).join();
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.owner_died());
  lock.release();
}

// ---- RLock -------------------------------------------------------------------------------------

TEST_F(SyncTest, RLockIsReentrantAndNeedsMatchingReleases) {
  mpp::RLock r;
  r.acquire();
  r.acquire();
  EXPECT_TRUE(r.try_acquire());
  r.release();
  r.release();
  pid_t kid = spawn([&] { return r.try_acquire() ? 1 : 0; });  // still held once
  EXPECT_EQ(reap(kid), 0);
  r.release();
  EXPECT_THROW(r.release(), std::logic_error);
  pid_t kid2 = spawn([&] {
    if (!r.try_acquire()) return 1;
    r.release();
    return 0;
  });
  EXPECT_EQ(reap(kid2), 0);
}

TEST_F(SyncTest, RLockHolderKilledIsRecovered) {
  mpp::RLock r;
  mpp::Event held;
  pid_t kid = spawn([&] {
    r.acquire();
    r.acquire();
    held.set();
    pause();
    return 0;
  });
  held.wait();
  kill(kid, SIGKILL);
  reap(kid);
  ASSERT_TRUE(r.acquire(20s));
  EXPECT_TRUE(r.owner_died());
  r.acquire();  // re-entry keeps the flag until the final release
  r.release();
  EXPECT_TRUE(r.owner_died());
  r.release();
  EXPECT_FALSE(r.owner_died());
}

// ---- Semaphore ---------------------------------------------------------------------------------

class SemaphoreLimit : public SyncTest, public ::testing::WithParamInterface<int> {};

TEST_P(SemaphoreLimit, NeverMoreHoldersThanTheValue) {
  const int nproc = GetParam();
  constexpr unsigned kSlots = 2;
  mpp::Semaphore sem(kSlots);
  struct Counts {
    std::atomic<int> inside{0};
    std::atomic<int> max_inside{0};
    std::atomic<long> passes{0};
  };
  Shared<Counts> c;
  std::vector<pid_t> kids;
  for (int i = 0; i < nproc; ++i) {
    kids.push_back(spawn([&] {
      for (int k = 0; k < 2000; ++k) {
        sem.acquire();
        int now = c->inside.fetch_add(1) + 1;
        int m = c->max_inside.load();
        while (now > m && !c->max_inside.compare_exchange_weak(m, now)) {
        }
        if (k % 64 == 0) std::this_thread::yield();
        c->inside.fetch_sub(1);
        c->passes.fetch_add(1);
        sem.release();
      }
      return 0;
    }));
  }
  for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
  EXPECT_LE(c->max_inside.load(), static_cast<int>(kSlots));
  EXPECT_EQ(c->passes.load(), 2000L * nproc);
  EXPECT_EQ(sem.get_value(), kSlots);
}

INSTANTIATE_TEST_SUITE_P(Workers, SemaphoreLimit, ::testing::Values(1, 3, 5));

TEST_F(SyncTest, SemaphoreTimeoutAndCrossProcessRelease) {
  mpp::Semaphore sem(0);
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_FALSE(sem.acquire(20ms));
  pid_t kid = spawn([&] {
    sem.release();
    return 0;
  });
  EXPECT_TRUE(sem.acquire(20s));
  EXPECT_EQ(reap(kid), 0);
  EXPECT_EQ(sem.get_value(), 0u);
}

TEST_F(SyncTest, BoundedSemaphoreRefusesReleaseBeyondInitialValue) {
  mpp::BoundedSemaphore b(2);
  EXPECT_THROW(b.release(), std::logic_error);
  EXPECT_EQ(b.get_value(), 2u);
  b.acquire();
  b.release();
  EXPECT_THROW(b.release(), std::logic_error);
  mpp::BoundedSemaphore zero(0);
  EXPECT_THROW(zero.release(), std::logic_error);
  mpp::Semaphore unbounded(0);
  unbounded.release();
  unbounded.release();
  EXPECT_EQ(unbounded.get_value(), 2u);
}

// ---- Event -------------------------------------------------------------------------------------

TEST_F(SyncTest, EventWakesEveryWaitingProcess) {
  for (int nproc : {1, 4}) {
    mpp::Event go;
    mpp::Semaphore ready(0);
    std::vector<pid_t> kids;
    for (int i = 0; i < nproc; ++i) {
      kids.push_back(spawn([&] {
        ready.release();
        go.wait();
        return go.is_set() ? 0 : 1;
      }));
    }
    for (int i = 0; i < nproc; ++i) ready.acquire();
    EXPECT_FALSE(go.is_set());
    go.set();
    for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
  }
}

TEST_F(SyncTest, EventWaitTimesOutAndClearResets) {
  mpp::Event e;
  EXPECT_FALSE(e.wait(20ms));
  EXPECT_FALSE(e.wait(0ms));
  e.set();
  EXPECT_TRUE(e.wait(0ms));
  e.wait();
  e.clear();
  EXPECT_FALSE(e.is_set());
  EXPECT_FALSE(e.wait(5ms));
}

// ---- Condition ---------------------------------------------------------------------------------

TEST_F(SyncTest, ConditionProducerConsumerAcrossProcesses) {
  for (int nproc : {1, 3}) {
    mpp::Condition cond;
    struct Box {
      long items = 0;
      long consumed = 0;
      bool finished = false;
    };
    Shared<Box> box;
    constexpr long kItems = 3000;
    std::vector<pid_t> kids;
    for (int i = 0; i < nproc; ++i) {
      kids.push_back(spawn([&] {
        for (;;) {
          std::unique_lock g(cond);
          cond.wait_for([&] { return box->items > 0 || box->finished; });
          if (box->items == 0) return 0;
          --box->items;
          ++box->consumed;
        }
      }));
    }
    for (long k = 0; k < kItems; ++k) {
      std::lock_guard g(cond);
      ++box->items;
      cond.notify();
    }
    {
      std::lock_guard g(cond);
      box->finished = true;
      cond.notify_all();
    }
    for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
    EXPECT_EQ(box->consumed, kItems);
  }
}

TEST_F(SyncTest, ConditionWaitRequiresTheLockAndTimesOut) {
  mpp::Condition cond;
  EXPECT_THROW(cond.wait(), std::logic_error);
  EXPECT_THROW((void)cond.wait(1ms), std::logic_error);
  std::lock_guard g(cond);
  EXPECT_FALSE(cond.wait(20ms));
  EXPECT_FALSE(cond.wait_for([] { return false; }, 20ms));
  EXPECT_TRUE(cond.wait_for([] { return true; }, 20ms));
  // Still held after the waits: a second acquire by this thread is refused.
  EXPECT_THROW(cond.acquire(), std::logic_error);
}

TEST_F(SyncTest, ConditionSharesAnExistingLock) {
  mpp::Lock lock;
  mpp::Condition cond(lock);
  lock.acquire();
  EXPECT_THROW(cond.acquire(), std::logic_error);  // it is the same lock
  EXPECT_FALSE(cond.wait(1ms));
  lock.release();
}

// ---- Barrier -----------------------------------------------------------------------------------

class BarrierRounds : public SyncTest, public ::testing::WithParamInterface<int> {};

TEST_P(BarrierRounds, NobodyLeavesARoundBeforeEveryoneArrived) {
  const int parties = GetParam();
  constexpr int kRounds = 300;
  mpp::Barrier barrier(static_cast<unsigned>(parties));
  struct Slots {
    std::atomic<int> round[16];
  };
  Shared<Slots> s;
  std::vector<pid_t> kids;
  for (int i = 0; i < parties; ++i) {
    kids.push_back(spawn([&, i] {
      for (int r = 1; r <= kRounds; ++r) {
        s->round[i].store(r);
        barrier.wait();
        for (int j = 0; j < parties; ++j)
          if (s->round[j].load() < r) return 1;  // someone had not arrived yet
        barrier.wait();  // nobody starts round r+1 before all checked round r
      }
      return 0;
    }));
  }
  for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
  EXPECT_EQ(barrier.parties(), static_cast<unsigned>(parties));
  EXPECT_EQ(barrier.n_waiting(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Parties, BarrierRounds, ::testing::Values(1, 2, 3, 5));

TEST_F(SyncTest, BarrierRejectsBadPartyCounts) {
  EXPECT_THROW(mpp::Barrier(0), std::invalid_argument);
  EXPECT_THROW(mpp::Barrier(70000), std::invalid_argument);
}

TEST_F(SyncTest, EveryPrimitiveReportsAMappingFailure) {
  using mpp::sys::fault::Op;
  auto fails = [](auto make) {
    mpp::sys::fault::Scoped f(Op::mmap, ENOMEM);
    try {
      make();
    } catch (const std::system_error& e) {
      return e.code().value() == ENOMEM;
    }
    return false;
  };
  EXPECT_TRUE(fails([] { mpp::Lock l; }));
  EXPECT_TRUE(fails([] { mpp::RLock l; }));
  EXPECT_TRUE(fails([] { mpp::Semaphore s(2); }));
  EXPECT_TRUE(fails([] { mpp::BoundedSemaphore s(2); }));
  EXPECT_TRUE(fails([] { mpp::Event e; }));
  EXPECT_TRUE(fails([] { mpp::Condition c; }));
  EXPECT_TRUE(fails([] { mpp::Barrier b(2); }));
}

// ---- with mpp::Process -------------------------------------------------------------------------

TEST_F(SyncTest, PrimitivesWorkAsProcessArguments) {
  mpp::Lock lock;
  mpp::Event done;
  Shared<long> n;
  std::vector<std::unique_ptr<mpp::Process>> ps;
  for (int i = 0; i < 3; ++i) {
    ps.push_back(std::make_unique<mpp::Process>(
        [&n](mpp::Lock l, mpp::Event d) {
          for (int k = 0; k < 1000; ++k) {
            std::lock_guard g(l);
            ++*n;
          }
          d.set();
        },
        lock, done));
    ps.back()->start();
  }
  for (auto& p : ps) {
    p->join();
    EXPECT_EQ(p->exitcode(), 0);
  }
  EXPECT_TRUE(done.is_set());
  EXPECT_EQ(*n, 3000);
}

}  // namespace

// ---- first use of a lock while another thread forks (issue 16 part 1) --------------------------

// Runs tests/helpers/lock_first_use.cpp (a fresh program each time: what mpp sets up on a
// program's first lock happens once per program) and returns its exit status (2: a child hung).
int run_lock_first_use(int threads, int children) {
  const std::string path = std::string(MPP_HELPER_DIR) + "/mpp_helper_lock_first_use";
  const std::string t = std::to_string(threads), c = std::to_string(children);
  const pid_t pid = fork();
  if (pid == 0) {
    execl(path.c_str(), path.c_str(), t.c_str(), c.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return reap(pid);
}

class LockFirstUse : public SyncTest, public ::testing::WithParamInterface<int> {};

// Threads take their first lock while the main thread forks children that take the same lock. On
// the code before the fix (a function-local static registering pthread_atfork on the first lock)
// 22 of 40 runs of the helper with 8 threads hung; here 25 fresh programs per thread count must
// all end with every child done.
TEST_P(LockFirstUse, ChildrenForkedWhileThreadsTakeTheirFirstLockNeverHang) {
  for (int run = 0; run < 25; ++run) {
    ASSERT_EQ(run_lock_first_use(GetParam(), 12), 0) << "run " << run;
  }
}
INSTANTIATE_TEST_SUITE_P(Threads, LockFirstUse, ::testing::Values(2, 8));
