// Tests of <mpp/pool.hpp>: results, ordering, chunking, callables, async results, imap, options,
// progress, seeds. Faults (crashes, timeouts, signals, terminate) are in test_pool_faults.cpp.
// Every test runs under a watchdog and checks that no worker, zombie or fd is left behind.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpp/pool.hpp"
#include "mpp/sync.hpp"
#include "pool_fixture.hpp"
#include "sys/mem.hpp"
#include "sys/sched.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

using mpp::test::shared_mappings;

int plus_one(int x) { return x + 1; }
std::string repeat(char c) { return std::string(3, c); }
long long slow_square(int x) {
  // Uneven work: some items take much longer than others.
  volatile long long acc = 0;
  for (int i = 0; i < (x % 7) * 20000; ++i) acc = acc + i;
  return static_cast<long long>(x) * x;
}
void nothing(int) {}
int add3(int a, int b, int c) { return a + b + c; }

using PoolTest = mpp::test::PoolFixture;

TEST_P(PoolTest, MapPlainFunctionInOrder) {
  mpp::Pool pool(workers());
  std::vector<int> in(10007);
  std::iota(in.begin(), in.end(), -50);
  auto out = pool.map(plus_one, in);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(out[i], in[i] + 1) << i;
}

TEST_P(PoolTest, MapEveryChunksizeAndUnevenWork) {
  mpp::Pool pool(workers());
  for (std::size_t cs : {0u, 1u, 3u, 64u, 1000u}) {
    auto out = pool.map(slow_square, std::views::iota(0, 500), cs);
    ASSERT_EQ(out.size(), 500u);
    for (int i = 0; i < 500; ++i) ASSERT_EQ(out[i], static_cast<long long>(i) * i) << cs;
  }
}

TEST_P(PoolTest, MapOverStringCharsLikeTheWiki) {
  mpp::Pool pool(workers());
  const std::string s = "thisisaverylongstring";
  auto out = pool.map(repeat, s);
  ASSERT_EQ(out.size(), s.size());
  for (std::size_t i = 0; i < s.size(); ++i) EXPECT_EQ(out[i], std::string(3, s[i]));
}

TEST_P(PoolTest, StatelessLambdaAndFunctor) {
  struct Twice {
    int operator()(int x) const { return 2 * x; }
  };
  mpp::Pool pool(workers());
  auto a = pool.map([](int x) { return x * 3; }, std::vector<int>{1, 2, 3});
  EXPECT_EQ(a, (std::vector<int>{3, 6, 9}));
  auto b = pool.map(Twice{}, std::vector<int>{4, 5});
  EXPECT_EQ(b, (std::vector<int>{8, 10}));
  // The persistent workers served these: no fork per call.
  const auto before = pool.worker_pids();
  (void)pool.map([](int x) { return x; }, std::views::iota(0, 100));
  EXPECT_EQ(pool.worker_pids(), before);
}

TEST_P(PoolTest, CapturingLambdaSeesStateAsOfTheCall) {
  mpp::Pool pool(workers());
  int offset = 10;
  std::vector<int> table = {100, 200, 300};
  auto by_ref = [&](int i) { return table[static_cast<std::size_t>(i)] + offset; };
  EXPECT_EQ(pool.map(by_ref, std::vector<int>{0, 1, 2}), (std::vector<int>{110, 210, 310}));
  offset = 20;
  table[1] = 7;
  EXPECT_EQ(pool.map(by_ref, std::vector<int>{0, 1, 2}), (std::vector<int>{120, 27, 320}));
  const std::string suffix = "!";
  EXPECT_EQ(pool.apply([suffix](std::string s) { return s + suffix; }, std::string("hi")), "hi!");
  EXPECT_TRUE(mpp::test::zombie_children().empty());
}

