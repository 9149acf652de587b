// Tests of <mpp/start_method.hpp>: StartMethod, mpp::init, the forkserver and spawn start methods
// of mpp::Pool (function identity, rejection of callables with state, crashes, leaks, the
// server's end), and the per-pool zygote and the multi-thread warning of StartMethod::fork.
//
// This binary has its own main(), beginning with mpp::init (a forkserver or spawned worker is a
// fresh execution of it, diverted there).
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mpp/detail/registry.hpp"
#include "mpp/pool.hpp"
#include "mpp/process.hpp"
#include "mpp/start_method.hpp"
#include "pool_fixture.hpp"
#include "process/forker.hpp"
#include "sys/module.hpp"
#include "test_util.hpp"

namespace {

using mpp::Pool;
using mpp::PoolOptions;
using mpp::StartMethod;
using namespace std::chrono_literals;

int square(int x) { return x * x; }
int negate(int x) { return -x; }
struct Twice {
  int operator()(int x) const { return 2 * x; }
};

int g_initialized = 0;  // set by init_worker in a worker
void init_worker() { g_initialized = 42; }
int initialized(int) { return g_initialized; }
void init_throws() { throw std::runtime_error("init failed on purpose"); }

int crash_on_three(int x) {
  if (x == 3) std::raise(SIGSEGV);
  return x;
}

std::string helper() { return std::string(MPP_HELPER_DIR) + "/mpp_helper_start_methods"; }

// The output of `cmd` (stdout, and stderr when asked), and its exit code.
std::string run_program(const std::string& cmd, int* code = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int st = ::pclose(p);
  if (code != nullptr) *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// The fixture: a watchdog, and after each test nothing left behind: the forkserver is stopped
// and reaped, then no child, zombie, fd or shared mapping remains.
class StartMethodTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    fds_ = mpp::test::open_fd_count();
    maps_ = mpp::test::shared_mappings();
    dog_ = std::make_unique<mpp::test::Watchdog>(120s, "start method test");
  }
  void TearDown() override {
    mpp::detail::Forker::stop_server();
    dog_.reset();
    EXPECT_TRUE(mpp::test::live_children().empty()) << "a worker or server outlived its pool";
    EXPECT_TRUE(mpp::test::zombie_children().empty()) << "zombie left behind";
    EXPECT_EQ(mpp::test::open_fd_count(), fds_) << "fd leaked";
    EXPECT_EQ(mpp::test::shared_mappings(), maps_) << "a pool's shared mapping was not unmapped";
  }
  unsigned workers() const { return GetParam(); }
  PoolOptions options(StartMethod m) const {
    PoolOptions o;
    o.processes = workers();
    o.start_method = m;
    return o;
  }

 private:
  int fds_ = 0;
  int maps_ = 0;
  std::unique_ptr<mpp::test::Watchdog> dog_;
};

class FreshStart : public StartMethodTest {};  // forkserver and spawn, with a worker count
INSTANTIATE_TEST_SUITE_P(Workers, FreshStart, ::testing::Values(1u, 2u, 3u));

TEST(StartMethodApi, DefaultIsForkAndSetSticks) {
  EXPECT_EQ(mpp::get_start_method(), StartMethod::fork);
  mpp::set_start_method(StartMethod::forkserver);
  EXPECT_EQ(mpp::get_start_method(), StartMethod::forkserver);
  mpp::set_start_method(StartMethod::fork);
  EXPECT_STREQ(mpp::to_string(StartMethod::spawn), "spawn");
  EXPECT_FALSE(PoolOptions{}.start_method.has_value());
  EXPECT_FALSE(mpp::ProcessOptions{}.start_method.has_value());
}

