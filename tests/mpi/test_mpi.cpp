// Tests of <mpp/mpi.hpp>, run under `mpirun -n N` for several N (see src/mpi/CMakeLists.txt).
// Rank 0 runs the tests; the other ranks serve tasks from the Pool constructed in main() and
// never reach RUN_ALL_TESTS. With N = 1 the same tests check the single-rank fallback.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mpp/mpi.hpp>
#include <mpp/process.hpp>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "brittle_results.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

int square(int x) { return x * x; }
MPP_MPI_REGISTER(square);

std::string twice(char c) { return std::string(2, c); }
MPP_MPI_REGISTER(twice);

int not_registered(int x) { return x + 1; }

long add3(int a, long b, short c) { return a + b + c; }

int throws_on_7(int x) {
  if (x == 7) throw std::runtime_error("seven is bad");
  return x;
}
MPP_MPI_REGISTER(throws_on_7);

// Which rank ran a task, and its pid.
std::pair<int, long> where(int) { return {mpp::mpi::rank(), static_cast<long>(getpid())}; }

constexpr int kWatchdogSeconds = 120;

constexpr int kItems = 20;     // inputs of the decode test
constexpr int kBadResult = 5;  // the input whose result rank 0 cannot decode

using mpp::test::Brittle;
using mpp::test::is_decoder_error;
using mpp::test::is_serialization_error;

// As mpp::Pool (tests/test_pool_faults.cpp, same name): a result that cannot be decoded fails its
// own position with the decoder's error, once; the results after it in its chunk cannot be
// located and fail with SerializationError; everything else arrives, nothing twice, no hang.
template <int Kind>
void check_result_decode_failures() {
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds), "result decode failure test"};
  mpp::mpi::Pool pool;
  constexpr auto f = mpp::mpi::fn<&mpp::test::brittle_result<Kind, kBadResult>>;
  using R = std::variant<int, Brittle<Kind>>;
  for (std::size_t cs : {std::size_t{1}, std::size_t{4}, std::size_t{7}, std::size_t{kItems}}) {
    const int chunk_end =
        std::min<int>((kBadResult / static_cast<int>(cs) + 1) * static_cast<int>(cs), kItems);
    auto lost = [&](int i) { return i > kBadResult && i < chunk_end; };
    int pos = 0;
    auto r = pool.imap(f, std::views::iota(0, kItems), cs);
    for (auto it = r.begin(); it != r.end(); ++it, ++pos) {
      ASSERT_LT(pos, kItems) << "imap handed out more positions than inputs, chunksize " << cs;
      try {
        EXPECT_EQ(std::get<int>(*it), 2 * pos) << "chunksize " << cs;
        EXPECT_FALSE(pos == kBadResult || lost(pos)) << pos << " chunksize " << cs;
      } catch (...) {
        const auto e = std::current_exception();
        EXPECT_TRUE(pos == kBadResult ? is_decoder_error<Kind>(e) : is_serialization_error(e))
            << "position " << pos << " chunksize " << cs;
        EXPECT_TRUE(pos == kBadResult || lost(pos)) << pos << " chunksize " << cs;
      }
    }
    EXPECT_EQ(pos, kItems) << "imap, chunksize " << cs;

    std::multiset<int> values;
    int decoder_errors = 0;
    int other_errors = 0;
    auto u = pool.imap_unordered(f, std::views::iota(0, kItems), cs);
    for (auto it = u.begin(); it != u.end(); ++it) {
      try {
        const R& v = *it;
        values.insert(std::get<int>(v));
      } catch (...) {
        const auto e = std::current_exception();
        if (is_decoder_error<Kind>(e)) {
          ++decoder_errors;
        } else {
          EXPECT_TRUE(is_serialization_error(e));
          ++other_errors;
        }
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
      (void)pool.map(f, std::views::iota(0, kItems), cs);
      ADD_FAILURE() << "map should throw, chunksize " << cs;
    } catch (...) {
      EXPECT_TRUE(is_decoder_error<Kind>(std::current_exception())) << "chunksize " << cs;
    }
    auto r = pool.map_async(f, std::views::iota(0, kItems), cs);
    try {
      (void)r.get();
      ADD_FAILURE() << "map_async should fail, chunksize " << cs;
    } catch (...) {
      EXPECT_TRUE(is_decoder_error<Kind>(std::current_exception())) << "chunksize " << cs;
    }
  }
  EXPECT_EQ(std::get<int>(pool.apply(f, 3)), 6);
}

}  // namespace