TEST_P(PoolTest, EmptyInput) {
  mpp::Pool pool(workers());
  EXPECT_TRUE(pool.map(plus_one, std::vector<int>{}).empty());
  auto r = pool.map_async(plus_one, std::vector<int>{});
  EXPECT_TRUE(r.get().empty());
  int n = 0;
  for (int v : pool.imap(plus_one, std::vector<int>{})) n += v;
  EXPECT_EQ(n, 0);
}

TEST_P(PoolTest, VoidFunction) {
  mpp::Pool pool(workers());
  pool.map(nothing, std::views::iota(0, 50));
  auto r = pool.apply_async(nothing, 3);
  r.get();
  static_assert(std::is_void_v<decltype(pool.map(nothing, std::vector<int>{}))>);
}

TEST_P(PoolTest, StarmapAndApply) {
  mpp::Pool pool(workers());
  std::vector<std::tuple<int, int, int>> args;
  for (int i = 0; i < 100; ++i) args.emplace_back(i, 2 * i, 3 * i);
  auto out = pool.starmap(add3, args);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], 6 * i);
  EXPECT_EQ(pool.apply(add3, 1, 2, 3), 6);
}

// The gate AsyncResultApi's slow task waits at: an Event made before the pool, so that every
// worker (forked by the pool) shares it.
mpp::Event* g_gate = nullptr;

TEST_P(PoolTest, AsyncResultApi) {
  mpp::Event gate;
  g_gate = &gate;
  mpp::Pool pool(workers());
  auto r = pool.apply_async(plus_one, 41);
  r.wait();
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.get(), 42);
  EXPECT_THROW((void)r.get(), std::logic_error);

  // A task that cannot finish before the test opens the gate (not one that takes 300 ms: a
  // loaded machine can keep the parent off the CPU that long).
  auto slow = pool.apply_async(
      [](int v) {
        g_gate->wait();
        return v;
      },
      300);
  EXPECT_FALSE(slow.ready());
  EXPECT_THROW((void)slow.successful(), std::logic_error);
  EXPECT_FALSE(slow.wait(10ms));
  EXPECT_THROW((void)slow.get(10ms), mpp::TimeoutError);
  gate.set();
  EXPECT_EQ(slow.get(10s), 300);

  auto m = pool.map_async(plus_one, std::vector<int>{1, 2, 3});
  EXPECT_EQ(m.get(), (std::vector<int>{2, 3, 4}));
}

TEST_P(PoolTest, ManyAsyncResultsInterleaved) {
  mpp::Pool pool(workers());
  std::vector<mpp::AsyncResult<int>> rs;
  for (int i = 0; i < 2000; ++i) rs.push_back(pool.apply_async(plus_one, i));
  for (int i = 1999; i >= 0; --i) ASSERT_EQ(rs[static_cast<std::size_t>(i)].get(), i + 1);
}

TEST_P(PoolTest, ImapOrderedAndUnordered) {
  mpp::Pool pool(workers());
  std::vector<long long> got;
  for (long long v : pool.imap(slow_square, std::views::iota(0, 300), 7)) got.push_back(v);
  ASSERT_EQ(got.size(), 300u);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], 1LL * i * i);

  std::vector<long long> un;
  for (long long v : pool.imap_unordered(slow_square, std::views::iota(0, 300), 5)) un.push_back(v);
  std::sort(un.begin(), un.end());
  ASSERT_EQ(un, got);
}

TEST_P(PoolTest, ImapAbandonedHalfWayLeavesPoolUsable) {
  mpp::Pool pool(workers());
  {
    auto r = pool.imap(plus_one, std::views::iota(0, 1000000), 100);
    int n = 0;
    for (int v : r) {
      ASSERT_EQ(v, n + 1);
      if (++n == 1000) break;
    }
  }
  EXPECT_EQ(pool.map(plus_one, std::vector<int>{5}), std::vector<int>{6});
}

