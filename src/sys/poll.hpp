// Waiting for file descriptors (poll(2)), EINTR-safe, with relative timeouts.
#pragma once

#include <chrono>
#include <cstddef>

namespace mpp::sys {

// Waits until `fd` is ready for `write ? POLLOUT : POLLIN` (or hung up), or `other` (a pidfd, may
// be -1) becomes readable, or the timeout passes (negative = forever). EINTR-safe. Throws
// std::system_error ("cannot poll") on other errors.
enum class Ready { fd, other, timeout };
Ready poll_two(int fd, bool write, int other, std::chrono::nanoseconds timeout);

// Blocks until fd is readable (or hung up) or timeout passes (negative timeout = forever).
// Returns true if readable.
inline bool poll_readable(int fd, std::chrono::nanoseconds timeout) {
  return poll_two(fd, /*write=*/false, /*other=*/-1, timeout) == Ready::fd;
}

// Waits until at least one of `n` descriptors is readable or hung up (negative ones are
// skipped), or the timeout passes (negative = forever). Sets `ready[i]` for each that is.
// Returns how many are ready (0: timeout). EINTR-safe. Throws std::system_error ("cannot poll").
int poll_readable_many(const int* fds, bool* ready, std::size_t n,
                       std::chrono::nanoseconds timeout);

}  // namespace mpp::sys