TEST_P(FreshStart, ForkserverRunsFunctionsPointersLambdasAndFunctors) {
  Pool pool(options(StartMethod::forkserver));
  const pid_t server = mpp::detail::Forker::server_pid();
  ASSERT_GT(server, 0);
  for (pid_t w : pool.worker_pids()) {
    EXPECT_EQ(mpp::test::proc_stat(w).ppid, server) << "a worker not forked by the server";
  }
  std::vector<int> want;
  for (int i = 0; i < 100; ++i) want.push_back(i * i);
  EXPECT_EQ(pool.map(square, std::views::iota(0, 100)), want);
  int (*fp)(int) = negate;
  EXPECT_EQ(pool.apply(fp, 7), -7);
  EXPECT_EQ(pool.apply([](int a, int b) { return a + b; }, 2, 3), 5);
  EXPECT_EQ(pool.apply(Twice{}, 21), 42);
  auto r = pool.apply_async(square, 9);
  EXPECT_EQ(r.get(), 81);
  std::vector<int> got;
  for (int v : pool.imap(square, std::vector<int>{1, 2, 3})) got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{1, 4, 9}));
  pool.close();
  pool.join();
}

TEST_P(FreshStart, SpawnRunsTheWikiPoolExample) {
  // The wiki's first Pool example (examples/quickstart.cpp) with every worker a fresh execution.
  Pool p(options(StartMethod::spawn));
  for (pid_t w : p.worker_pids()) EXPECT_EQ(mpp::test::proc_stat(w).ppid, ::getpid());
  EXPECT_EQ(p.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
  EXPECT_EQ(p.apply([](int x) { return x + 1; }, 1), 2);
}

TEST_P(FreshStart, InitializerByFunctionRunsInEveryWorker) {
  for (StartMethod m : {StartMethod::forkserver, StartMethod::spawn}) {
    PoolOptions o = options(m);
    o.initializer = init_worker;
    Pool pool(o);
    const auto got = pool.map(initialized, std::vector<int>(8, 0), 1);
    for (int v : got) EXPECT_EQ(v, 42) << mpp::to_string(m);
    EXPECT_EQ(g_initialized, 0) << "the initializer ran in the parent";
  }
  PoolOptions o = options(StartMethod::forkserver);
  o.initializer = [] { g_initialized = 7; };  // captureless lambda
  Pool pool(o);
  EXPECT_EQ(pool.apply(initialized, 0), 7);
}

TEST_P(FreshStart, InitializerThatThrowsBreaksThePool) {
  PoolOptions o = options(StartMethod::forkserver);
  o.initializer = init_throws;
  Pool pool(o);
  try {
    (void)pool.apply(square, 2);
    FAIL() << "no error";
  } catch (const mpp::RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("init failed on purpose"), std::string::npos) << e.what();
  }
}

TEST_P(FreshStart, CallablesWithStateAreRejected) {
  const int k = 3;
  for (StartMethod m : {StartMethod::forkserver, StartMethod::spawn}) {
    Pool pool(options(m));
    try {
      (void)pool.apply([k](int x) { return x + k; }, 1);
      FAIL() << "a capturing lambda was accepted under " << mpp::to_string(m);
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(mpp::to_string(m)), std::string::npos) << e.what();
    }
    std::function<int(int)> f = square;
    EXPECT_THROW((void)pool.map(f, std::vector<int>{1}), std::invalid_argument);
    EXPECT_THROW((void)pool.imap([&k](int x) { return x * k; }, std::vector<int>{1}),
                 std::invalid_argument);
    // The pool is still fine after the refusals.
    EXPECT_EQ(pool.apply(square, 5), 25);
    PoolOptions o = options(m);
    o.initializer = [k] { g_initialized = k; };
    EXPECT_THROW(Pool{o}, std::invalid_argument);
  }
}

TEST_P(FreshStart, CapturingLambdasStillWorkUnderFork) {
  const int k = 3;
  Pool pool(options(StartMethod::fork));
  EXPECT_EQ(pool.apply([k](int x) { return x + k; }, 1), 4);
  std::vector<int> seen;
  EXPECT_EQ(
      pool.map([&](int x) { return x + static_cast<int>(seen.size()); }, std::vector<int>{1, 2}),
      (std::vector<int>{1, 2}));
}

