// Crash stacks: the frames of a child's thread that died from SIGSEGV, SIGBUS, SIGFPE, SIGILL or
// SIGABRT, taken in the child by an async-signal-safe handler and named in the parent.
//
// What: the parent calls prepare_crash_stacks() once before it forks children that should report
// (it sets up the unwinder and the symbolizer, which allocate). A child calls
// install_crash_handler() after the fork, before user code: it installs, on an alternate signal
// stack, a handler for the five signals whose action is still the default (a handler or SIG_IGN
// the program set is left alone; so is a sanitizer's). On a crash the handler writes the program
// counters of the faulting thread into a CrashFrames block in shared memory, then lets the signal
// kill the process as before (the exit status still says "killed by signal N"). The parent, which
// is a fork's origin and so has the same code at the same addresses, turns them into names with
// symbolize(): "function at file:line" where debug info is present, the function name from the
// symbol table otherwise.
//
// The unwinder and symbolizer are libbacktrace as GCC ships it (libgcc-12-dev, always present
// with g++): unwinding (backtrace_simple, through _Unwind_Backtrace) needs no allocation and is
// safe in a signal handler once the state exists; symbolizing reads DWARF, so it runs in the
// parent. Limits: a crash while the faulting thread held the dynamic loader's lock (inside
// dlopen) can hang the unwinder; the process is then killed by its parent's timeouts or by the
// user. SIGKILL (including the OOM killer) cannot be caught: no frames. Frames of code a child
// dlopen'ed after the fork are not named.
//
// Errors: nothing here throws except symbolize() (std::bad_alloc).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mpp::sys {

// Written by the crash handler in the child, read by the parent once the child is dead. Lives in
// memory both map (zero-filled = no crash).
struct CrashFrames {
  static constexpr std::size_t kMaxFrames = 64;
  std::atomic<std::uint32_t> state;  // kNone, kWriting, kComplete
  std::int32_t signo;
  std::uint32_t count;
  std::uintptr_t pc[kMaxFrames];

  static constexpr std::uint32_t kNone = 0;
  static constexpr std::uint32_t kWriting = 1;
  static constexpr std::uint32_t kComplete = 2;
};

// Parent: prepares unwinding and symbolizing (once per process; later calls return at once).
// False when no stacks can be taken (the symbolizer could not be set up, or the environment has
// MPP_CRASH_STACKS=0: then no child installs a handler). Thread-safe.
bool prepare_crash_stacks() noexcept;
// Turns the children's handlers off (false) or back on for children forked later (benchmarks
// compare the two; the environment variable is the users' switch).
void set_crash_stacks_enabled(bool enabled) noexcept;

// Child, before user code: handlers for the crash signals that are still at their default
// action, writing into `out` (shared memory, may be reused: it is reset here). Does nothing if
// prepare_crash_stacks() did not succeed in the parent. Async-signal-safe.
void install_crash_handler(CrashFrames* out) noexcept;

// Parent: the frames `f` holds, innermost first, named (at most kMaxFrames, inlined calls
// expanded); empty when the child recorded none. The handler's own frames are left out.
[[nodiscard]] std::vector<std::string> symbolize(const CrashFrames& f);

}  // namespace mpp::sys
