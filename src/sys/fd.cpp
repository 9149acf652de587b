// File descriptors: the RAII owner and pipes (see fd.hpp).
#include "sys/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "sys/check.hpp"

namespace mpp::sys {

void Fd::reset(int fd) noexcept {
  // close() is never retried on EINTR: on Linux the fd is released regardless.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

PipeFds make_pipe(bool nonblocking) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) != 0)
    throw_errno("cannot create pipe");
  return {Fd(fds[0]), Fd(fds[1])};
}

}  // namespace mpp::sys
