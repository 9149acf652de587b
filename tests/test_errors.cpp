// Tests for <mpp/errors.hpp>: the hierarchy, the fields, and the messages users read.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "mpp/errors.hpp"
#include "sys/crash_stack.hpp"
#include "sys/mem.hpp"
#include "test_util.hpp"

namespace {

TEST(Errors, EveryMppErrorIsCaughtAsErrorAndRuntimeError) {
  auto throws = [](auto e) {
    try {
      throw e;
    } catch (const mpp::Error&) {
      return true;
    }
  };
  EXPECT_TRUE(throws(mpp::TimeoutError("t")));
  EXPECT_TRUE(throws(mpp::QueueClosed("q")));
  EXPECT_TRUE(throws(mpp::SerializationError("s")));
  EXPECT_TRUE(throws(mpp::CancelledError("c")));
  EXPECT_TRUE(throws(mpp::RemoteError("int", "42", 1)));
  EXPECT_TRUE(throws(mpp::WorkerLost(1, 2, 9, 0)));
  try {
    throw mpp::QueueClosed("closed");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "closed");
  }
}

TEST(Errors, WorkerLostMessageNamesPidTaskAndSignal) {
  mpp::WorkerLost killed(4242, 17, SIGKILL, 0);
  EXPECT_STREQ(killed.what(),
               "worker 4242 lost while running task 17: killed by signal 9 (SIGKILL)");
  mpp::WorkerLost exited(10, 3, 0, 7);
  EXPECT_STREQ(exited.what(), "worker 10 lost while running task 3: exited with status 7");
  EXPECT_EQ(exited.exit_code(), 7);
  EXPECT_EQ(exited.signal(), 0);
  mpp::WorkerLost no_task(10, -1, SIGSEGV, 0);
  EXPECT_STREQ(no_task.what(), "worker 10 lost: killed by signal 11 (SIGSEGV)");
  mpp::WorkerLost custom(10, 5, SIGKILL, 0, "worker 10 exceeded task_timeout on task 5");
  EXPECT_STREQ(custom.what(), "worker 10 exceeded task_timeout on task 5");
  EXPECT_EQ(custom.task_index(), 5);
}

TEST(Errors, RemoteErrorKeepsTypeMessagePidAndIndex) {
  mpp::RemoteError e("std::out_of_range", "vector::at", 77, 12);
  EXPECT_EQ(e.type_name(), "std::out_of_range");
  EXPECT_EQ(e.message(), "vector::at");
  EXPECT_EQ(e.pid(), 77);
  EXPECT_EQ(e.task_index(), 12);
  std::string what = e.what();
  EXPECT_NE(what.find("std::out_of_range"), std::string::npos);
  EXPECT_NE(what.find("vector::at"), std::string::npos);
  EXPECT_NE(what.find("task 12"), std::string::npos);
  mpp::RemoteError no_task("unknown exception", "", 5);
  EXPECT_EQ(no_task.task_index(), mpp::RemoteError::kNoTask);
  EXPECT_EQ(std::string(no_task.what()).find("task"), std::string::npos);
}

TEST(Errors, SignalNames) {
  EXPECT_EQ(mpp::signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(mpp::signal_name(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(mpp::signal_name(SIGTERM), "SIGTERM");
  EXPECT_EQ(mpp::signal_name(1000), "signal 1000");
}

}  // namespace

// ---- crash stacks (sys/crash_stack.hpp: what WorkerLost::stack() and a Process child report) --
namespace crash {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerOwnsSignals = true;  // it installs its own SIGSEGV/SIGABRT handlers
#else
constexpr bool kSanitizerOwnsSignals = false;
#endif

volatile int* volatile g_null = nullptr;
[[gnu::noinline]] void crash_here() {
  *g_null = 1;  // SIGSEGV
  asm volatile("");
}
[[gnu::noinline]] void calls_crash_here() {
  crash_here();
  asm volatile("");  // not a tail call: the caller's frame stays
}
[[gnu::noinline]] void aborts_here() {
  std::abort();
  asm volatile("");
}

// Forks a child that installs the handler and runs `f`; returns its wait status and frames.
template <class F>
std::pair<int, std::vector<std::string>> crash_in_child(F f) {
  auto map = mpp::sys::map_anonymous_shared(sizeof(mpp::sys::CrashFrames));
  auto* frames = new (map.data()) mpp::sys::CrashFrames{};
  const pid_t pid = ::fork();
  if (pid == 0) {
    mpp::sys::install_crash_handler(frames);
    f();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {status, mpp::sys::symbolize(*frames)};
}

bool names(const std::vector<std::string>& frames, std::size_t within, const std::string& fn) {
  for (std::size_t i = 0; i < frames.size() && i < within; ++i) {
    if (frames[i].find(fn) != std::string::npos) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& f : v) s += "  " + f + "\n";
  return s;
}

TEST(CrashStack, SegfaultNamesTheFunctionAndItsCallerWithFileAndLine) {
  if (kSanitizerOwnsSignals) GTEST_SKIP() << "the sanitizer reports the crash with its own stack";
  mpp::test::Watchdog watchdog(std::chrono::seconds(60), "crash stack");
  ASSERT_TRUE(mpp::sys::prepare_crash_stacks());
  auto [status, frames] = crash_in_child([] { calls_crash_here(); });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);  // the exit status still tells the signal
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames[0].find("crash_here"), std::string::npos) << joined(frames);
  EXPECT_NE(frames[0].find("test_errors.cpp:"), std::string::npos) << joined(frames);
  EXPECT_TRUE(names(frames, 3, "calls_crash_here")) << joined(frames);
}

TEST(CrashStack, AbortGivesAStackThroughAbort) {
  if (kSanitizerOwnsSignals) GTEST_SKIP() << "the sanitizer reports the crash with its own stack";
  mpp::test::Watchdog watchdog(std::chrono::seconds(60), "crash stack");
  ASSERT_TRUE(mpp::sys::prepare_crash_stacks());
  auto [status, frames] = crash_in_child([] { aborts_here(); });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGABRT);
  EXPECT_TRUE(names(frames, 8, "abort")) << joined(frames);
  EXPECT_TRUE(names(frames, 8, "aborts_here")) << joined(frames);
}

TEST(CrashStack, SigkillLeavesNoFrames) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(60), "crash stack");
  ASSERT_TRUE(mpp::sys::prepare_crash_stacks());
  auto [status, frames] = crash_in_child([] { ::kill(::getpid(), SIGKILL); });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(frames.empty()) << joined(frames);
}

TEST(CrashStack, AHandlerTheProgramInstalledIsLeftAlone) {
  mpp::test::Watchdog watchdog(std::chrono::seconds(60), "crash stack");
  ASSERT_TRUE(mpp::sys::prepare_crash_stacks());
  auto [status, frames] = crash_in_child([] {
    // Installed before mpp's (as a program's own handler would be, inherited by the child).
    struct sigaction sa {};
    sa.sa_handler = [](int) { ::_exit(42); };
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGUSR1, &sa, nullptr);  // not a crash signal: untouched either way
    ::sigaction(SIGSEGV, &sa, nullptr);
    // install_crash_handler ran before: re-install so the program's handler predates it.
    auto map = mpp::sys::map_anonymous_shared(sizeof(mpp::sys::CrashFrames));
    mpp::sys::install_crash_handler(new (map.data()) mpp::sys::CrashFrames{});
    ::raise(SIGSEGV);  // a signal, not a null store: UBSan would stop that one first
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 42);
  EXPECT_TRUE(frames.empty());
}

}  // namespace crash
