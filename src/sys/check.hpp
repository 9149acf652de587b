// Turning failed system calls into exceptions, and retrying on EINTR.
#pragma once

#include <cerrno>
#include <system_error>

namespace mpp::sys {

// Throws std::system_error(errno) with a short lowercase message such as "cannot fork worker".
[[noreturn]] void throw_errno(const char* what);
[[noreturn]] void throw_errno(int err, const char* what);

// Calls f() until it does not fail with EINTR; returns its last result.
template <class F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto r = f();
    if (!(r == -1 && errno == EINTR)) return r;
  }
}

}  // namespace mpp::sys