TEST(MpiPool, ResultThatThrowsSerializationErrorWhenDecodedFailsItsPositionOnce) {
  check_result_decode_failures<0>();
}

TEST(MpiPool, ResultWhoseDecoderThrowsANonStdExceptionFailsItsPositionOnce) {
  check_result_decode_failures<1>();
}

TEST(MpiPool, SystemExitInATaskFailsThatItem) {
  mpp::mpi::Pool pool;
  try {
    (void)pool.map(
        [](int x) {
          if (x == 3) throw mpp::SystemExit{3};
          return x;
        },
        std::views::iota(0, 8), 2);
    FAIL() << "map did not throw";
  } catch (const mpp::RemoteError& e) {
    EXPECT_EQ(e.task_index(), 3);
    EXPECT_EQ(e.type_name(), "mpp::SystemExit");
    EXPECT_NE(std::string(e.what()).find("exit code 3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.map(square, std::vector<int>{3}), std::vector<int>{9});
}

TEST(MpiPool, MapKeepsInputOrderAtEveryChunksize) {
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::Pool pool;
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), -500);
  for (std::size_t cs : {0u, 1u, 7u, 1000u}) {
    auto out = pool.map(square, in, cs);
    ASSERT_EQ(out.size(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] * in[i]) << "cs " << cs;
  }
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
}

TEST(MpiPool, WorkersAreOtherRanks) {
  mpp::mpi::Pool pool;
  const int size = mpp::mpi::size();
  EXPECT_EQ(mpp::mpi::rank(), 0);
  EXPECT_EQ(pool.processes(), static_cast<unsigned>(size - 1));
  auto out = pool.map([](int i) { return where(i); }, std::views::iota(0, 64), 1);
  std::set<int> ranks;
  for (auto [r, pid] : out) {
    ranks.insert(r);
    if (size > 1) {
      EXPECT_NE(r, 0);
      EXPECT_NE(pid, static_cast<long>(getpid()));
    }
  }
  if (size == 1) {
    EXPECT_EQ(ranks, std::set<int>{0});
  } else {
    EXPECT_GE(ranks.size(), 1u);
    EXPECT_LE(ranks.size(), static_cast<std::size_t>(size - 1));
  }
}

TEST(MpiPool, StringInputLikeTheWiki) {
  mpp::mpi::Pool pool;
  const std::string s = "thisisaverylongstring";
  auto out = pool.map(twice, s);
  ASSERT_EQ(out.size(), s.size());
  for (std::size_t i = 0; i < s.size(); ++i) EXPECT_EQ(out[i], std::string(2, s[i]));
}

TEST(MpiPool, LambdasFunctorsAndFn) {
  mpp::mpi::Pool pool;
  struct Cube {
    long operator()(long x) const { return x * x * x; }
  };
  std::vector<long> in{1, 2, 3, -4};
  EXPECT_EQ(pool.map(Cube{}, in), (std::vector<long>{1, 8, 27, -64}));
  EXPECT_EQ(pool.map([](long x) { return x + 1; }, in), (std::vector<long>{2, 3, 4, -3}));
  EXPECT_EQ(pool.map(mpp::mpi::fn<&not_registered>, std::vector<int>{1, 2}),
            (std::vector<int>{2, 3}));
}

TEST(MpiPool, UnregisteredFunctionPointerIsRejected) {
  mpp::mpi::Pool pool;
  EXPECT_THROW((void)pool.map(not_registered, std::vector<int>{1}), std::invalid_argument);
  int (*null_fn)(int) = nullptr;
  EXPECT_THROW((void)pool.map(null_fn, std::vector<int>{1}), std::invalid_argument);
}

TEST(MpiPool, Starmap) {
  mpp::mpi::Pool pool;
  std::vector<std::tuple<int, long, short>> args;
  for (int i = 0; i < 50; ++i) args.emplace_back(i, 1000L * i, static_cast<short>(-i));
  auto out = pool.starmap(mpp::mpi::fn<&add3>, args, 3);
  ASSERT_EQ(out.size(), args.size());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], 1000L * i);
}