TEST_P(PoolTest, ImapIsLazyWithBoundedWindow) {
  mpp::Pool pool(workers());
  int produced = 0;
  auto gen = std::views::iota(0, 1000000) | std::views::transform([&produced](int x) {
               ++produced;
               return x;
             });
  auto r = pool.imap(plus_one, gen, 10);
  auto it = r.begin();
  ASSERT_EQ(*it, 1);
  // Only a window of a few chunks per worker was consumed from the input, not all of it.
  EXPECT_LT(produced, 10 * 4 * static_cast<int>(workers()) + 100);
  EXPECT_GT(produced, 0);
}

TEST_P(PoolTest, TaskSeedIndependentOfWorkerCount) {
  auto draw = [](unsigned n) {
    mpp::PoolOptions o;
    o.processes = n;
    o.seed = 1234;
    mpp::Pool pool(o);
    return pool.map([](int) { return mpp::task_seed(); }, std::views::iota(0, 200));
  };
  auto a = draw(workers());
  auto b = draw(1);
  EXPECT_EQ(a, b);
  std::sort(a.begin(), a.end());
  EXPECT_EQ(std::unique(a.begin(), a.end()), a.end()) << "seeds must differ per index";
  mpp::PoolOptions o;
  o.processes = workers();
  o.seed = 99;
  mpp::Pool other(o);
  EXPECT_NE(other.apply([] { return mpp::task_seed(); }), draw(1)[0]);
}

TEST_P(PoolTest, InitializerAndNice) {
  mpp::PoolOptions o;
  o.processes = workers();
  o.nice = 3;
  o.initializer = [] { setenv("MPP_POOL_INIT", "yes", 1); };
  mpp::Pool pool(o);
  auto out = pool.map([](int) { return std::string(getenv("MPP_POOL_INIT") ? "yes" : "no"); },
                      std::views::iota(0, 20));
  for (const auto& s : out) EXPECT_EQ(s, "yes");
  const int parent_nice = getpriority(PRIO_PROCESS, 0);
  for (pid_t pid : pool.worker_pids()) {
    EXPECT_EQ(mpp::test::proc_stat(pid).nice, std::min(parent_nice + 3, 19));
  }
}

TEST_P(PoolTest, InitializerThrowingBreaksThePoolWithRemoteError) {
  mpp::PoolOptions o;
  o.processes = workers();
  o.initializer = [] { throw std::runtime_error("no database"); };
  mpp::Pool pool(o);
  try {
    (void)pool.map(plus_one, std::vector<int>{1, 2, 3});
    FAIL() << "expected RemoteError";
  } catch (const mpp::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::runtime_error");
    EXPECT_NE(std::string(e.what()).find("no database"), std::string::npos);
  }
}

TEST_P(PoolTest, MaxTasksPerChildReplacesWorkers) {
  mpp::PoolOptions o;
  o.processes = workers();
  o.maxtasksperchild = 2;
  mpp::Pool pool(o);
  auto pids = pool.map([](int) { return static_cast<int>(getpid()); }, std::views::iota(0, 40), 1);
  std::sort(pids.begin(), pids.end());
  const auto distinct = std::unique(pids.begin(), pids.end()) - pids.begin();
  EXPECT_GE(distinct, 20);  // 40 chunks, at most 2 per worker process
  EXPECT_EQ(pool.worker_pids().size(), workers());
}

TEST_P(PoolTest, MaxTasksPerChildOneUnderChurn) {
  // Every chunk retires its worker: the pool must reap each one exactly once and never put two
  // workers on one slot, whichever it notices first (the exit or the last result).
  mpp::PoolOptions o;
  o.processes = workers();
  o.maxtasksperchild = 1;
  mpp::Pool pool(o);
  for (int round = 0; round < 3; ++round) {
    auto out = pool.map(plus_one, std::views::iota(0, 150), 1);
    ASSERT_EQ(out.size(), 150u);
    for (int i = 0; i < 150; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i + 1);
    EXPECT_EQ(pool.worker_pids().size(), workers());
    EXPECT_LE(mpp::test::live_children().size(), workers());
  }
}

