// Fault tests of <mpp/pool.hpp>: workers that die (SIGKILL, segfault, abort, _exit(0)) mid-task,
// inputs whose decoder crashes the worker, results the parent cannot decode, tasks that throw
// (SystemExit too), task_timeout, an input range that throws, terminate() with a long queue,
// the parent SIGKILLed or interrupted (SIGINT). Each runs under a watchdog, at several worker
// counts, and checks that no worker, zombie or fd is left behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <new>
#include <ranges>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "brittle_results.hpp"
#include "mpp/pool.hpp"
#include "mpp/process.hpp"
#include "pool_fixture.hpp"
#include "sys/fault.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

using mpp::test::shared_mappings;

constexpr int kBad = 37;  // the input index that misbehaves

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

enum Fault { kSigkill, kSegv, kAbort, kExit0 };

template <Fault F>
int faulty(int x) {
  if (x == kBad) {
    if constexpr (F == kSigkill) raise(SIGKILL);
    if constexpr (F == kSegv) raise(SIGSEGV);
    if constexpr (F == kAbort) std::abort();
    if constexpr (F == kExit0) _exit(0);
  }
  return x * 2;
}

bool names_frame(const std::vector<std::string>& stack, const std::string& fn, std::size_t within) {
  for (std::size_t i = 0; i < stack.size() && i < within; ++i) {
    if (stack[i].find(fn) != std::string::npos) return true;
  }
  return false;
}

volatile int* volatile g_null = nullptr;
[[gnu::noinline]] int pool_crash_here(int x) {
  if (x == kBad) *g_null = x;  // SIGSEGV
  asm volatile("");
  return x;
}
[[gnu::noinline]] int pool_task_crashes(int x) {
  const int r = pool_crash_here(x) * 2;
  asm volatile("");  // not a tail call: this frame stays
  return r;
}

int thrower(int x) {
  if (x == kBad) throw std::runtime_error("bad input " + std::to_string(x));
  if (x == kBad + 1) throw 42;
  return x * 2;
}

int plus_one(int x) { return x + 1; }