TEST(MpiPool, VoidFunctions) {
  mpp::mpi::Pool pool;
  pool.map([](int) {}, std::vector<int>{1, 2, 3});
  auto r = pool.apply_async([](int) {}, 5);
  r.get();
  EXPECT_TRUE(r.ready());
}

TEST(MpiPool, ApplyAsyncManyInFlight) {
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::Pool pool;
  std::vector<mpp::mpi::AsyncResult<std::string>> results;
  for (int i = 0; i < 100; ++i) {
    results.push_back(pool.apply_async(
        [](int a, std::string b) { return b.append(std::to_string(a)); }, i, std::string("x")));
  }
  for (int i = 99; i >= 0; --i) {
    // (`"x" + std::to_string(i)` trips GCC 12's -Wrestrict false positive at -O3.)
    std::string want = "x";
    want.append(std::to_string(i));
    EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), want);
  }
  EXPECT_EQ(pool.apply(square, 12), 144);
}

// Issue 20.2 for the MPI backend: threads calling one pool (and a second pool on the same ranks)
// at once, results consumed on other threads, as_completed.
TEST(MpiPool, ThreadsShareThePools) {
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::Pool pool;
  mpp::mpi::Pool other;
  std::vector<mpp::mpi::AsyncResult<int>> handed;
  for (int i = 0; i < 40; ++i) handed.push_back(pool.apply_async(square, i));
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      try {
        mpp::mpi::Pool& p = t % 2 == 0 ? pool : other;
        for (int round = 0; round < 5; ++round) {
          auto m = p.map(square, std::views::iota(0, 50));
          for (int i = 0; i < 50; ++i) failures += m[static_cast<std::size_t>(i)] != i * i;
          failures += p.apply(square, t + round) != (t + round) * (t + round);
          int k = 0;
          for (int v : p.imap(square, std::views::iota(0, 20), 3)) failures += v != k * k, ++k;
          failures += k != 20;
        }
        // A quarter of the results handed out by the main thread.
        for (int i = t; i < 40; i += 4) {
          failures += handed[static_cast<std::size_t>(i)].get() != i * i;
        }
      } catch (...) {
        ++failures;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<mpp::mpi::AsyncResult<int>> rs;
  for (int i = 0; i < 30; ++i) rs.push_back(pool.apply_async(square, i));
  std::set<int> seen;
  for (auto& r : mpp::mpi::as_completed(rs, 60s)) EXPECT_TRUE(seen.insert(r.get()).second);
  EXPECT_EQ(seen.size(), 30u);
}

TEST(MpiPool, AsyncResultInterface) {
  mpp::mpi::Pool pool;
  auto slow = pool.apply_async(
      [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
      },
      300);
  if (mpp::mpi::size() > 1) {  // with one rank, a wait runs the task on the spot
    EXPECT_FALSE(slow.ready());
    EXPECT_THROW((void)slow.successful(), std::logic_error);
    EXPECT_THROW((void)slow.get(1ms), mpp::TimeoutError);
    EXPECT_FALSE(slow.wait(1ms));
  }
  EXPECT_EQ(slow.get(60s), 300);
  EXPECT_TRUE(slow.successful());
  EXPECT_THROW((void)slow.get(), std::logic_error);  // handed over once

  auto bad = pool.apply_async(throws_on_7, 7);
  bad.wait();
  EXPECT_TRUE(bad.ready());
  EXPECT_FALSE(bad.successful());
  EXPECT_THROW((void)bad.get(), mpp::RemoteError);

  auto m = pool.map_async(square, std::vector<int>{1, 2, 3});
  EXPECT_EQ(m.get(), (std::vector<int>{1, 4, 9}));
}

TEST(MpiPool, TaskErrorNamesRankAndIndex) {
  mpp::mpi::Pool pool;
  std::vector<int> in(20);
  std::iota(in.begin(), in.end(), 0);
  for (std::size_t cs : {1u, 4u, 0u}) {
    try {
      (void)pool.map(throws_on_7, in, cs);
      FAIL() << "map did not throw";
    } catch (const mpp::RemoteError& e) {
      EXPECT_EQ(e.task_index(), 7);
      EXPECT_EQ(e.type_name(), "std::runtime_error");
      const std::string what = e.what();
      EXPECT_NE(what.find("seven is bad"), std::string::npos) << what;
      EXPECT_NE(what.find("MPI rank "), std::string::npos) << what;
      if (mpp::mpi::size() > 1) {
        EXPECT_EQ(what.find("MPI rank 0,"), std::string::npos) << what;
        EXPECT_NE(e.pid(), getpid());
      }
    }
  }
  // The pool keeps working after a failed call.
  EXPECT_EQ(pool.map(square, std::vector<int>{3}), std::vector<int>{9});
}

TEST(MpiPool, FirstErrorByIndexWins) {
  mpp::mpi::Pool pool;
  try {
    (void)pool.map(
        [](int x) -> int {
          if (x % 10 == 3) throw std::out_of_range("bad " + std::to_string(x));
          return x;
        },
        std::views::iota(0, 100), 1);
    FAIL();
  } catch (const mpp::RemoteError& e) {
    EXPECT_EQ(e.task_index(), 3);
    EXPECT_EQ(e.type_name(), "std::out_of_range");
  }
}

TEST(MpiPool, ImapOrderedStreamsAndReportsErrorsInPlace) {
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::Pool pool;
  long expect = 0;
  long n = 0;
  for (long v : pool.imap([](long x) { return 3 * x; }, std::views::iota(0L, 20000L), 64)) {
    ASSERT_EQ(v, 3 * expect);
    ++expect;
    ++n;
  }
  EXPECT_EQ(n, 20000);

  std::vector<int> in(12);
  std::iota(in.begin(), in.end(), 0);
  auto r = pool.imap(throws_on_7, in, 2);
  auto it = r.begin();
  for (int i = 0; i < 7; ++i, ++it) EXPECT_EQ(*it, i);
  EXPECT_THROW((void)*it, mpp::RemoteError);  // position 7
  std::vector<int> rest;
  for (++it; it != r.end(); ++it) rest.push_back(*it);
  EXPECT_EQ(rest, (std::vector<int>{8, 9, 10, 11}));

  // An input range that throws: one last, failed position.
  auto bad = std::views::iota(0, 5) | std::views::transform([](int i) {
               if (i == 3) throw std::length_error("input broke");
               return i;
             });
  std::vector<int> got;
  bool threw = false;
  auto rb = pool.imap(square, bad, 1);
  for (auto i2 = rb.begin(); i2 != rb.end(); ++i2) {
    try {
      got.push_back(*i2);
    } catch (const std::length_error&) {
      threw = true;
    }
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 4}));
}