TEST_P(PoolTest, CloseJoin) {
  mpp::Pool pool(workers());
  auto r = pool.map_async(plus_one, std::views::iota(0, 1000));
  EXPECT_THROW(pool.join(), std::logic_error);
  pool.close();
  EXPECT_THROW((void)pool.map(plus_one, std::vector<int>{1}), std::logic_error);
  EXPECT_THROW((void)pool.apply_async(plus_one, 1), std::logic_error);
  pool.join();
  auto v = r.get();
  EXPECT_EQ(v.size(), 1000u);
  EXPECT_EQ(v.back(), 1000);
  EXPECT_TRUE(mpp::test::live_children().empty());
}

TEST_P(PoolTest, JoinWithAnUnfinishedImapFailsItsRestInsteadOfHanging) {
  mpp::Pool pool(workers());
  auto r = pool.imap(plus_one, std::views::iota(0, 100000), 10);
  auto it = r.begin();
  ASSERT_EQ(*it, 1);
  pool.close();
  pool.join();
  EXPECT_TRUE(mpp::test::live_children().empty());
  int values = 0;
  bool failed = false;
  for (++it; it != r.end(); ++it) {
    try {
      (void)*it;
      ++values;
    } catch (const mpp::WorkerLost&) {
      failed = true;
    }
  }
  EXPECT_TRUE(failed);
  EXPECT_LT(values, 100000);
}

TEST_P(PoolTest, ProgressCallback) {
  std::vector<mpp::PoolProgress> seen;
  mpp::PoolOptions o;
  o.processes = workers();
  o.on_progress = [&](const mpp::PoolProgress& p) { seen.push_back(p); };
  mpp::Pool pool(o);
  (void)pool.map(slow_square, std::views::iota(0, 400), 10);
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(seen.back().finished);
  EXPECT_EQ(seen.back().done, 400);
  EXPECT_EQ(seen.back().total, 400);
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i].done, seen[i - 1].done);
}

TEST_P(PoolTest, ProgressBarFinalLineWhenNotATerminal) {
  mpp::PoolOptions o;
  o.processes = workers();
  o.progress = true;
  mpp::Pool pool(o);
  testing::internal::CaptureStderr();
  (void)pool.map(plus_one, std::views::iota(0, 1000));
  const std::string err = testing::internal::GetCapturedStderr();
  if (!isatty(2)) {
    EXPECT_NE(err.find("1000/1000 items"), std::string::npos) << err;
  }
}

TEST_P(PoolTest, ResultsOfManyTypes) {
  mpp::Pool pool(workers());
  auto out = pool.map(
      [](int n) {
        std::vector<std::string> v;
        for (int i = 0; i < n; ++i) v.push_back(std::string(static_cast<std::size_t>(i), 'x'));
        return v;
      },
      std::views::iota(0, 30));
  for (int n = 0; n < 30; ++n) {
    ASSERT_EQ(out[static_cast<std::size_t>(n)].size(), static_cast<std::size_t>(n));
    if (n > 0) {
      EXPECT_EQ(out[static_cast<std::size_t>(n)].back().size(), static_cast<std::size_t>(n - 1));
    }
  }
  // A result much larger than the transport's rings streams through.
  auto big =
      pool.apply([](int n) { return std::vector<int>(static_cast<std::size_t>(n), 7); }, 3'000'000);
  EXPECT_EQ(big.size(), 3'000'000u);
  EXPECT_EQ(big[2'999'999], 7);
  auto big_in = pool.apply([](const std::vector<int>& v) { return v.size(); },
                           std::vector<int>(2'000'000, 1));
  EXPECT_EQ(big_in, 2'000'000u);
}

