// The public surface of ../shared/spec/API.md, exercised name by name exactly as a program written
// against the spec would use it (outside programs compile against these names). Each test also
// checks the behaviour the spec states, briefly; the component test files go deeper.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <mpp/mpp.hpp>
#include <mutex>
#include <optional>
#include <ranges>
#include <set>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

int twice(int x) { return 2 * x; }
int add(int a, int b) { return a + b; }
void nothing(int) {}

TEST(ApiSurface, ErrorsHierarchy) {
  static_assert(std::is_base_of_v<std::runtime_error, mpp::Error>);
  static_assert(std::is_base_of_v<mpp::Error, mpp::RemoteError>);
  static_assert(std::is_base_of_v<mpp::Error, mpp::WorkerLost>);
  static_assert(std::is_base_of_v<mpp::Error, mpp::TimeoutError>);
  static_assert(std::is_base_of_v<mpp::Error, mpp::QueueClosed>);
  static_assert(std::is_base_of_v<mpp::Error, mpp::SerializationError>);
  static_assert(std::is_base_of_v<mpp::Error, mpp::CancelledError>);
  mpp::WorkerLost lost(4242, 17, 9, 0);
  EXPECT_STREQ(lost.what(), "worker 4242 lost while running task 17: killed by signal 9 (SIGKILL)");
  EXPECT_EQ(lost.pid(), 4242);
  EXPECT_EQ(lost.task_index(), 17);
  EXPECT_EQ(lost.signal(), 9);
  EXPECT_EQ(lost.exit_code(), 0);
  mpp::RemoteError remote("std::runtime_error", "boom", 12, 3);
  EXPECT_EQ(remote.type_name(), "std::runtime_error");
  EXPECT_NE(std::string(remote.what()).find("boom"), std::string::npos);
  EXPECT_EQ(remote.pid(), 12);
  EXPECT_EQ(remote.task_index(), 3);
}

TEST(ApiSurface, ProcessSection2) {
  mpp::ProcessOptions opts;
  opts.name = "api";
  opts.nice = 1;
  opts.cpus = {};
  opts.daemon = false;
  mpp::Process p(
      opts, [](int code) { throw mpp::SystemExit{code}; }, 5);
  p.start();
  EXPECT_TRUE(p.join(10s));
  p.join();
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::optional<int>(5));
  EXPECT_GT(p.pid(), 0);
  EXPECT_EQ(p.name(), "api");
  EXPECT_FALSE(p.error().has_value());
  mpp::Process q([] { throw std::logic_error("x"); });
  q.start();
  q.join();
  std::optional<mpp::RemoteError> e = q.error();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type_name(), "std::logic_error");
  mpp::Process t([] {
    for (;;) pause();
  });
  t.start();
  t.terminate();
  t.join();
  EXPECT_EQ(t.exitcode(), -SIGTERM);
  mpp::Process k([] {
    for (;;) pause();
  });
  k.start();
  k.kill();
  k.join();
  EXPECT_EQ(k.exitcode(), -SIGKILL);
  int n = mpp::nice(0);
  (void)n;
  EXPECT_GE(mpp::cpu_count(), 1u);
  std::vector<pid_t> kids = mpp::active_children();
  EXPECT_TRUE(kids.empty());
}

TEST(ApiSurface, QueueSection3) {
  mpp::test::Watchdog wd(60s, "queue api");
  mpp::QueueOptions qo;
  qo.maxsize = 4;
  qo.capacity_bytes = 1 << 16;
  mpp::Queue<std::string> q(qo);
  mpp::Queue<int> q2;
  mpp::Queue<int> q3(std::size_t{8});
  q.put("a");
  EXPECT_TRUE(q.try_put("b"));
  EXPECT_TRUE(q.put("c", 100ms));
  EXPECT_EQ(q.size(), 3u);
  EXPECT_FALSE(q.empty());
  EXPECT_TRUE(q.put("d", 100ms));
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.try_put("e"));
  EXPECT_FALSE(q.put("e", 10ms));
  EXPECT_EQ(q.get(), "a");
  EXPECT_EQ(q.try_get(), std::optional<std::string>("b"));
  EXPECT_EQ(q.get(100ms), std::optional<std::string>("c"));
  // A handle: a copy passed to a child refers to the same queue.
  mpp::Process child([](mpp::Queue<int> qq) { qq.put(41); }, q2);
  child.start();
  EXPECT_EQ(q2.get(), 41);
  child.join();
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_THROW(q.put("x"), mpp::QueueClosed);
  EXPECT_EQ(q.get(), "d");  // drains first
  EXPECT_THROW((void)q.get(), mpp::QueueClosed);
  EXPECT_FALSE(q3.get(10ms).has_value());

  mpp::JoinableQueue<int> jq;
  jq.put(1);
  jq.put(2);
  mpp::Process worker(
      [](mpp::JoinableQueue<int> j) {
        for (int i = 0; i < 2; ++i) {
          (void)j.get();
          j.task_done();
        }
      },
      jq);
  worker.start();
  jq.join();
  worker.join();
  EXPECT_EQ(worker.exitcode(), 0);
}

