// Tests for <mpp/process.hpp>: exit codes, joins, errors, options applied in the child, daemon
// semantics, misuse and OS failures, and no zombies after any of it.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/sync.hpp"
#include "sys/fault.hpp"
#include "sys/sched.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

void expect_no_zombies() {
  auto z = mpp::test::zombie_children();
  EXPECT_TRUE(z.empty()) << "zombie children left: " << z.size();
}

// A word of shared memory the child can write and the parent read after join.
struct SharedWord {
  SharedWord() {
    p = static_cast<std::atomic<long>*>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) std::abort();
    p->store(0);
  }
  ~SharedWord() { munmap(p, 4096); }
  std::atomic<long>* p;
};

class ProcessTest : public ::testing::Test {
 protected:
  void TearDown() override { expect_no_zombies(); }
  mpp::test::Watchdog watchdog_{std::chrono::seconds(60), "process test"};
};

TEST_F(ProcessTest, ExitCodeZeroWhenTargetReturns) {
  mpp::Process p([] {});
  EXPECT_FALSE(p.exitcode().has_value());
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(p.error().has_value());
}

TEST_F(ProcessTest, ExitCodeFromSystemExitAndExit) {
  mpp::Process a([] { throw mpp::SystemExit{42}; });
  mpp::Process b([] { _exit(7); });
  a.start();
  b.start();
  a.join();
  b.join();
  EXPECT_EQ(a.exitcode(), 42);
  EXPECT_FALSE(a.error().has_value());
  EXPECT_EQ(b.exitcode(), 7);
}