TEST_P(PoolTest, BadOptions) {
  EXPECT_THROW(mpp::Pool(static_cast<unsigned>(-1)), std::invalid_argument);
  EXPECT_THROW(mpp::Pool(100000u), std::invalid_argument);
  mpp::PoolOptions o;
  o.processes = workers();
  o.nice = 1000;
  EXPECT_THROW(mpp::Pool{o}, std::invalid_argument);
  o.nice.reset();
  o.task_timeout = 0ms;
  EXPECT_THROW(mpp::Pool{o}, std::invalid_argument);
  mpp::Pool pool(workers());
  EXPECT_THROW((void)pool.imap(plus_one, std::vector<int>{1}, 0), std::invalid_argument);
  EXPECT_THROW((void)pool.map(plus_one, std::vector<int>{1}, std::size_t{1} << 40),
               std::invalid_argument);
  EXPECT_EQ(pool.map(plus_one, std::vector<int>{1}), std::vector<int>{2});
}

TEST_P(PoolTest, DefaultPoolUsesCpuCount) {
  mpp::Pool pool;
  EXPECT_GE(pool.processes(), 1u);
  EXPECT_EQ(pool.worker_pids().size(), pool.processes());
}

TEST(PoolImap, HugeLazyInputRunsInFlatMemory) {
  mpp::test::Watchdog dog(std::chrono::seconds(170), "imap 10^8");
#if defined(__SANITIZE_ADDRESS__)
  const long long n = 2'000'000;  // ASan's quarantine would dominate the RSS measure
#else
  const long long n = 100'000'000;
#endif
  mpp::Pool pool(2);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  long long sum = 0, count = 0;
  for (long long v :
       pool.imap([](long long x) { return x + 1; }, std::views::iota(0LL, n), 65536)) {
    sum += v;
    ++count;
  }
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_EQ(count, n);
  EXPECT_EQ(sum, n * (n + 1) / 2);
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(after.ru_maxrss, 64 * 1024) << "peak RSS (KiB) of the parent";
#endif
  (void)before;
}

// The store behind imap/imap_unordered of both backends (detail/pool_core/results.hpp), driven
// directly. Ordered: out-of-order chunks come out in order, and the first outcome of an index wins,
// so a position is never handed out twice (issue 16.3: a re-reported chunk made imap hang).
TEST(StreamedResults, OrderedHandsEachIndexOutOnceAndInOrder) {
  mpp::detail::StreamedResults<int, true> r;
  auto put = [&](std::int64_t i, int v) {
    mpp::detail::StreamItem<int> item;
    item.index = i;
    item.value = v;
    r.put(std::move(item));
  };
  put(2, 20);
  put(3, 30);
  EXPECT_FALSE(r.has_next());
  put(0, 0);
  put(2, -1);  // stored already
  put(1, 10);
  put(0, -2);  // stored already
  put(5, 50);
  put(4, 40);  // joins no run: its own
  put(5, -3);  // stored already, in a later run
  std::vector<int> got;
  while (r.has_next()) got.push_back(*r.next().value);
  EXPECT_EQ(got, (std::vector<int>{0, 10, 20, 30, 40, 50}));
  put(1, -4);  // handed out already
  EXPECT_FALSE(r.has_next());
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.taken(), 6);
}

// How one chunk's outcomes reach a batch's store, for both backends (detail/pool_core/results.hpp):
// every position gets one outcome; a result that fails to decode fails where it stands, the ones
// after it cannot be located, the ones before it keep their values.
TEST(ForEachOutcome, EveryPositionGetsExactlyOneOutcome) {
  struct Failures {  // the worker reported position 1 as failed
    std::size_t next = 0;
    [[nodiscard]] std::exception_ptr broken() const { return nullptr; }
    [[nodiscard]] std::uint32_t next_pos() const { return next == 0 ? 1 : UINT32_MAX; }
    std::exception_ptr take() {
      ++next;
      return std::make_exception_ptr(std::runtime_error("task failed"));
    }
  } failures;
  const std::vector<std::int64_t> skipped{12};  // a worker died on it: no outcome here
  const mpp::detail::ChunkOutcome c{10, 7, skipped};
  int decodes = 0;
  std::map<std::int64_t, std::string> got;
  mpp::detail::for_each_outcome<int>(
      c, failures,
      [&] {
        if (++decodes == 3) throw mpp::SerializationError("bad bytes");
        return decodes;
      },
      [&](std::int64_t idx, int v) noexcept { got[idx] += "value " + std::to_string(v) + ";"; },
      [&](std::int64_t idx, std::exception_ptr e) noexcept {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          got[idx] += std::string("error ") + x.what() + ";";
        }
      });
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[10], "value 1;");
  EXPECT_EQ(got[11], "error task failed;");
  EXPECT_EQ(got.count(12), 0u);
  EXPECT_EQ(got[13], "value 2;");
  EXPECT_EQ(got[14], "error bad bytes;");
  EXPECT_NE(got[15].find("cannot be located"), std::string::npos) << got[15];
  EXPECT_NE(got[16].find("cannot be located"), std::string::npos) << got[16];
  EXPECT_EQ(decodes, 3);
}