TEST_P(FreshStart, CrashedWorkerIsReplacedByTheServer) {
  for (StartMethod m : {StartMethod::forkserver, StartMethod::spawn}) {
    Pool pool(options(m));
    auto results = pool.map_async(crash_on_three, std::views::iota(0, 8), 1);
    try {
      (void)results.get();
      FAIL() << "no WorkerLost";
    } catch (const mpp::WorkerLost& e) {
      EXPECT_EQ(e.task_index(), 3);
#if defined(__SANITIZE_ADDRESS__)
      // The sanitizer's own SIGSEGV handler reports the crash and exits 1, or aborts (SIGABRT,
      // seen under load); mpp leaves its signals alone.
      EXPECT_TRUE(e.signal() != 0 || e.exit_code() != 0) << e.what();
#else
      EXPECT_EQ(e.signal(), SIGSEGV) << e.what();
      EXPECT_NE(std::string(e.what()).find("killed by signal 11"), std::string::npos) << e.what();
#endif
    }
    EXPECT_EQ(pool.apply(square, 6), 36);  // served by the replacement
    EXPECT_EQ(pool.stats().restarts, 1u) << mpp::to_string(m);
  }
}

TEST_P(FreshStart, TimeoutAndRecyclingWorkUnderForkserver) {
  PoolOptions o = options(StartMethod::forkserver);
  o.maxtasksperchild = 2;
  Pool pool(o);
  std::vector<int> want;
  for (int i = 0; i < 12; ++i) want.push_back(i * i);
  EXPECT_EQ(pool.map(square, std::views::iota(0, 12), 1), want);
  EXPECT_GT(pool.stats().restarts, 0u);
}

TEST_P(FreshStart, PoolWithoutInitThrowsLogicError) {
  int code = -1;
  const std::string out = run_program(helper() + " no-init", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("LOGIC"), std::string::npos) << out;
  EXPECT_NE(out.find("mpp::init"), std::string::npos) << out;
}

TEST(FunctionIdentity, UnknownIdsAreRefusedNotCalled) {
  EXPECT_EQ(mpp::detail::find_trampoline(0x1234567887654321ULL), nullptr);
  mpp::sys::CodeRef ref;
  ASSERT_TRUE(mpp::sys::code_ref_of(reinterpret_cast<const void*>(&square), ref));
  const char* why = "";
  EXPECT_EQ(mpp::sys::code_at(ref, &why), reinterpret_cast<const void*>(&square));
  mpp::sys::CodeRef bad = ref;
  bad.fingerprint ^= 1;
  EXPECT_EQ(mpp::sys::code_at(bad, &why), nullptr);
  bad = ref;
  bad.module ^= 1;
  EXPECT_EQ(mpp::sys::code_at(bad, &why), nullptr);
  bad = ref;
  bad.offset = ~std::uint64_t{0} >> 4;
  EXPECT_EQ(mpp::sys::code_at(bad, &why), nullptr);
}

TEST_P(FreshStart, OtherUsersCannotReachTheServer) {
  Pool pool(options(StartMethod::forkserver));
  ASSERT_EQ(pool.apply(square, 2), 4);
  const pid_t server = mpp::detail::Forker::server_pid();
  ASSERT_GT(server, 0);
  // Every socket the server holds is an unnamed socket pair end: nothing to connect to.
  std::set<std::string> inodes;
  const std::string dir = "/proc/" + std::to_string(server) + "/fd";
  for (int fd = 0; fd < 64; ++fd) {
    char link[128] = {};
    const std::string p = dir + "/" + std::to_string(fd);
    if (::readlink(p.c_str(), link, sizeof link - 1) > 0 &&
        std::strncmp(link, "socket:[", 8) == 0) {
      inodes.insert(std::string(link + 8, std::strlen(link) - 9));
    }
  }
  ASSERT_FALSE(inodes.empty());
  std::ifstream unix_table("/proc/net/unix");
  std::string line;
  std::getline(unix_table, line);  // header
  while (std::getline(unix_table, line)) {
    std::istringstream f(line);
    std::string num, refs, proto, flags, type, st, inode, path;
    f >> num >> refs >> proto >> flags >> type >> st >> inode >> path;
    if (inodes.count(inode) == 0) continue;
    EXPECT_TRUE(path.empty()) << "the server holds a named socket: " << path;
    EXPECT_EQ(std::stoul(flags, nullptr, 16) & 0x10000, 0u) << "the server listens on a socket";
  }
  // Another uid cannot get at the server's descriptors either.
  const passwd* nobody = ::getpwnam("nobody");
  const uid_t uid = nobody != nullptr ? nobody->pw_uid : 65534;
  const pid_t child = mpp::test::fork_child([&] {
    if (::setgid(uid) != 0 && ::getuid() == 0) return 10;
    if (::setuid(uid) != 0) return ::getuid() == 0 ? 11 : 0;  // not root: already another uid
    for (int fd = 0; fd < 64; ++fd) {
      const std::string p = dir + "/" + std::to_string(fd);
      if (::open(p.c_str(), O_RDWR) >= 0) return 12;
    }
    // And no abstract socket of mpp's to try: connect to the names a careless design would use.
    for (const char* name : {"mpp", "mpp-forkserver", "mpp_forkserver"}) {
      const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::strcpy(a.sun_path + 1, name);
      const auto len =
          static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + std::strlen(name));
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), len) == 0) return 13;
      ::close(s);
    }
    return 0;
  });
  EXPECT_EQ(mpp::test::reap_child(child), 0);
}