TEST(MpiPool, ImapUnorderedDeliversEverythingOnce) {
  mpp::mpi::Pool pool;
  std::multiset<int> got;
  for (int v : pool.imap_unordered(square, std::views::iota(0, 500), 3)) got.insert(v);
  std::multiset<int> want;
  for (int i = 0; i < 500; ++i) want.insert(i * i);
  EXPECT_EQ(got, want);
}

TEST(MpiPool, TaskSeedMatchesMppPool) {
  for (std::uint64_t seed : {0ULL, 42ULL}) {
    mpp::mpi::PoolOptions o;
    o.seed = seed;
    mpp::mpi::Pool pool(o);
    for (std::size_t cs : {1u, 5u}) {
      auto out = pool.map([](int) { return mpp::task_seed(); }, std::views::iota(0, 40), cs);
      for (std::size_t i = 0; i < out.size(); ++i) {
        ASSERT_EQ(out[i], mpp::detail::mix_seed(seed, static_cast<std::int64_t>(i)));
      }
      std::set<std::uint64_t> distinct(out.begin(), out.end());
      EXPECT_EQ(distinct.size(), out.size());
    }
  }
}

TEST(MpiPool, UnevenTasksAreBalanced) {
  if (mpp::mpi::size() < 3) GTEST_SKIP() << "needs two worker ranks";
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::Pool pool;
  // Task 0 takes long; a static split would give its rank half of the tasks.
  auto out = pool.map(
      [](int i) {
        std::this_thread::sleep_for(i == 0 ? 600ms : 2ms);
        return mpp::mpi::rank();
      },
      std::views::iota(0, 60), 1);
  std::map<int, int> per_rank;
  for (int r : out) ++per_rank[r];
  EXPECT_GE(per_rank.size(), 2u);
  EXPECT_LT(per_rank[out[0]], 20) << "the rank running the long task got too many others";
}