int sleepy(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

// Every position of an imap: the value, or the error it rethrows.
template <class R>
std::vector<std::variant<R, std::exception_ptr>> collect(mpp::ImapRange<R> r) {
  std::vector<std::variant<R, std::exception_ptr>> out;
  for (auto it = r.begin(); it != r.end(); ++it) {
    try {
      out.emplace_back(*it);
    } catch (...) {
      out.emplace_back(std::current_exception());
    }
  }
  return out;
}

class PoolFaults : public mpp::test::PoolFixture {
 protected:
  // A worker dying on item kBad fails exactly that item with WorkerLost; every other item of the
  // same call is right and in order, in chunks of several sizes; the pool keeps serving.
  template <Fault F>
  void check_worker_death(int expected_signal) {
    mpp::Pool pool(workers());
    for (std::size_t cs : {1u, 4u, 16u}) {
      auto got = collect(pool.imap(faulty<F>, std::views::iota(0, 100), cs));
      ASSERT_EQ(got.size(), 100u);
      for (int i = 0; i < 100; ++i) {
        const auto& g = got[static_cast<std::size_t>(i)];
        if (i != kBad) {
          ASSERT_TRUE(std::holds_alternative<int>(g)) << "item " << i << " chunksize " << cs;
          ASSERT_EQ(std::get<int>(g), 2 * i);
          continue;
        }
        ASSERT_TRUE(std::holds_alternative<std::exception_ptr>(g));
        try {
          std::rethrow_exception(std::get<std::exception_ptr>(g));
        } catch (const mpp::WorkerLost& e) {
          EXPECT_EQ(e.task_index(), kBad);
          EXPECT_GT(e.pid(), 0);
          const std::string what = e.what();
          EXPECT_NE(what.find("task " + std::to_string(kBad)), std::string::npos) << what;
          EXPECT_NE(what.find(std::to_string(e.pid())), std::string::npos) << what;
          if (expected_signal >= 0) {
            // Under ASan a segfault is reported first, then turned into exit(1) or abort().
            const bool sanitizer_end =
                kAsan && F == kSegv &&
                (e.signal() == SIGABRT || (e.signal() == 0 && e.exit_code() != 0));
            if (!sanitizer_end) {
              EXPECT_EQ(e.signal(), expected_signal) << what;
            }
          } else {
            EXPECT_EQ(e.signal(), 0);
            EXPECT_EQ(e.exit_code(), 0);
          }
          // Crash stacks: SIGKILL and exits leave none (and what() says so for SIGKILL); an
          // abort() is caught by mpp's handler (also under ASan, which leaves SIGABRT alone).
          if constexpr (F == kSigkill || F == kExit0) {
            EXPECT_TRUE(e.stack().empty()) << what;
          }
          if constexpr (F == kSigkill) {
            EXPECT_NE(what.find("no stack"), std::string::npos) << what;
          }
          if constexpr (F == kAbort) {
            EXPECT_TRUE(names_frame(e.stack(), "abort", 8)) << what;
            EXPECT_TRUE(names_frame(e.stack(), "faulty", 8)) << what;
            EXPECT_NE(what.find("stack: #0"), std::string::npos) << what;
          }
        }
      }
      // map reports the failed item and the pool is still whole.
      try {
        (void)pool.map(faulty<F>, std::views::iota(0, 100), cs);
        ADD_FAILURE() << "map should throw WorkerLost";
      } catch (const mpp::WorkerLost& e) {
        EXPECT_EQ(e.task_index(), kBad);
      }
      EXPECT_EQ(pool.worker_pids().size(), workers());
      auto later = pool.map(plus_one, std::views::iota(0, 1000));
      ASSERT_EQ(later.size(), 1000u);
      EXPECT_EQ(later[999], 1000);
    }
  }
};

TEST_P(PoolFaults, WorkerSigkilledMidTask) { check_worker_death<kSigkill>(SIGKILL); }
TEST_P(PoolFaults, WorkerSegfaultsMidTask) { check_worker_death<kSegv>(SIGSEGV); }
TEST_P(PoolFaults, WorkerAbortsMidTask) { check_worker_death<kAbort>(SIGABRT); }
TEST_P(PoolFaults, WorkerExitsZeroMidTask) { check_worker_death<kExit0>(-1); }

TEST_P(PoolFaults, SegfaultStackNamesTheFunctionAndItsCaller) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer's own SIGSEGV handler reports the crash (mpp leaves it alone)";
#endif
  mpp::Pool pool(workers());
  for (int chunksize : {1, 4}) {
    try {
      (void)pool.map(pool_task_crashes, std::views::iota(0, 64), chunksize);
      ADD_FAILURE() << "map should throw WorkerLost";
    } catch (const mpp::WorkerLost& e) {
      const std::string what = e.what();
      EXPECT_EQ(e.task_index(), kBad);
      EXPECT_EQ(e.signal(), SIGSEGV) << what;
      ASSERT_FALSE(e.stack().empty()) << what;
      EXPECT_NE(e.stack()[0].find("pool_crash_here"), std::string::npos) << what;
      EXPECT_NE(e.stack()[0].find("test_pool_faults.cpp:"), std::string::npos) << what;
      EXPECT_TRUE(names_frame(e.stack(), "pool_task_crashes", 3)) << what;
      EXPECT_NE(what.find("stack: #0 pool_crash_here"), std::string::npos) << what;
    }
  }
  // The replaced worker serves again, and a crash in it reports its own stack.
  EXPECT_EQ(pool.map(plus_one, std::views::iota(0, 100)).back(), 100);
}

TEST_P(PoolFaults, ThrowingTasksFailOnlyThemselves) {
  mpp::Pool pool(workers());
  auto got = collect(pool.imap(thrower, std::views::iota(0, 100), 8));
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    const auto& g = got[static_cast<std::size_t>(i)];
    if (i != kBad && i != kBad + 1) {
      ASSERT_EQ(std::get<int>(g), 2 * i);
      continue;
    }
    try {
      std::rethrow_exception(std::get<std::exception_ptr>(g));
    } catch (const mpp::RemoteError& e) {
      EXPECT_EQ(e.task_index(), i);
      EXPECT_GT(e.pid(), 0);
      if (i == kBad) {
        EXPECT_EQ(e.type_name(), "std::runtime_error");
        EXPECT_NE(std::string(e.what()).find("bad input 37"), std::string::npos);
      } else {
        EXPECT_EQ(e.type_name(), "int");
      }
    }
  }
  // map: the first failure by index, after the rest completed.
  try {
    (void)pool.map(thrower, std::views::iota(0, 100));
    FAIL() << "expected RemoteError";
  } catch (const mpp::RemoteError& e) {
    EXPECT_EQ(e.task_index(), kBad);
  }
  auto r = pool.apply_async(thrower, kBad + 1);
  r.wait();
  EXPECT_FALSE(r.successful());
  EXPECT_THROW((void)r.get(), mpp::RemoteError);
  EXPECT_EQ(pool.apply(thrower, 3), 6);
}