INSTANTIATE_TEST_SUITE_P(Workers, PoolTest, ::testing::Values(1u, 2u, 5u));

}  // namespace

namespace {
TEST(PoolIonice, EveryWorkerRunsAtTheGivenBestEffortLevel) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(60), "pool ionice");
  mpp::PoolOptions o;
  o.processes = 2;
  o.ionice = 6;
  mpp::Pool pool(o);
  const auto seen = pool.map(
      [](int) {
        const auto io = mpp::sys::current_ionice();
        return io.io_class * 10 + io.level;
      },
      std::views::iota(0, 40), 1);
  for (int v : seen) EXPECT_EQ(v, 26);
  o.ionice = 8;
  EXPECT_THROW(mpp::Pool{o}, std::invalid_argument);
  o.ionice = -1;
  EXPECT_THROW(mpp::Pool{o}, std::invalid_argument);
}
}  // namespace

namespace {
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsanAllocator = true;  // aborts on a refused mmap; keeps freed memory (quarantine)
#else
constexpr bool kAsanAllocator = false;
#endif

// Allocates and touches `mib` MiB, then frees it (or, with leak, keeps it forever).
int use_memory(int mib) {
  const bool leak = mib < 0;
  const std::size_t bytes = static_cast<std::size_t>(leak ? -mib : mib) << 20;
  char* p = new char[bytes];
  for (std::size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  const int first = p[0];
  if (!leak) delete[] p;
  return first;
}

TEST(PoolMemory, ATaskOverTheMemoryLimitFailsAloneWithBadAlloc) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(90), "pool memory_limit");
  mpp::PoolOptions o;
  o.processes = 2;
  o.memory_limit = std::size_t{256} << 20;
  mpp::Pool pool(o);
  const auto pids = pool.worker_pids();
  // 32 MiB fits under 256 MiB; 1 GiB does not.
  EXPECT_EQ(pool.apply(use_memory, 32), 1);
  try {
    (void)pool.apply(use_memory, 1024);
    ADD_FAILURE() << "a 1 GiB task under a 256 MiB limit must fail";
  } catch (const mpp::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::bad_alloc") << e.what();
  } catch (const mpp::WorkerLost& e) {
    EXPECT_TRUE(kAsanAllocator) << "only ASan's allocator ends the worker: " << e.what();
  }
  // The other tasks are untouched, and (without ASan) the workers are the same processes.
  const auto after = pool.map(use_memory, std::vector<int>(8, 16), 1);
  for (int v : after) EXPECT_EQ(v, 1);
  if (!kAsanAllocator) {
    EXPECT_EQ(pool.worker_pids(), pids);
  }
}

