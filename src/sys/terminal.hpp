// The standard error stream: whether it is a terminal (the pool's progress bar redraws one line
// there, a log file gets one line at the end), and writing to it without stdio.
#pragma once

#include <cstddef>

namespace mpp::sys {

// True if fd 2 is a terminal. Never throws.
[[nodiscard]] bool stderr_is_tty() noexcept;

// Writes n bytes (or the NUL-terminated s) to fd 2, retrying on EINTR and short writes, giving up
// silently on any other error. No allocation, no stdio, never throws: async-signal-safe, for
// signal handlers and dying processes as much as for the progress bar.
void write_stderr(const char* s, std::size_t n) noexcept;
void write_stderr(const char* s) noexcept;

}  // namespace mpp::sys
