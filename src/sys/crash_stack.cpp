#include "sys/crash_stack.hpp"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if MPP_HAVE_LIBBACKTRACE
#include <backtrace.h>
#endif

#include "sys/demangle.hpp"

namespace mpp::sys {

namespace {

// The alternate signal stack of a child's first thread: a crash from a stack overflow still has
// room to run the handler. 64 KiB: _Unwind_Backtrace needs a few KiB; .bss, so only the pages the
// handler touches cost memory, and only in a child that crashed.
constexpr std::size_t kAltStackBytes = 64 * 1024;
alignas(16) char g_alt_stack[kAltStackBytes];

CrashFrames* g_out = nullptr;  // the child's block (set before its handlers are installed)
// 0 not yet, kReady, kUnavailable, or the pid of the process preparing it. A pid, not a flag: a
// child forked while another thread of its parent was preparing inherits "being prepared" with no
// thread left to finish; it sees a pid not its own and prepares for itself instead of waiting
// forever (the Lock-after-fork class of issue 16, as sys::register_atfork_once).
constexpr int kReady = -2;
constexpr int kUnavailable = -3;
std::atomic<int> g_prepared{0};
std::atomic<bool> g_enabled{true};

#if MPP_HAVE_LIBBACKTRACE
std::atomic<backtrace_state*> g_symbolizer{nullptr};
void ignore_error(void*, const char*, int) {}
#endif

// Unwinding from the handler: the frames up to the signal frame are the handler's own. The first
// frame whose IP is "before the instruction" (_Unwind_GetIPInfo) is the interrupted one: its IP is
// the faulting instruction; the frames after it hold return addresses, so one byte back names
// the call.
struct Walk {
  CrashFrames* out;
  bool past_signal_frame;
};

_Unwind_Reason_Code on_frame(_Unwind_Context* ctx, void* data) {
  auto* w = static_cast<Walk*>(data);
  int before_insn = 0;
  std::uintptr_t ip = _Unwind_GetIPInfo(ctx, &before_insn);
  if (!w->past_signal_frame) {
    if (before_insn == 0) return _URC_NO_REASON;  // still in the handler or the trampoline
    w->past_signal_frame = true;
  } else if (before_insn == 0 && ip != 0) {
    --ip;
  }
  if (ip == 0) return _URC_END_OF_STACK;
  if (w->out->count >= CrashFrames::kMaxFrames) return _URC_END_OF_STACK;
  w->out->pc[w->out->count++] = ip;
  return _URC_NO_REASON;
}

_Unwind_Reason_Code count_frame(_Unwind_Context*, void*) { return _URC_NO_REASON; }

extern "C" void mpp_crash_handler(int signo, siginfo_t*, void*) {
  const int saved_errno = errno;
  CrashFrames* f = g_out;
  std::uint32_t expected = CrashFrames::kNone;
  // The first crashing thread records; another one crashing meanwhile only dies.
  if (f != nullptr && f->state.compare_exchange_strong(expected, CrashFrames::kWriting)) {
    f->signo = signo;
    f->count = 0;
    Walk w{f, false};
    _Unwind_Backtrace(on_frame, &w);
    f->state.store(CrashFrames::kComplete, std::memory_order_release);
  }
  // SA_RESETHAND put the default action back, and the signal stays blocked until we return:
  // sent again to this thread, it then ends the process with its own number (a fault would
  // recur anyway; a raised or abort()ed signal would not).
  ::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), signo);
  errno = saved_errno;
}

}  // namespace