TEST(PoolMemory, ALeakingWorkerIsReplacedAndAFrugalOneKept) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(90), "pool max_memory_per_child");
  mpp::sys::MemoryUse mine;
  ASSERT_TRUE(mpp::sys::memory_use(mine));
  mpp::PoolOptions o;
  o.processes = 1;
  // A worker starts with about the parent's resident memory; allow 96 MiB of growth.
  o.max_memory_per_child = mine.resident + (std::size_t{96} << 20);
  mpp::Pool pool(o);
  const pid_t first = pool.worker_pids().at(0);
  if (!kAsanAllocator) {
    // 64 MiB taken and given back, ten times: the worker stays.
    for (int v : pool.map(use_memory, std::vector<int>(10, 64), 1)) EXPECT_EQ(v, 1);
    EXPECT_EQ(pool.worker_pids().at(0), first);
  }
  // 32 MiB leaked per task: after a few tasks it is over the limit and replaced; every task
  // still gives its result (the chunks it had not started run in the replacement).
  for (int v : pool.map(use_memory, std::vector<int>(12, -32), 1)) EXPECT_EQ(v, 1);
  EXPECT_NE(pool.worker_pids().at(0), first);
  EXPECT_GE(pool.stats().workers.at(0).recycled, 1u);  // counted as recycling, not as a crash
  EXPECT_EQ(pool.stats().workers.at(0).crashes, 0u);
  EXPECT_EQ(pool.map(plus_one, std::vector<int>{1, 2, 3}), (std::vector<int>{2, 3, 4}));
}

TEST(PoolMemory, ZeroLimitsAreRejected) {
  mpp::PoolOptions o;
  o.processes = 1;
  o.memory_limit = 0;
  EXPECT_THROW(mpp::Pool{o}, std::invalid_argument);
  o.memory_limit.reset();
  o.max_memory_per_child = 0;
  EXPECT_THROW(mpp::Pool{o}, std::invalid_argument);
}
}  // namespace

namespace {
int kill_on_seven(int x) {
  if (x == 7) raise(SIGKILL);
  return x;
}
int sleep_on_three(int x) {
  if (x == 3) std::this_thread::sleep_for(std::chrono::seconds(30));  // killed by task_timeout
  return x;
}

TEST(PoolStatsTest, CountsTasksBusyTimeAndRestartsByCause) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(90), "pool stats");
  mpp::PoolOptions o;
  o.processes = 2;
  o.maxtasksperchild = 5;  // chunks per worker
  o.task_timeout = std::chrono::milliseconds(300);
  mpp::Pool pool(o);
  auto s = pool.stats();
  ASSERT_EQ(s.workers.size(), 2u);
  EXPECT_EQ(s.tasks_done, 0u);
  EXPECT_EQ(s.restarts, 0u);
  for (const auto& w : s.workers) {
    EXPECT_GT(w.pid, 0);
    EXPECT_GT(w.peak_rss, 0u);
  }

  // 12 chunks of 1 over 2 workers with maxtasksperchild 5: at least one recycle.
  (void)pool.map(plus_one, std::views::iota(0, 12), 1);
  s = pool.stats();
  EXPECT_EQ(s.tasks_done, 12u);
  std::uint64_t recycled = 0;
  for (const auto& w : s.workers) recycled += w.recycled;
  EXPECT_GE(recycled, 1u);

  // A worker killed mid-task: one crash; a task past its timeout: one timeout.
  const auto before = pool.stats();
  EXPECT_THROW((void)pool.map(kill_on_seven, std::views::iota(0, 10), 1), mpp::WorkerLost);
  EXPECT_THROW((void)pool.map(sleep_on_three, std::views::iota(0, 5), 1), mpp::WorkerLost);
  s = pool.stats();
  std::uint64_t crashes = 0, timeouts = 0;
  std::chrono::nanoseconds busy{0};
  for (const auto& w : s.workers) {
    crashes += w.crashes;
    timeouts += w.timeouts;
    busy += w.busy;
  }
  EXPECT_EQ(crashes, 1u);
  EXPECT_EQ(timeouts, 1u);
  EXPECT_GE(s.restarts, before.restarts + 2);
  EXPECT_GT(s.tasks_done, before.tasks_done);  // the items that did come back
  EXPECT_GT(busy.count(), 0);
  // The pids are the current workers'.
  std::vector<pid_t> pids;
  for (const auto& w : s.workers) pids.push_back(w.pid);
  EXPECT_EQ(pids, pool.worker_pids());
}
}  // namespace