TEST_P(PoolFaults, TaskTimeoutKillsAndReplacesStuckWorker) {
  mpp::PoolOptions o;
  o.processes = workers();
  o.task_timeout = 300ms;
  mpp::Pool pool(o);
  const auto before = pool.worker_pids();
  std::vector<int> ms(12, 5);
  ms[5] = 60'000;  // stuck
  auto got = collect(pool.imap(sleepy, ms, 1));
  ASSERT_EQ(got.size(), ms.size());
  for (std::size_t i = 0; i < ms.size(); ++i) {
    if (i != 5) {
      ASSERT_EQ(std::get<int>(got[i]), 5);
      continue;
    }
    try {
      std::rethrow_exception(std::get<std::exception_ptr>(got[i]));
    } catch (const mpp::WorkerLost& e) {
      EXPECT_EQ(e.task_index(), 5);
      EXPECT_EQ(e.signal(), SIGKILL);
      EXPECT_NE(std::string(e.what()).find("task_timeout"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(pool.worker_pids().size(), workers());
  EXPECT_NE(pool.worker_pids(), before);
  EXPECT_EQ(pool.apply(plus_one, 1), 2);
}

TEST_P(PoolFaults, InputRangeThrowingHalfWay) {
  mpp::Pool pool(workers());
  auto throwing = std::views::iota(0, 1000) | std::views::transform([](int x) {
                    if (x == 500) throw std::out_of_range("input broke at 500");
                    return x;
                  });
  // map: the input's own exception, after the work in flight drained.
  EXPECT_THROW((void)pool.map(plus_one, throwing, 10), std::out_of_range);
  // imap: the results before that position, then the exception at it.
  auto got = collect(pool.imap(plus_one, throwing, 10));
  ASSERT_EQ(got.size(), 501u);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(std::get<int>(got[static_cast<std::size_t>(i)]), i + 1);
  EXPECT_THROW(std::rethrow_exception(std::get<std::exception_ptr>(got[500])), std::out_of_range);
  // map_async copies the input at the call: the exception comes from the call itself.
  EXPECT_THROW((void)pool.map_async(plus_one, throwing), std::out_of_range);
  EXPECT_EQ(pool.map(plus_one, std::vector<int>{1, 2}), (std::vector<int>{2, 3}));
}

TEST_P(PoolFaults, WorkerKilledWhileIdleIsReplaced) {
  mpp::Pool pool(workers());
  const auto before = pool.worker_pids();
  ASSERT_EQ(kill(before[0], SIGKILL), 0);
  ASSERT_TRUE(mpp::test::gone_within(before[0], 2s));
  auto out = pool.map(plus_one, std::views::iota(0, 5000));
  EXPECT_EQ(out[4999], 5000);
  // Replaced once the pool noticed (it looks while it waits).
  const auto after = pool.worker_pids();
  EXPECT_EQ(after.size(), workers());
  EXPECT_EQ(std::count(after.begin(), after.end(), before[0]), 0);
}

TEST_P(PoolFaults, TerminateWithTenThousandQueuedTasks) {
  mpp::Pool pool(workers());
  std::vector<mpp::AsyncResult<int>> rs;
  rs.reserve(10'000);
  for (int i = 0; i < 10'000; ++i) rs.push_back(pool.apply_async(sleepy, 200));
  const auto t0 = std::chrono::steady_clock::now();
  pool.terminate();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 1s) << "terminate() must return promptly";
  EXPECT_TRUE(mpp::test::live_children().empty());
  EXPECT_THROW((void)rs.front().get(), mpp::WorkerLost);
  EXPECT_THROW((void)rs.back().get(), mpp::WorkerLost);
  EXPECT_THROW((void)pool.apply(plus_one, 1), std::logic_error);
}

TEST_P(PoolFaults, DestructorTerminatesOutstandingWork) {
  auto r = [&] {
    mpp::Pool pool(workers());
    return pool.map_async(sleepy, std::vector<int>(100, 100));
  }();
  EXPECT_TRUE(r.ready());
  EXPECT_THROW((void)r.get(), mpp::WorkerLost);
}

TEST_P(PoolFaults, ForkFailingAtStartThrowsAndLeavesNothing) {
  // The last worker's fork fails: the constructor throws the OS error and reaps the others.
  mpp::sys::fault::Scoped inject(mpp::sys::fault::Op::fork, EAGAIN, 1,
                                 static_cast<int>(workers()) - 1);
  try {
    mpp::Pool pool(workers());
    FAIL() << "expected std::system_error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EAGAIN);
    EXPECT_NE(std::string(e.what()).find("cannot fork worker"), std::string::npos);
  }
  EXPECT_TRUE(mpp::test::live_children().empty());
}

TEST_P(PoolFaults, ReplacementForkFailingKeepsThePoolServing) {
  mpp::Pool pool(workers());
  {
    // Every replacement fork fails from now on.
    mpp::sys::fault::Scoped inject(mpp::sys::fault::Op::fork, EAGAIN, 1000);
    auto got = collect(pool.imap(faulty<kSigkill>, std::views::iota(0, 60), 4));
    if (workers() > 1) {
      ASSERT_EQ(got.size(), 60u);
      // The survivors run everything else.
      for (int i = 0; i < 60; ++i) {
        if (i != kBad) {
          ASSERT_EQ(std::get<int>(got[static_cast<std::size_t>(i)]), 2 * i);
        }
      }
      EXPECT_EQ(pool.worker_pids().size(), workers() - 1);
    } else {
      // No worker left: what was not done fails with the fork error (the last position stands
      // for the input not run), and so does every later call, instead of hanging.
      ASSERT_FALSE(got.empty());
      ASSERT_LE(got.size(), 60u);
      ASSERT_TRUE(std::holds_alternative<std::exception_ptr>(got.back()));
      EXPECT_THROW(std::rethrow_exception(std::get<std::exception_ptr>(got.back())),
                   std::system_error);
      EXPECT_THROW((void)pool.apply(plus_one, 1), std::system_error);
    }
  }
}

// --- values that cannot be decoded --------------------------------------------------------------

constexpr int kItems = 20;     // inputs of the decode tests
constexpr int kBadResult = 5;  // the input whose result the parent cannot decode

// Counters shared with the workers (anonymous shared memory the test maps and unmaps).
struct Tally {
  std::atomic<int> bombs_decoded{0};
  std::atomic<int> runs[kItems] = {};
};
Tally* g_tally = nullptr;
pid_t g_test_pid = 0;

struct SharedTally {
  SharedTally() {
    void* p =
        mmap(nullptr, sizeof(Tally), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    g_tally = new (p) Tally();
    g_test_pid = getpid();
  }
  ~SharedTally() {
    munmap(g_tally, sizeof(Tally));
    g_tally = nullptr;
  }
  SharedTally(const SharedTally&) = delete;
  SharedTally& operator=(const SharedTally&) = delete;
  void reset() {
    g_tally->bombs_decoded = 0;
    for (auto& r : g_tally->runs) r = 0;
  }
};

// An input that crashes the worker decoding it: it segfaults when default-constructed outside the
// test process, which only a worker's decoder does (the test builds it from a value).
class Bomb {
 public:
  Bomb() {
    if (getpid() != g_test_pid) {
      g_tally->bombs_decoded.fetch_add(1);
      raise(SIGSEGV);
    }
  }
  explicit Bomb(int) {}

 private:
  friend struct mpp::codec::Fields<Bomb>;
  int pad_ = 0;
};
using Cargo = std::variant<int, Bomb>;

int open_cargo(const Cargo& c) {
  const int x = std::get<int>(c);
  g_tally->runs[x].fetch_add(1);
  return 2 * x;
}

}  // namespace

template <>
struct mpp::codec::Fields<Bomb> {
  static auto tie(auto& b) { return std::tie(b.pad_); }
};

namespace {

using mpp::test::Brittle;
using mpp::test::is_decoder_error;
using mpp::test::is_serialization_error;

// A result that cannot be decoded fails its own position with the decoder's error, once. The
// results after it in its chunk cannot be located without decoding it, so they fail with
// SerializationError; everything else arrives. imap must not hang after it, imap_unordered must
// not report positions twice.
template <int Kind>
void check_result_decode_failures(mpp::Pool& pool) {
  mpp::test::Watchdog dog(std::chrono::seconds(60), "result decode failure test");
  using R = std::variant<int, Brittle<Kind>>;
  for (std::size_t cs : {std::size_t{1}, std::size_t{4}, std::size_t{7}, std::size_t{kItems}}) {
    // Positions of the bad chunk after the bad result, which cannot be located.
    const int chunk_end =
        std::min<int>((kBadResult / static_cast<int>(cs) + 1) * static_cast<int>(cs), kItems);
    auto lost = [&](int i) { return i > kBadResult && i < chunk_end; };

    auto got = collect(
        pool.imap(mpp::test::brittle_result<Kind, kBadResult>, std::views::iota(0, kItems), cs));
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kItems)) << "imap, chunksize " << cs;
    for (int i = 0; i < kItems; ++i) {
      const auto& g = got[static_cast<std::size_t>(i)];
      if (i == kBadResult || lost(i)) {
        ASSERT_TRUE(std::holds_alternative<std::exception_ptr>(g)) << i << " cs " << cs;
        const auto& e = std::get<std::exception_ptr>(g);
        EXPECT_TRUE(i == kBadResult ? is_decoder_error<Kind>(e) : is_serialization_error(e))
            << "position " << i << " chunksize " << cs;
        continue;
      }
      ASSERT_TRUE(std::holds_alternative<R>(g)) << i << " cs " << cs;
      EXPECT_EQ(std::get<int>(std::get<R>(g)), 2 * i);
    }

    auto un = collect(pool.imap_unordered(mpp::test::brittle_result<Kind, kBadResult>,
                                          std::views::iota(0, kItems), cs));
    ASSERT_EQ(un.size(), static_cast<std::size_t>(kItems)) << "imap_unordered, chunksize " << cs;
    std::multiset<int> values;
    int decoder_errors = 0;
    int other_errors = 0;
    for (const auto& g : un) {
      if (std::holds_alternative<R>(g)) {
        values.insert(std::get<int>(std::get<R>(g)));
      } else if (is_decoder_error<Kind>(std::get<std::exception_ptr>(g))) {
        ++decoder_errors;
      } else {
        EXPECT_TRUE(is_serialization_error(std::get<std::exception_ptr>(g)));
        ++other_errors;
      }
    }
    std::multiset<int> want;
    for (int i = 0; i < kItems; ++i) {
      if (i != kBadResult && !lost(i)) want.insert(2 * i);
    }
    EXPECT_EQ(values, want) << "chunksize " << cs;
    EXPECT_EQ(decoder_errors, 1) << "chunksize " << cs;
    EXPECT_EQ(other_errors, chunk_end - kBadResult - 1) << "chunksize " << cs;
  }
  for (std::size_t cs : {0u, 1u, 4u}) {
    try {
      (void)pool.map(mpp::test::brittle_result<Kind, kBadResult>, std::views::iota(0, kItems), cs);
      ADD_FAILURE() << "map should throw, chunksize " << cs;
    } catch (...) {
      EXPECT_TRUE(is_decoder_error<Kind>(std::current_exception())) << "chunksize " << cs;
    }
    auto r = pool.map_async(mpp::test::brittle_result<Kind, kBadResult>,
                            std::views::iota(0, kItems), cs);
    r.wait();
    EXPECT_FALSE(r.successful());
    try {
      (void)r.get();
      ADD_FAILURE() << "map_async should fail, chunksize " << cs;
    } catch (...) {
      EXPECT_TRUE(is_decoder_error<Kind>(std::current_exception())) << "chunksize " << cs;
    }
  }
  auto one = pool.apply_async(mpp::test::brittle_result<Kind, kBadResult>, kBadResult);
  try {
    (void)one.get();
    ADD_FAILURE() << "apply_async should fail";
  } catch (...) {
    EXPECT_TRUE(is_decoder_error<Kind>(std::current_exception()));
  }
  EXPECT_EQ(std::get<int>(pool.apply(mpp::test::brittle_result<Kind, kBadResult>, 3)), 6);
  EXPECT_EQ(pool.worker_pids().size(), pool.processes());
}

TEST_P(PoolFaults, ResultThatThrowsSerializationErrorWhenDecodedFailsItsPositionOnce) {
  mpp::Pool pool(workers());
  check_result_decode_failures<0>(pool);
}

TEST_P(PoolFaults, ResultWhoseDecoderThrowsANonStdExceptionFailsItsPositionOnce) {
  mpp::Pool pool(workers());
  check_result_decode_failures<1>(pool);
}

// The worker says which item it is on before decoding it: an input whose decoder crashes the
// worker fails alone with WorkerLost naming its index, is never decoded again, and the other
// items of its chunk (before and after it) run on the replacement.
TEST_P(PoolFaults, PoisonedInputFailsOnlyItselfAndIsNotRunAgain) {
  mpp::test::Watchdog dog(std::chrono::seconds(90), "poisoned input test");
  SharedTally tally;
  mpp::Pool pool(workers());
  constexpr int n = 8;
  for (int poison : {3, 5}) {  // the last of a chunk of 4, and one in the middle of one
    std::vector<Cargo> in;
    for (int i = 0; i < n; ++i) {
      if (i == poison) {
        in.emplace_back(Bomb(0));
      } else {
        in.emplace_back(i);
      }
    }
    auto expect_lost_poison = [&](const std::exception_ptr& e, const std::string& what) {
      try {
        std::rethrow_exception(e);
      } catch (const mpp::WorkerLost& l) {
        EXPECT_EQ(l.task_index(), poison) << what << ": " << l.what();
        EXPECT_NE(std::string(l.what()).find("task " + std::to_string(poison)), std::string::npos)
            << what << ": " << l.what();
      } catch (...) {
        ADD_FAILURE() << what << ": not WorkerLost";
      }
    };
    auto expect_ran_once_each = [&](const std::string& what) {
      EXPECT_EQ(g_tally->bombs_decoded.load(), 1) << what << ": the poisoned input ran again";
      for (int i = 0; i < n; ++i) {
        if (i != poison) {
          EXPECT_GE(g_tally->runs[i].load(), 1) << what << ": item " << i << " never ran";
        }
      }
      tally.reset();
    };
    for (std::size_t cs : {4u, 1u}) {
      const std::string what =
          "poison " + std::to_string(poison) + " chunksize " + std::to_string(cs);
      auto got = collect(pool.imap(open_cargo, in, cs));
      ASSERT_EQ(got.size(), static_cast<std::size_t>(n)) << "imap, " << what;
      for (int i = 0; i < n; ++i) {
        const auto& g = got[static_cast<std::size_t>(i)];
        if (i == poison) {
          ASSERT_TRUE(std::holds_alternative<std::exception_ptr>(g)) << what;
          expect_lost_poison(std::get<std::exception_ptr>(g), "imap, " + what);
        } else {
          ASSERT_TRUE(std::holds_alternative<int>(g)) << "imap, " << what << ": item " << i;
          EXPECT_EQ(std::get<int>(g), 2 * i);
        }
      }
      expect_ran_once_each("imap, " + what);

      auto un = collect(pool.imap_unordered(open_cargo, in, cs));
      ASSERT_EQ(un.size(), static_cast<std::size_t>(n)) << "imap_unordered, " << what;
      std::multiset<int> values;
      int errors = 0;
      for (const auto& g : un) {
        if (std::holds_alternative<int>(g)) {
          values.insert(std::get<int>(g));
        } else {
          ++errors;
          expect_lost_poison(std::get<std::exception_ptr>(g), "imap_unordered, " + what);
        }
      }
      EXPECT_EQ(errors, 1) << "imap_unordered, " << what;
      std::multiset<int> want;
      for (int i = 0; i < n; ++i) {
        if (i != poison) want.insert(2 * i);
      }
      EXPECT_EQ(values, want) << "imap_unordered, " << what;
      expect_ran_once_each("imap_unordered, " + what);
    }
    for (std::size_t cs : {4u, 1u, 0u}) {
      const std::string what =
          "poison " + std::to_string(poison) + " chunksize " + std::to_string(cs);
      try {
        (void)pool.map(open_cargo, in, cs);
        ADD_FAILURE() << "map should throw, " << what;
      } catch (...) {
        expect_lost_poison(std::current_exception(), "map, " + what);
      }
      expect_ran_once_each("map, " + what);

      auto r = pool.map_async(open_cargo, in, cs);
      try {
        (void)r.get();
        ADD_FAILURE() << "map_async should fail, " << what;
      } catch (...) {
        expect_lost_poison(std::current_exception(), "map_async, " + what);
      }
      expect_ran_once_each("map_async, " + what);

      std::vector<std::tuple<Cargo>> args;
      for (const auto& c : in) args.emplace_back(c);
      try {
        (void)pool.starmap(open_cargo, args, cs);
        ADD_FAILURE() << "starmap should throw, " << what;
      } catch (...) {
        expect_lost_poison(std::current_exception(), "starmap, " + what);
      }
      expect_ran_once_each("starmap, " + what);
    }
  }
  EXPECT_EQ(pool.worker_pids().size(), workers());
  EXPECT_EQ(pool.map(plus_one, std::vector<int>{1, 2}), (std::vector<int>{2, 3}));
}

// throw mpp::SystemExit{N} in a task fails that item like any exception (RemoteError, type
// "mpp::SystemExit", the code in what()); the worker goes on serving. (Python's Pool loses the
// worker and the task's result never arrives.)
int exits_on_bad(int x) {
  if (x == kBad) throw mpp::SystemExit{3};
  return 2 * x;
}

TEST_P(PoolFaults, SystemExitInATaskFailsThatItemAndKeepsTheWorker) {
  mpp::Pool pool(workers());
  const auto before = pool.worker_pids();
  auto got = collect(pool.imap(exits_on_bad, std::views::iota(0, 50), 4));
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    const auto& g = got[static_cast<std::size_t>(i)];
    if (i != kBad) {
      ASSERT_EQ(std::get<int>(g), 2 * i);
      continue;
    }
    try {
      std::rethrow_exception(std::get<std::exception_ptr>(g));
    } catch (const mpp::RemoteError& e) {
      EXPECT_EQ(e.type_name(), "mpp::SystemExit");
      EXPECT_EQ(e.task_index(), kBad);
      EXPECT_NE(std::string(e.what()).find("exit code 3"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(pool.worker_pids(), before) << "a SystemExit must not end the worker";
}

// --- the parent dies ------------------------------------------------------------------------

struct Helper {
  pid_t pid = -1;
  std::vector<pid_t> workers;
};

Helper start_helper(unsigned n) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  Helper h;
  const std::string path = std::string(MPP_HELPER_DIR) + "/mpp_helper_pool_parent";
  const std::string arg = std::to_string(n);
  h.pid = fork();
  if (h.pid == 0) {
    setpgid(0, 0);  // its own process group, like a job started from a shell
    dup2(fds[1], 1);
    execl(path.c_str(), path.c_str(), arg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string text;
  char buf[256];
  while (text.find("READY") == std::string::npos) {
    const ssize_t k = read(fds[0], buf, sizeof buf);
    if (k <= 0) break;
    text.append(buf, static_cast<std::size_t>(k));
  }
  close(fds[0]);
  std::istringstream in(text);
  std::string word;
  in >> word;
  EXPECT_EQ(word, "PIDS") << text;
  while (in >> word && word != "READY") h.workers.push_back(static_cast<pid_t>(std::stoi(word)));
  EXPECT_EQ(h.workers.size(), n) << text;
  return h;
}

void expect_all_gone(const Helper& h, int expected_signal) {
  int st = 0;
  ASSERT_EQ(waitpid(h.pid, &st, 0), h.pid);
  EXPECT_TRUE(WIFSIGNALED(st));
  if (WIFSIGNALED(st)) {
    EXPECT_EQ(WTERMSIG(st), expected_signal);
  }
  for (pid_t w : h.workers) EXPECT_TRUE(mpp::test::gone_within(w, 2s)) << "worker " << w;
}

TEST_P(PoolFaults, ParentSigkilledWorkersGoneWithinTwoSeconds) {
  Helper h = start_helper(workers());
  ASSERT_EQ(kill(h.pid, SIGKILL), 0);
  expect_all_gone(h, SIGKILL);
}

TEST_P(PoolFaults, SigintToParentEndsEverything) {
  Helper h = start_helper(workers());
  ASSERT_EQ(kill(h.pid, SIGINT), 0);
  expect_all_gone(h, SIGINT);
}

TEST_P(PoolFaults, CtrlCToTheProcessGroupEndsEverything) {
  Helper h = start_helper(workers());
  ASSERT_EQ(kill(-h.pid, SIGINT), 0);  // what a terminal's Ctrl-C does
  expect_all_gone(h, SIGINT);
}

INSTANTIATE_TEST_SUITE_P(Workers, PoolFaults, ::testing::Values(1u, 2u, 4u));

}  // namespace
