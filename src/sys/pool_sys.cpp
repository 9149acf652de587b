// Pool-specific system-call wrappers (see pool_sys.hpp).
#include "sys/pool_sys.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace mpp::sys {

void exit_worker(int code) noexcept {
  std::fflush(nullptr);
  ::_exit(code);
}

void exit_immediately(int code) noexcept { ::_exit(code); }

bool stderr_is_tty() noexcept { return ::isatty(2) == 1; }

void write_stderr_bytes(const char* s, unsigned long n) noexcept {
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<unsigned long>(w);
  }
}

}  // namespace mpp::sys
