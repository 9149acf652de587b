// Signal handlers that report a dying process's last words on stderr: what a worker MPI rank was
// running when a fatal signal or exit() ended it, and what each rank was running when the job
// was killed (used by src/mpi/). Everything they run is async-signal-safe.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <string>

#include "mpp/detail/export.hpp"

namespace mpp::sys {

// What a worker rank is doing, read by its fatal-signal and exit reports. Written by the rank's
// only task thread; the handlers read it on that same thread, so relaxed atomics suffice.
struct CrashContext {
  std::atomic<std::int64_t> task{-1};          // input index running, -1 between tasks
  std::atomic<const char*> function{nullptr};  // NUL-terminated name, alive for the process
};
[[nodiscard]] MPP_API CrashContext& crash_context() noexcept;

// Installs handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT, and an exit() hook, that
// write `prefix` + what killed the rank + the task it was running to stderr, then let the
// previous handler (Open MPI's, or the default action) finish the job. exit() inside a task
// ends the process at once with _exit (status 1 for exit(0)), skipping MPI_Finalize. `prefix` is
// copied (at most 255 bytes). Call once; throws std::system_error if sigaction fails.
MPP_API void install_crash_report(const std::string& prefix);

// Rank 0: what each worker rank is running (its oldest chunk still out), for the report below.
struct RankActivity {
  std::atomic<std::int64_t> first{-1};  // input index of the chunk's first item; -1 idle
  std::atomic<std::uint32_t> count{0};
  std::atomic<const char*> function{nullptr};  // NUL-terminated name, alive for the process
};

// Rank 0: when the job is killed (Open MPI sends SIGTERM to the survivors after a rank died),
// writes to stderr which task each worker rank was running, then dies of SIGTERM as before.
// Installed only while SIGTERM has its default disposition (a program's own handler wins).
// `table` (n entries, for ranks 1..n) must live until the process ends. Never throws.
MPP_API void install_job_report(const RankActivity* table, int n) noexcept;

}  // namespace mpp::sys