TEST(MpiPool, ProcessesLimitsRanks) {
  if (mpp::mpi::size() < 3) GTEST_SKIP() << "needs two worker ranks";
  mpp::mpi::Pool pool(1);
  EXPECT_EQ(pool.processes(), 1u);
  auto out = pool.map([](int i) { return where(i); }, std::views::iota(0, 30), 1);
  for (auto [r, pid] : out) EXPECT_EQ(r, 1);
}

TEST(MpiPool, SeveralPoolsShareTheRanks) {
  mpp::mpi::Pool a;
  mpp::mpi::Pool b;
  auto ra = a.map_async(square, std::vector<int>{1, 2, 3}, 1);
  auto rb = b.map_async(square, std::vector<int>{4, 5}, 1);
  EXPECT_EQ(rb.get(), (std::vector<int>{16, 25}));
  EXPECT_EQ(ra.get(), (std::vector<int>{1, 4, 9}));
  for (int i = 0; i < 5; ++i) {
    mpp::mpi::Pool p;
    EXPECT_EQ(p.apply(square, i), i * i);
  }
}

TEST(MpiPool, CloseJoinTerminate) {
  mpp::mpi::Pool pool;
  EXPECT_THROW(pool.join(), std::logic_error);
  auto r = pool.map_async(square, std::vector<int>{1, 2, 3});
  pool.close();
  EXPECT_THROW((void)pool.map(square, std::vector<int>{1}), std::logic_error);
  EXPECT_THROW((void)pool.apply_async(square, 1), std::logic_error);
  pool.join();
  EXPECT_TRUE(r.ready());
  EXPECT_EQ(r.get(), (std::vector<int>{1, 4, 9}));

  mpp::mpi::Pool t;
  auto slow = t.apply_async(
      [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms;
      },
      200);
  t.terminate();
  if (mpp::mpi::size() > 1) {
    EXPECT_THROW((void)slow.get(10s), mpp::WorkerLost);
  }
  // The ranks still serve other pools once the dropped task ended.
  mpp::mpi::Pool again;
  EXPECT_EQ(again.apply(square, 9), 81);
}

TEST(MpiPool, BadArguments) {
  mpp::mpi::PoolOptions o;
  o.task_timeout = 0ms;
  EXPECT_THROW(mpp::mpi::Pool{o}, std::invalid_argument);
  mpp::mpi::PoolOptions c;
  c.chunks_per_rank = 0;
  EXPECT_THROW(mpp::mpi::Pool{c}, std::invalid_argument);
  mpp::mpi::Pool pool;
  EXPECT_THROW((void)pool.imap(square, std::vector<int>{1}, 0), std::invalid_argument);
}

TEST(MpiPool, InputRangeErrorIsRethrown) {
  mpp::mpi::Pool pool;
  auto bad = std::views::iota(0, 10) | std::views::transform([](int i) {
               if (i == 5) throw std::length_error("input broke");
               return i;
             });
  EXPECT_THROW((void)pool.map(square, bad, 1), std::length_error);
}

TEST(MpiPool, UnknownIdFailsTheTaskNeverJumps) {
  mpp::mpi::Pool pool;
  using B = mpp::mpi::detail::CollectBatch<int, int, std::vector<int>, std::vector<int>>;
  auto engine = mpp::mpi::detail::engine_start();
  auto batch = std::make_shared<B>(std::vector<int>{1, 2});
  batch->chunksize = 1;
  batch->trampoline = 0x1234567887654321ULL;  // no rank has this id
  mpp::mpi::detail::engine_submit(*engine, batch);
  mpp::mpi::detail::engine_wait(*engine, [&] { return batch->finished(); });
  try {
    (void)batch->take();
    FAIL();
  } catch (const mpp::RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("does not know callable id"), std::string::npos)
        << e.what();
  }
}