TEST(ForkserverLifetime, ServerAndWorkersGoWhenTheProgramIsKilled) {
  mpp::test::Watchdog dog(60s, "server lifetime");
  const std::string cmd = helper() + " serve";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  pid_t server = 0;
  std::vector<pid_t> workers;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    std::istringstream f(buf);
    std::string tag;
    f >> tag;
    if (tag == "SERVER") f >> server;
    if (tag == "WORKERS") {
      pid_t w;
      while (f >> w) workers.push_back(w);
    }
    if (tag == "READY") break;
  }
  ASSERT_GT(server, 0);
  ASSERT_EQ(workers.size(), 2u);
  const pid_t program = mpp::test::proc_stat(server).ppid;
  ASSERT_GT(program, 0);
  ASSERT_EQ(::kill(program, SIGKILL), 0);
  ::pclose(p);
  EXPECT_TRUE(mpp::test::gone_within(server, 10s)) << "the forkserver outlived its program";
  for (pid_t w : workers) EXPECT_TRUE(mpp::test::gone_within(w, 10s)) << "a worker outlived it";
}

// ---- Process ------------------------------------------------------------------------------

void exit_with(int code, std::string text) {
  if (text != "ok") throw std::runtime_error("bad text " + text);
  throw mpp::SystemExit{code};
}
void throws_always() { throw std::out_of_range("out of range on purpose"); }

TEST_P(FreshStart, ProcessTargetsFollowTheSameRules) {
  for (StartMethod m : {StartMethod::forkserver, StartMethod::spawn}) {
    mpp::ProcessOptions o;
    o.start_method = m;
    o.name = "fresh-child";
    mpp::Process p(o, exit_with, static_cast<int>(workers()) + 3, std::string("ok"));
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), static_cast<int>(workers()) + 3) << mpp::to_string(m);
    EXPECT_FALSE(p.error().has_value());

    mpp::Process q(o, throws_always);
    q.start();
    q.join();
    EXPECT_EQ(q.exitcode(), 1);
    ASSERT_TRUE(q.error().has_value());
    EXPECT_NE(std::string(q.error()->what()).find("out of range on purpose"), std::string::npos);

    mpp::Process r(
        o, [](int x) { g_initialized = x; }, 5);  // captureless: fine
    r.start();
    r.join();
    EXPECT_EQ(r.exitcode(), 0);
    EXPECT_EQ(g_initialized, 0);

    const int k = 1;
    mpp::Process bad(o, [k] { g_initialized = k; });
    EXPECT_THROW(bad.start(), std::invalid_argument);
  }
}

// ---- StartMethod::fork: the zygote and the warning ----------------------------------------

class ForkMethod : public StartMethodTest {};
INSTANTIATE_TEST_SUITE_P(Workers, ForkMethod, ::testing::Values(1u, 2u, 3u));