TEST_F(ProcessTest, TerminateGivesMinusSigterm) {
  mpp::Process p([] { pause(); });
  p.start();
  EXPECT_TRUE(p.is_alive());
  p.terminate();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST_F(ProcessTest, KillGivesMinusSigkill) {
  mpp::Process p([] {
    for (;;) pause();
  });
  p.start();
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  p.kill();  // already ended: a no-op, never signals a recycled pid
}

TEST_F(ProcessTest, CrashingTargetGivesMinusSigsegv) {
  mpp::Process p([] {
    std::signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGSEGV);
}

namespace crash {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerOwnsSignals = true;  // its own SIGSEGV handler reports the crash
#else
constexpr bool kSanitizerOwnsSignals = false;
#endif
volatile int* volatile g_null = nullptr;
[[gnu::noinline]] void process_crash_here() {
  *g_null = 7;
  asm volatile("");
}
[[gnu::noinline]] void process_calls_crash() {
  process_crash_here();
  asm volatile("");
}
}  // namespace crash

TEST_F(ProcessTest, CrashedChildPrintsItsStackOnStderr) {
  if (crash::kSanitizerOwnsSignals) GTEST_SKIP() << "the sanitizer prints its own report";
  mpp::Process p(mpp::ProcessOptions{.name = "crasher"}, [] { crash::process_calls_crash(); });
  testing::internal::CaptureStderr();
  p.start();
  p.join();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p.exitcode(), -SIGSEGV);
  EXPECT_NE(err.find("process 'crasher'"), std::string::npos) << err;
  EXPECT_NE(err.find("SIGSEGV"), std::string::npos) << err;
  const auto at = err.find("#0 process_crash_here");
  EXPECT_NE(at, std::string::npos) << err;
  EXPECT_NE(err.find("#1 process_calls_crash", at), std::string::npos) << err;
  EXPECT_NE(err.find("test_process.cpp:"), std::string::npos) << err;
}

TEST_F(ProcessTest, KilledChildPrintsNoStack) {
  mpp::Process p([] { ::kill(::getpid(), SIGKILL); });
  testing::internal::CaptureStderr();
  p.start();
  p.join();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  EXPECT_EQ(err.find("its stack"), std::string::npos) << err;
}

TEST_F(ProcessTest, JoinWithTimeoutOnSleepingChild) {
  // The child sleeps until the test releases it (not for a fixed time), so it is still alive at
  // every check below however late a loaded machine runs the parent.
  mpp::Event release;
  mpp::Process p([&] { release.wait(); });
  p.start();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.join(50ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 45ms);
  EXPECT_TRUE(p.is_alive());
  release.set();
  EXPECT_TRUE(p.join(10s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessTest, ExceptionInTargetReachesParent) {
  mpp::Process p([](const std::string& s) { throw std::runtime_error("boom: " + s); },
                 std::string("arg"));
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 1);
  auto err = p.error();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->type_name(), "std::runtime_error");
  EXPECT_EQ(err->message(), "boom: arg");
  EXPECT_EQ(err->pid(), p.pid());
  EXPECT_EQ(err->task_index(), -1);
  EXPECT_NE(std::string(err->what()).find("boom: arg"), std::string::npos);
}

TEST_F(ProcessTest, NonStdExceptionIsDescribed) {
  mpp::Process p([] { throw 42; });
  p.start();
  p.join();
  ASSERT_TRUE(p.error().has_value());
  EXPECT_EQ(p.error()->type_name(), "int");
  EXPECT_EQ(p.error()->message(), "42");
}

TEST_F(ProcessTest, NiceIsAppliedInTheChild) {
  long before = mpp::test::proc_stat(getpid()).nice;
  // The child applies its options after fork, before its target runs: once the target has
  // started, the niceness is there.
  mpp::Event running;
  mpp::Process p(mpp::ProcessOptions{.nice = 5}, [&] {
    running.set();
    pause();
  });
  p.start();
  EXPECT_TRUE(running.wait(60s));
  EXPECT_EQ(mpp::test::proc_stat(p.pid()).nice, std::min(19L, before + 5));
  EXPECT_EQ(mpp::test::proc_stat(getpid()).nice, before) << "parent niceness must not change";
  p.kill();
  p.join();
}

TEST_F(ProcessTest, AffinityIsAppliedInTheChild) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  int first = -1;
  for (int i = 0; i < CPU_SETSIZE; ++i)
    if (CPU_ISSET(i, &set)) {
      first = i;
      break;
    }
  ASSERT_GE(first, 0);
  SharedWord result;
  mpp::Process p(mpp::ProcessOptions{.cpus = {first}}, [&] {
    cpu_set_t mine;
    sched_getaffinity(0, sizeof mine, &mine);
    result.p->store(CPU_COUNT(&mine) == 1 && CPU_ISSET(first, &mine) ? 1 : 2);
  });
  p.start();
  p.join();
  EXPECT_EQ(result.p->load(), 1);
}

TEST_F(ProcessTest, NameIsVisibleInProcComm) {
  // As with niceness: the name is set before the target runs.
  mpp::Event running;
  mpp::Process p(mpp::ProcessOptions{.name = "mpp-worker-name-long"}, [&] {
    running.set();
    pause();
  });
  EXPECT_EQ(p.name(), "mpp-worker-name-long");
  p.start();
  EXPECT_TRUE(running.wait(60s));
  EXPECT_EQ(mpp::test::proc_comm(p.pid()), "mpp-worker-name");  // the kernel keeps 15 bytes
  p.kill();
  p.join();
}

TEST_F(ProcessTest, DefaultNamesAreNumbered) {
  mpp::Process a([] {});
  mpp::Process b([] {});
  EXPECT_EQ(a.name().rfind("Process-", 0), 0u);
  EXPECT_NE(a.name(), b.name());
}

