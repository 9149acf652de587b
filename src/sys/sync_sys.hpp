// System calls used by mpp's shared state and synchronization component (src/sync, src/shm/sync_*):
// thread ids, random bytes, socket pairs for Pipe, pidfds of peers, and two-fd polls.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "sys/fd.hpp"

namespace mpp::sys {

// Kernel thread id of the calling thread (a system call; callers keep it off hot paths).
[[nodiscard]] std::int32_t current_tid() noexcept;

// The same, cached per thread, with the thread's start time (process_start_time of the thread
// id, /proc/TID/stat): the lock word of mpp::Lock holds both (shm::OwnerLock::id_for), so they are
// read on every acquire. The cache is cleared in the child after fork() by a pthread_atfork
// handler, because a forked child's thread has a new id but inherits the forking thread's
// thread-local memory.
namespace tid_cache {
extern __thread std::int32_t t_tid;     // __thread: no dynamic init, so no TLS wrapper call
extern __thread std::uint32_t t_start;  // valid when t_tid != 0
std::int32_t fill() noexcept;
}  // namespace tid_cache
// The calling thread's id and start time (as sys::process_start_time; 0 when unknown).
struct ThreadIdentity {
  std::int32_t tid;
  std::uint32_t start;
};
[[nodiscard]] inline ThreadIdentity cached_thread() noexcept {
  std::int32_t t = tid_cache::t_tid;
  if (t == 0) [[unlikely]]
    t = tid_cache::fill();
  return {t, tid_cache::t_start};
}

// Fills buf with n cryptographically random bytes (getrandom). Throws std::system_error.
void random_bytes(void* buf, std::size_t n);

// A connected AF_UNIX stream socket pair, both ends O_CLOEXEC and O_NONBLOCK (mpp polls itself,
// so that a wait can also watch a peer's pidfd). Throws std::system_error.
struct SocketPairFds {
  Fd a;
  Fd b;
};
[[nodiscard]] SocketPairFds make_socket_pair();
// shutdown(2) of one direction: how = 0 read, 1 write. Errors ignored (best effort).
void shutdown_direction(int fd, int how) noexcept;

// pidfd of any process (not only children), O_CLOEXEC; an invalid Fd if the process is gone or the
// kernel lacks pidfd_open.
[[nodiscard]] Fd open_pidfd(pid_t pid) noexcept;

// Non-blocking transfer on a socket: returns bytes moved (> 0), 0 when it would block, -1 on EOF
// (recv) or a broken peer (send: EPIPE/ECONNRESET, never SIGPIPE). Throws std::system_error on
// other errors. EINTR is retried.
[[nodiscard]] long recv_some(int fd, void* buf, std::size_t n);
[[nodiscard]] long send_some(int fd, const void* buf, std::size_t n);

// Waits until `fd` is ready for `write ? POLLOUT : POLLIN` (or hung up), or `other` (a pidfd, may
// be -1) becomes readable, or the timeout passes (negative = forever). EINTR-safe.
enum class Ready { fd, other, timeout };
Ready poll_two(int fd, bool write, int other, std::chrono::nanoseconds timeout);

}  // namespace mpp::sys