std::mutex g_log_mutex;  // held by another thread while workers are replaced
int log_and_crash(int x) {
  std::lock_guard lock(g_log_mutex);  // a replacement forked from this program now would hang
  if (x % 5 == 4) std::raise(SIGSEGV);
  return x;
}

TEST_P(ForkMethod, ReplacementsComeFromTheZygoteNotTheThreadedProgram) {
  Pool pool(options(StartMethod::fork));
  // Now another thread holds the lock the tasks take, for the rest of the test.
  std::promise<void> locked;
  std::promise<void> release;
  std::thread holder([&] {
    std::lock_guard lock(g_log_mutex);
    locked.set_value();
    release.get_future().wait();
  });
  locked.get_future().wait();
  // The pool's workers were forked before the lock was taken: they can take it (their copy).
  int lost = 0;
  int ok = 0;
  std::vector<mpp::AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) results.push_back(pool.apply_async(log_and_crash, i));
  for (auto& r : results) {
    try {
      (void)r.get();
      ++ok;
    } catch (const mpp::WorkerLost&) {
      ++lost;
    }
  }
  release.set_value();
  holder.join();
  EXPECT_EQ(lost, 4);
  EXPECT_EQ(ok, 16);
  EXPECT_EQ(pool.stats().restarts, 4u);
  for (pid_t w : pool.worker_pids()) EXPECT_NE(mpp::test::proc_stat(w).ppid, ::getpid());
}

// The logger program of issue 20 under forkserver: a logging thread takes g_log_mutex in a
// loop while four threads submit tasks that take it too (in the worker: a fresh program's own
// copy) and crash one time in five. The pool is created after the logger started, so under fork
// its very first workers could inherit the mutex locked; from the server none can. Exactly the
// crashed tasks are lost.
TEST_P(FreshStart, ForkserverPoolFromThreadsWhileALoggerHoldsLocks) {
  std::atomic<bool> stop{false};
  std::thread logger([&] {
    while (!stop) {
      std::lock_guard lock(g_log_mutex);
    }
  });
  PoolOptions o = options(StartMethod::forkserver);
  o.task_timeout = 10s;  // a hung worker would fail its task instead of hanging the test
  std::atomic<int> ok{0};
  std::atomic<int> lost{0};
  std::atomic<int> bad{-1};
  {
    Pool pool(o);
    std::vector<std::thread> submitters;
    for (int t = 0; t < 4; ++t) {
      submitters.emplace_back([&, t] {
        std::vector<mpp::AsyncResult<int>> rs;
        for (int i = t; i < 100; i += 4) rs.push_back(pool.apply_async(log_and_crash, i));
        for (std::size_t k = 0; k < rs.size(); ++k) {
          const int i = t + static_cast<int>(k) * 4;
          try {
            if (rs[k].get() == i) ++ok;
          } catch (const mpp::WorkerLost&) {
            ++lost;
            if (i % 5 != 4) bad = i;
          }
        }
      });
    }
    for (auto& th : submitters) th.join();
    EXPECT_EQ(pool.stats().restarts, 20u);
  }
  stop = true;
  logger.join();
  EXPECT_EQ(ok.load(), 80);
  EXPECT_EQ(lost.load(), 20);
  EXPECT_EQ(bad.load(), -1) << "a task was lost that did not crash";
}

TEST(ForkWarning, OneLineWhenForkingFromAThreadedProgramAndSilenceable) {
  int code = -1;
  const std::string out = run_program(helper() + " warn 2>&1", &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("mpp: warning"), std::string::npos) << out;
  EXPECT_NE(out.find("StartMethod::forkserver"), std::string::npos) << out;
  EXPECT_EQ(out.find("mpp: warning"), out.rfind("mpp: warning")) << "more than one line: " << out;
  const std::string quiet = run_program(helper() + " warn-quiet 2>&1", &code);
  EXPECT_EQ(code, 0) << quiet;
  EXPECT_EQ(quiet.find("mpp: warning"), std::string::npos) << quiet;
}

}  // namespace

int main(int argc, char** argv) {
  mpp::init(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
