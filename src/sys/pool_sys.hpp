// System calls the pool needs beyond the shared sys layer: ending a worker without running the
// parent's atexit handlers, and asking whether stderr is a terminal (for the progress bar).
#pragma once

namespace mpp::sys {

// Flushes stdio (a worker's printf output must not be lost) and ends the process with `code`
// without running atexit handlers or static destructors (they belong to the parent's program).
[[noreturn]] void exit_worker(int code) noexcept;

// Ends the process at once: no flush, async-signal-safe (for the child before user code ran).
[[noreturn]] void exit_immediately(int code) noexcept;

// True if fd 2 is a terminal. Never throws.
[[nodiscard]] bool stderr_is_tty() noexcept;

// Writes n bytes to stderr (best effort, EINTR-safe). Never throws.
void write_stderr_bytes(const char* s, unsigned long n) noexcept;

}  // namespace mpp::sys
