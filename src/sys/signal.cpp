// Fatal-signal, exit() and SIGTERM reports (see signal.hpp).
#include "sys/signal.hpp"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sys/check.hpp"
#include "sys/terminal.hpp"

namespace mpp::sys {

CrashContext& crash_context() noexcept {
  static CrashContext ctx;
  return ctx;
}

namespace {

constexpr int kFatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr int kNumFatal = sizeof kFatal / sizeof kFatal[0];
struct sigaction g_previous[kNumFatal];
char g_prefix[256];

// Everything below runs in a signal handler or at exit of a dying rank: only write(2) and
// hand-made formatting, no allocation, no stdio.
void put(const char* s) noexcept { write_stderr(s); }

void put_int(std::int64_t v) noexcept {
  char buf[24];
  char* p = buf + sizeof buf;
  *--p = '\0';
  const bool neg = v < 0;
  auto u = neg ? -static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (neg) *--p = '-';
  put(p);
}

void put_task() noexcept {
  auto& ctx = crash_context();
  const std::int64_t task = ctx.task.load(std::memory_order_relaxed);
  if (task < 0) {
    put(" between tasks\n");
    return;
  }
  put(" while running task ");
  put_int(task);
  if (const char* f = ctx.function.load(std::memory_order_relaxed)) {
    put(" (");
    put(f);
    put(")");
  }
  put("\n");
}

void on_fatal(int sig) noexcept {
  put(g_prefix);
  put(" died of ");
  if (const char* abbrev = ::sigabbrev_np(sig)) {
    put("SIG");
    put(abbrev);
  } else {
    put("signal ");
    put_int(sig);
  }
  put_task();
  for (int i = 0; i < kNumFatal; ++i) {
    if (kFatal[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  }
  // The signal is blocked while this handler runs, so this one stays pending until we return and
  // then meets the previous disposition; a hardware fault would also simply re-fault.
  ::raise(sig);
}

void on_exit_hook(int status, void*) noexcept {
  if (crash_context().task.load(std::memory_order_relaxed) < 0) return;
  put(g_prefix);
  put(" called exit(");
  put_int(status);
  put(")");
  put_task();
  // Leave now: the exit handlers registered earlier would run MPI_Finalize, which waits for
  // rank 0, which waits for this task's result. Without finalize Open MPI aborts the job.
  ::_exit(status == 0 ? 1 : status);
}

const RankActivity* g_table = nullptr;
int g_table_size = 0;

void on_term(int sig) noexcept {
  for (int i = 0; i < g_table_size; ++i) {
    const std::int64_t first = g_table[i].first.load(std::memory_order_relaxed);
    if (first < 0) continue;
    const std::uint32_t count = g_table[i].count.load(std::memory_order_relaxed);
    put("mpp::mpi: job killed while MPI rank ");
    put_int(i + 1);
    put(count > 1 ? " was running tasks " : " was running task ");
    put_int(first);
    if (count > 1) {
      put("..");
      put_int(first + count - 1);
    }
    if (const char* f = g_table[i].function.load(std::memory_order_relaxed)) {
      put(" (");
      put(f);
      put(")");
    }
    put("\n");
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_job_report(const RankActivity* table, int n) noexcept {
  struct sigaction old;
  if (::sigaction(SIGTERM, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) return;
  g_table = table;
  g_table_size = n;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
}

void install_crash_report(const std::string& prefix) {
  const std::size_t n = std::min(prefix.size(), sizeof g_prefix - 1);
  std::memcpy(g_prefix, prefix.data(), n);
  g_prefix[n] = '\0';
  for (int i = 0; i < kNumFatal; ++i) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    ::sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_ONSTACK;
    if (::sigaction(kFatal[i], &sa, &g_previous[i]) != 0) throw_errno("cannot install handler");
  }
  ::on_exit(on_exit_hook, nullptr);
}

}  // namespace mpp::sys
