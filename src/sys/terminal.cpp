// The standard error stream (see terminal.hpp).
#include "sys/terminal.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mpp::sys {

bool stderr_is_tty() noexcept { return ::isatty(2) == 1; }

void write_stderr(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void write_stderr(const char* s) noexcept { write_stderr(s, std::strlen(s)); }

}  // namespace mpp::sys
