// Sockets: connected AF_UNIX stream pairs (the transport of mpp::Pipe and of the /dev/shm
// guardians) and non-blocking transfers on them that never raise SIGPIPE.
#pragma once

#include <cstddef>

#include "sys/fd.hpp"

namespace mpp::sys {

// A connected AF_UNIX stream socket pair, both ends O_CLOEXEC and O_NONBLOCK (mpp polls itself,
// so that a wait can also watch a peer's pidfd). Throws std::system_error.
struct SocketPairFds {
  Fd a;
  Fd b;
};
[[nodiscard]] SocketPairFds make_socket_pair();
// shutdown(2) of one direction: how = 0 read, 1 write. Errors ignored (best effort).
void shutdown_direction(int fd, int how) noexcept;

// Non-blocking transfer on a socket: returns bytes moved (> 0), 0 when it would block, -1 on EOF
// (recv) or a broken peer (send: EPIPE/ECONNRESET, never SIGPIPE). Throws std::system_error on
// other errors. EINTR is retried.
[[nodiscard]] long recv_some(int fd, void* buf, std::size_t n);
[[nodiscard]] long send_some(int fd, const void* buf, std::size_t n);

}  // namespace mpp::sys