// cancel() through the pool core: a queued task is dropped; a running one cannot be stopped (a
// rank is not ours to kill), so its result is discarded when it arrives and nothing hangs.
TEST(MpiPool, CancelDropsQueuedTasksAndNeverHangsOnRunningOnes) {
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::PoolOptions o;
  o.processes = 1;        // one rank,
  o.chunks_per_rank = 1;  // one chunk at a time: the second call stays queued on rank 0
  mpp::mpi::Pool pool(o);
  auto sleeper = [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  };
  auto running = pool.apply_async(sleeper, 300);
  auto queued = pool.apply_async(square, 6);
  EXPECT_FALSE(queued.cancelled());
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.cancelled());
  EXPECT_TRUE(queued.cancel());  // stays cancelled
  EXPECT_TRUE(queued.ready());
  EXPECT_FALSE(queued.successful());
  EXPECT_THROW((void)queued.get(), mpp::CancelledError);
  EXPECT_EQ(running.get(60s), 300);
  EXPECT_FALSE(running.cancel());  // completed already
  EXPECT_FALSE(running.cancelled());

  auto busy = pool.apply_async(sleeper, 200);
  EXPECT_TRUE(busy.cancel());
  EXPECT_THROW((void)busy.get(), mpp::CancelledError);
  EXPECT_EQ(pool.apply(square, 7), 49);  // runs once the rank is free again

  auto m = pool.map_async(sleeper, std::vector<int>(10, 50), 1);
  EXPECT_TRUE(m.cancel());
  EXPECT_THROW((void)m.get(), mpp::CancelledError);
  {
    auto range = pool.imap(square, std::views::iota(0, 100));
    auto it = range.begin();
    EXPECT_EQ(*it, 0);
  }  // dropped early: the rest is cancelled
  auto range = pool.imap(square, std::views::iota(0, 100));
  auto it = range.begin();
  EXPECT_EQ(*it, 0);
  EXPECT_TRUE(range.cancel());
  ++it;
  ASSERT_FALSE(it == range.end());
  EXPECT_THROW((void)*it, mpp::CancelledError);
  ++it;
  EXPECT_TRUE(it == range.end());
  EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
}

// Last: a rank given up on serves no more work in this process.
TEST(MpiPool, TaskTimeoutTurnsAHangIntoAnError) {
  if (mpp::mpi::size() < 2) GTEST_SKIP() << "needs a worker rank";
  mpp::test::Watchdog dog{std::chrono::seconds(kWatchdogSeconds)};
  mpp::mpi::PoolOptions o;
  o.task_timeout = 400ms;
  mpp::mpi::Pool pool(o);
  std::vector<int> in(30);
  std::iota(in.begin(), in.end(), 0);
  auto r = pool.map_async(
      [](int i) {
        // Task 0 hangs (as if its rank were cut off); the rest are quick.
        std::this_thread::sleep_for(i == 0 ? 2500ms : 1ms);
        return i;
      },
      in, 1);
  try {
    (void)r.get();
    FAIL() << "no timeout";
  } catch (const mpp::WorkerLost& e) {
    EXPECT_EQ(e.task_index(), 0);
    EXPECT_NE(std::string(e.what()).find("exceeded task_timeout"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.processes(), static_cast<unsigned>(mpp::mpi::size() - 2));
  if (mpp::mpi::size() >= 3) {
    // Later work goes to the ranks still in service.
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
  } else {
    // No rank left: the work fails at once instead of waiting for one.
    try {
      (void)pool.map(square, std::vector<int>{1, 2, 3}, 1);
      FAIL() << "ran without a worker rank";
    } catch (const mpp::WorkerLost& e) {
      EXPECT_NE(std::string(e.what()).find("no worker rank left"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(mpp::test::zombie_children().empty());
}

int main(int argc, char** argv) {
  // Ranks other than 0 serve in here until rank 0 finishes, then exit.
  { mpp::mpi::Pool start; }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
