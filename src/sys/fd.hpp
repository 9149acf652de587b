// File descriptors: the RAII owner every fd mpp opens lives in (always O_CLOEXEC), and pipes.
// Sockets are in socket.hpp, waiting for fds in poll.hpp.
#pragma once

#include <utility>

namespace mpp::sys {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the current fd (if any; close errors are ignored: the fd is gone either way on Linux).
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// A pipe with both ends O_CLOEXEC. Throws std::system_error.
struct PipeFds {
  Fd read;
  Fd write;
};
[[nodiscard]] PipeFds make_pipe(bool nonblocking = false);

}  // namespace mpp::sys
