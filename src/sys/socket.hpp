// Sockets: connected AF_UNIX stream pairs (the transport of mpp::Pipe and of the /dev/shm
// guardians) and non-blocking transfers on them that never raise SIGPIPE; connected AF_UNIX
// packet pairs that carry descriptors (SCM_RIGHTS: the channels of the forkserver, the per-pool
// zygote and spawned workers, src/process/forker.hpp).
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

// A connected AF_UNIX SOCK_SEQPACKET pair (each send is one message, received whole), both ends
// O_CLOEXEC and blocking. Nothing but the holders of the two descriptors can reach it: it has
// no name. Throws std::system_error ("cannot create socket pair").
[[nodiscard]] SocketPairFds make_packet_pair();

// Sends one message of `n` bytes with `nfds` descriptors (SCM_RIGHTS, at most kMaxPacketFds).
// Blocks while the socket is full; EINTR-safe; never SIGPIPE. False when the peer is gone.
// Throws std::system_error on other errors.
inline constexpr std::size_t kMaxPacketFds = 4;
bool send_packet(int fd, const void* buf, std::size_t n, const int* fds = nullptr,
                 std::size_t nfds = 0);
// Receives one message into `buf` (at most `n` bytes; a longer one is cut) and up to
// kMaxPacketFds descriptors into `fds` (each O_CLOEXEC; `nfds` says how many). Returns the bytes
// received, 0 when the peer is gone (EOF), -1 when `dontwait` and nothing is there. EINTR-safe.
// Throws std::system_error on other errors.
long recv_packet(int fd, void* buf, std::size_t n, Fd* fds, std::size_t& nfds,
                 bool dontwait = false);

// The uid of the process at the other end of a connected AF_UNIX socket (SO_PEERCRED), -1 if
// unknown.
[[nodiscard]] long peer_uid(int fd) noexcept;

}  // namespace mpp::sys