TEST_F(ProcessTest, DaemonChildDiesWithItsParent) {
  // We become the subreaper so the orphaned daemon is re-parented to us and can be reaped here.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  SharedWord daemon_pid;
  mpp::Process middle([&] {
    mpp::Process d(mpp::ProcessOptions{.daemon = true}, [] {
      for (;;) pause();
    });
    d.start();
    daemon_pid.p->store(d.pid());
    for (;;) pause();
  });
  middle.start();
  while (daemon_pid.p->load() == 0) std::this_thread::sleep_for(1ms);
  pid_t d = static_cast<pid_t>(daemon_pid.p->load());
  middle.kill();
  middle.join();
  EXPECT_TRUE(mpp::test::gone_within(d, 2s)) << "daemon outlived its parent";
  int st = 0;
  EXPECT_EQ(waitpid(d, &st, 0), d);  // reap the orphan we adopted
  // Killed by the parent-death signal, or (when the parent died before the daemon armed that
  // signal) ended by its own re-check of the parent right after arming it.
  EXPECT_TRUE((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
              (WIFEXITED(st) && WEXITSTATUS(st) == 1))
      << "status " << st;
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_F(ProcessTest, DestructorKillsDaemonAndJoinsNonDaemon) {
  pid_t daemon_pid = 0;
  auto t0 = std::chrono::steady_clock::now();
  {
    mpp::Process d(mpp::ProcessOptions{.daemon = true}, [] {
      for (;;) pause();
    });
    d.start();
    daemon_pid = d.pid();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(mpp::test::gone_within(daemon_pid, 100ms));
  SharedWord done;
  {
    mpp::Process n([&] {
      std::this_thread::sleep_for(100ms);
      done.p->store(1);
    });
    n.start();
  }  // joins
  EXPECT_EQ(done.p->load(), 1);
}

TEST_F(ProcessTest, ForkFailureIsSystemError) {
  mpp::sys::fault::Scoped fail(mpp::sys::fault::Op::fork, EAGAIN);
  mpp::Process p([] {});
  try {
    p.start();
    FAIL() << "start() should have thrown";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EAGAIN);
    EXPECT_NE(std::string(e.what()).find("cannot fork process"), std::string::npos);
  }
  EXPECT_FALSE(p.is_alive());
  EXPECT_THROW(p.join(), std::logic_error);
}

TEST_F(ProcessTest, MisuseIsLogicError) {
  mpp::Process p([] {});
  EXPECT_THROW(p.join(), std::logic_error);
  EXPECT_THROW(p.join(1s), std::logic_error);
  EXPECT_THROW(p.terminate(), std::logic_error);
  p.start();
  EXPECT_THROW(p.start(), std::logic_error);
  p.join();
  mpp::Process moved = std::move(p);
  EXPECT_THROW(p.start(), std::logic_error);  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_EQ(moved.exitcode(), 0);
}

TEST_F(ProcessTest, BadArgumentsAreInvalidArgument) {
  EXPECT_THROW(mpp::nice(100), std::invalid_argument);
  EXPECT_THROW(mpp::nice(-100), std::invalid_argument);
  mpp::Process p(mpp::ProcessOptions{.nice = 40}, [] {});
  EXPECT_THROW(p.start(), std::invalid_argument);
  mpp::Process q(mpp::ProcessOptions{.cpus = {-1}}, [] {});
  EXPECT_THROW(q.start(), std::invalid_argument);
}

TEST_F(ProcessTest, NiceWithoutPrivilegeIsAClearError) {
  // We may run as root: drop to nobody in a child, then try to lower our niceness.
  mpp::Process p([] {
    if (getuid() == 0 && setuid(65534) != 0) throw mpp::SystemExit{3};
    try {
      mpp::nice(-5);
    } catch (const std::system_error& e) {
      bool clear = (e.code().value() == EPERM || e.code().value() == EACCES) &&
                   std::string(e.what()).find("niceness") != std::string::npos;
      throw mpp::SystemExit{clear ? 0 : 4};
    }
    throw mpp::SystemExit{5};
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessTest, NiceIncrementsLikeOsNice) {
  mpp::Process p([] {
    long before = mpp::test::proc_stat(getpid()).nice;
    long now = mpp::nice(3);
    throw mpp::SystemExit{now == std::min(19L, before + 3) ? 0 : 1};
  });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST_F(ProcessTest, CpuCountMatchesAffinity) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(mpp::cpu_count(), static_cast<unsigned>(CPU_COUNT(&set)));
}

TEST_F(ProcessTest, ActiveChildrenListsRunningOnes) {
  mpp::Process a([] { pause(); });
  mpp::Process b([] {});
  a.start();
  b.start();
  b.join();
  auto kids = mpp::active_children();
  EXPECT_NE(std::find(kids.begin(), kids.end(), a.pid()), kids.end());
  EXPECT_EQ(std::find(kids.begin(), kids.end(), b.pid()), kids.end());
  a.kill();
  a.join();
  kids = mpp::active_children();
  EXPECT_EQ(std::find(kids.begin(), kids.end(), a.pid()), kids.end());
}

TEST_F(ProcessTest, LambdaCapturesByReferenceSeeStateAtStart) {
  std::vector<int> data{1, 2, 3};
  SharedWord sum;
  mpp::Process p([&] {
    long s = 0;
    for (int x : data) s += x;
    sum.p->store(s);
  });
  data.push_back(4);  // before start: visible to the child
  p.start();
  data.push_back(100);  // after start: not visible (copy-on-write)
  p.join();
  EXPECT_EQ(sum.p->load(), 10);
}

TEST_F(ProcessTest, ArgumentsByValueAndReference) {
  SharedWord out;
  auto f = [](std::atomic<long>* o, const std::string& s, int& counter, long extra) {
    counter += 1;
    o->store(static_cast<long>(s.size()) + counter + extra);
  };
  int counter = 10;
  mpp::Process p(f, out.p, std::string("hello"), counter, 100L);
  p.start();
  p.join();
  EXPECT_EQ(out.p->load(), 5 + 11 + 100);
  EXPECT_EQ(counter, 10);  // the child had its own copy
}

TEST_F(ProcessTest, OutputBufferedByTheTargetIsFlushedAtExit) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  mpp::Process p([&] {
    dup2(fds[1], 1);  // stdout is now a pipe: fully buffered, so nothing is written until a flush
    std::printf("hello ");
    std::cout << "world";
  });
  p.start();
  p.join();
  close(fds[1]);
  char buf[64] = {};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "hello world");
}

class ProcessCountTest : public ::testing::TestWithParam<int> {};

TEST_P(ProcessCountTest, ManyProcessesInAVectorAllReportTheirCodes) {
  mpp::test::Watchdog wd(std::chrono::seconds(60), "many processes");
  const int n = GetParam();
  std::vector<mpp::Process> ps;
  for (int i = 0; i < n; ++i) {
    ps.emplace_back([](int code) { throw mpp::SystemExit{code}; }, i % 200);
    ps.back().start();
  }
  for (auto& p : ps) p.join();
  for (int i = 0; i < n; ++i) EXPECT_EQ(ps[static_cast<std::size_t>(i)].exitcode(), i % 200);
  EXPECT_TRUE(mpp::test::zombie_children().empty());
}

INSTANTIATE_TEST_SUITE_P(Counts, ProcessCountTest, ::testing::Values(1, 4, 32));

}  // namespace

namespace {
TEST(ProcessIonice, BestEffortLevelIsSetInTheChildAndReadBack) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(60), "ionice");
  for (int level : {0, 4, 7}) {
    mpp::Process p(mpp::ProcessOptions{.ionice = level}, [] {
      const auto io = mpp::sys::current_ionice();  // ioprio_get in the child
      throw mpp::SystemExit{io.io_class * 10 + io.level};
    });
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), 20 + level) << "best-effort class 2, level " << level;
  }
  // The parent's own I/O priority is untouched.
  const auto mine = mpp::sys::current_ionice();
  EXPECT_FALSE(mine.io_class == 2 && mine.level == 7);
}

TEST(ProcessIonice, LevelsOutsideZeroToSevenAreRejected) {
  for (int bad : {-1, 8, 100}) {
    mpp::Process p(mpp::ProcessOptions{.ionice = bad}, [] {});
    EXPECT_THROW(p.start(), std::invalid_argument) << bad;
    EXPECT_FALSE(p.is_alive());
  }
}
}  // namespace