bool prepare_crash_stacks() noexcept {
  const int self = static_cast<int>(::getpid());
  int s = g_prepared.load(std::memory_order_acquire);
  while (s != kReady && s != kUnavailable) {
    // 0, or a pid not ours (forked half-way): ours to prepare.
    if (s != self && g_prepared.compare_exchange_weak(s, self, std::memory_order_acq_rel)) {
      // Walk once here, so that the unwinder's first-use work (finding the libraries' unwind
      // tables) is done in the parent and inherited, not done in a crashing child.
      _Unwind_Backtrace(count_frame, nullptr);
      bool ok = false;
      const char* env = std::getenv("MPP_CRASH_STACKS");
      const bool off = env != nullptr && std::strcmp(env, "0") == 0;
#if MPP_HAVE_LIBBACKTRACE
      if (!off) {
        backtrace_state* st =
            backtrace_create_state(nullptr, /*threaded=*/1, ignore_error, nullptr);
        g_symbolizer.store(st, std::memory_order_release);
        ok = st != nullptr;
      }
#endif
      g_prepared.store(ok ? kReady : kUnavailable, std::memory_order_release);
      return ok;
    }
    if (s == self) {  // another thread of this process is preparing: it will finish
      ::sched_yield();
      s = g_prepared.load(std::memory_order_acquire);
    }
  }
  return s == kReady;
}

void set_crash_stacks_enabled(bool enabled) noexcept {
  g_enabled.store(enabled, std::memory_order_relaxed);
}

void install_crash_handler(CrashFrames* out) noexcept {
  if (out == nullptr || g_prepared.load(std::memory_order_acquire) != kReady ||
      !g_enabled.load(std::memory_order_relaxed)) {
    return;
  }
  out->state.store(CrashFrames::kNone, std::memory_order_relaxed);
  out->count = 0;
  out->signo = 0;
  g_out = out;
  stack_t ss{};
  ss.ss_sp = g_alt_stack;
  ss.ss_size = kAltStackBytes;
  (void)::sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_sigaction = mpp_crash_handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) {
    // One call per signal (a system call costs ~1 us here, and this runs in every child): set
    // ours, and put back a handler the program (or a sanitizer) had installed, or SIG_IGN.
    struct sigaction old {};
    if (::sigaction(sig, &sa, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) {
      (void)::sigaction(sig, &old, nullptr);
    }
  }
}

std::vector<std::string> symbolize(const CrashFrames& f) {
  std::vector<std::string> frames;
  if (f.state.load(std::memory_order_acquire) != CrashFrames::kComplete) return frames;
  const std::size_t n = f.count < CrashFrames::kMaxFrames ? f.count : CrashFrames::kMaxFrames;
#if MPP_HAVE_LIBBACKTRACE
  backtrace_state* st = g_symbolizer.load(std::memory_order_acquire);
#endif
  for (std::size_t i = 0; i < n; ++i) {
    const std::uintptr_t pc = f.pc[i];
    std::size_t before = frames.size();
#if MPP_HAVE_LIBBACKTRACE
    if (st != nullptr) {
      // With debug info: one entry per inlined call at pc, then the function containing it.
      (void)backtrace_pcinfo(
          st, pc,
          [](void* data, std::uintptr_t, const char* file, int line, const char* fn) -> int {
            if (fn == nullptr) return 0;
            auto* out = static_cast<std::vector<std::string>*>(data);
            std::string s = sys::demangle(fn);
            if (file != nullptr && line > 0)
              s += " at " + std::string(file) + ":" + std::to_string(line);
            out->push_back(std::move(s));
            return 0;
          },
          ignore_error, &frames);
      if (frames.size() == before) {
        // No debug info: the symbol table still names the function.
        (void)backtrace_syminfo(
            st, pc,
            [](void* data, std::uintptr_t, const char* sym, std::uintptr_t, std::uintptr_t) {
              if (sym != nullptr)
                static_cast<std::vector<std::string>*>(data)->push_back(sys::demangle(sym));
            },
            ignore_error, &frames);
      }
    }
#endif
    if (frames.size() == before) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%zx", static_cast<std::size_t>(pc));
      frames.emplace_back(buf);
    }
    if (frames.size() >= CrashFrames::kMaxFrames) break;
  }
  return frames;
}

}  // namespace mpp::sys