TEST(ApiSurface, PoolSection4) {
  mpp::test::Watchdog wd(120s, "pool api");
  mpp::PoolOptions po;
  po.processes = 2;
  po.nice = 0;
  po.initializer = [] {};
  po.maxtasksperchild = 0;
  po.task_timeout = std::chrono::milliseconds(20000);
  po.seed = 7;
  mpp::Pool pool(po);
  std::vector<int> xs{1, 2, 3, 4};
  std::vector<int> r = pool.map(twice, xs);
  EXPECT_EQ(r, (std::vector<int>{2, 4, 6, 8}));
  EXPECT_EQ(pool.map(twice, xs, 1), r);
  mpp::AsyncResult<std::vector<int>> ar = pool.map_async(twice, xs);
  ar.wait();
  EXPECT_TRUE(ar.ready());
  EXPECT_TRUE(ar.successful());
  EXPECT_EQ(ar.get(), r);
  std::vector<int> via_imap;
#if defined(__clang__) && __clang_major__ < 15
  // clang 14 cannot compile libstdc++ 12's std::views::iota at all (a compiler bug, not mpp's).
  for (int v : pool.imap(twice, std::vector<int>{0, 1, 2, 3, 4})) via_imap.push_back(v);
#else
  for (int v : pool.imap(twice, std::views::iota(0, 5))) via_imap.push_back(v);
#endif
  EXPECT_EQ(via_imap, (std::vector<int>{0, 2, 4, 6, 8}));
  std::multiset<int> unordered;
  for (int v : pool.imap_unordered(twice, xs, 2)) unordered.insert(v);
  EXPECT_EQ(unordered, (std::multiset<int>{2, 4, 6, 8}));
  std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
  EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7}));
  EXPECT_EQ(pool.apply(add, 20, 22), 42);
  mpp::AsyncResult<int> one = pool.apply_async(add, 1, 1);
  EXPECT_TRUE(one.wait(10s));
  EXPECT_EQ(one.get(10s), 2);
  EXPECT_FALSE(one.cancel());  // completed already
  EXPECT_FALSE(one.cancelled());
  pool.map(nothing, xs);  // void functions: map returns nothing
  auto seeds = pool.map([](int) { return mpp::task_seed(); }, xs);
  EXPECT_EQ(seeds.size(), 4u);
  EXPECT_NE(seeds[0], seeds[1]);
  // The wiki's p.map(f, string): one task per char.
  auto upper = pool.map([](char c) { return static_cast<char>(c - 32); }, std::string("abc"));
  EXPECT_EQ(std::string(upper.begin(), upper.end()), "ABC");
  pool.close();
  pool.join();
  mpp::Pool defaulted;
  mpp::Pool sized(1u);
  EXPECT_EQ(sized.apply(twice, 4), 8);
}

TEST(ApiSurface, SharedStateSection5) {
  mpp::Value<int> v(3);
  v.set(4);
  EXPECT_EQ(v.get(), 4);
  {
    std::lock_guard<mpp::Lock> g(v.get_lock());
    v.set(v.get() + 1);
  }
  EXPECT_EQ(v.get(), 5);
  mpp::Array<double> a(8);
  EXPECT_EQ(a.size(), 8u);
  EXPECT_EQ(a[3], 0.0);
  a[3] = 1.5;
  EXPECT_EQ(a.data()[3], 1.5);
  mpp::Lock& al = a.get_lock();
  al.acquire();
  al.release();
  mpp::SharedMemory shm(4096);
  EXPECT_GE(shm.size(), 4096u);
  shm.data()[0] = std::byte{7};
  mpp::Lock lock;
  lock.acquire();
  lock.release();
  EXPECT_TRUE(lock.acquire(100ms));
  lock.release();
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
  mpp::RLock rlock;
  rlock.acquire();
  rlock.acquire();
  rlock.release();
  rlock.release();
  mpp::Semaphore sem(2);
  sem.acquire();
  EXPECT_TRUE(sem.acquire(10ms));
  EXPECT_FALSE(sem.acquire(10ms));
  sem.release();
  sem.release();
  mpp::BoundedSemaphore bsem(1);
  EXPECT_THROW(bsem.release(), std::logic_error);
  mpp::Event ev;
  EXPECT_FALSE(ev.is_set());
  ev.set();
  ev.wait();
  EXPECT_TRUE(ev.wait(1ms));
  ev.clear();
  EXPECT_FALSE(ev.wait(1ms));
  mpp::Barrier barrier(1);
  barrier.wait();
  auto [left, right] = mpp::Pipe<std::map<std::string, int>>();
  left.send({{"x", 1}});
  EXPECT_TRUE(right.poll(100ms));
  EXPECT_EQ(right.recv().at("x"), 1);
  left.close();
  EXPECT_THROW((void)right.recv(), mpp::QueueClosed);
  auto [reader, writer] = mpp::Pipe<int>(false);
  writer.send(5);
  EXPECT_EQ(reader.recv(), 5);
}

TEST(ApiSurface, CodecSection6) {
  using Nested = std::map<std::string, std::vector<std::optional<std::variant<int, std::string>>>>;
  Nested n{{"k", {std::nullopt, 3, std::string("s")}}};
  auto bytes = mpp::codec::encode(n);
  EXPECT_EQ(mpp::codec::decode<Nested>(bytes), n);
  std::vector<std::byte> junk{std::byte{0xff}, std::byte{0xff}};
  EXPECT_THROW((void)mpp::codec::decode<std::string>(junk), mpp::SerializationError);
}

}  // namespace
