// AF_UNIX socket pairs and non-blocking transfers (see socket.hpp).
#include "sys/socket.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "sys/check.hpp"

namespace mpp::sys {

SocketPairFds make_socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    throw_errno("cannot create pipe");
  return {Fd(fds[0]), Fd(fds[1])};
}

void shutdown_direction(int fd, int how) noexcept { ::shutdown(fd, how == 0 ? SHUT_RD : SHUT_WR); }

long recv_some(int fd, void* buf, std::size_t n) {
  for (;;) {
    ssize_t r = ::recv(fd, buf, n, MSG_DONTWAIT);
    if (r > 0) return static_cast<long>(r);
    if (r == 0) return -1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno == ECONNRESET) return -1;
    throw_errno("cannot receive from pipe");
  }
}

long send_some(int fd, const void* buf, std::size_t n) {
  for (;;) {
    // MSG_NOSIGNAL: a vanished peer is an error to report, never a SIGPIPE that kills us.
    ssize_t r = ::send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r >= 0) return static_cast<long>(r);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno == EPIPE || errno == ECONNRESET) return -1;
    throw_errno("cannot send to pipe");
  }
}

}  // namespace mpp::sys
