// System calls of the shared-state/synchronization component (see sync_sys.hpp).
#include "sys/sync_sys.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "sys/check.hpp"
#include "sys/proc.hpp"

namespace mpp::sys {

std::int32_t current_tid() noexcept { return static_cast<std::int32_t>(::gettid()); }

namespace tid_cache {
__thread std::int32_t t_tid = 0;
__thread std::uint32_t t_start = 0;

namespace {
void forget_in_child() { t_tid = 0; }
// Not a function-local static: a fork could catch its guard half-way (see register_atfork_once).
std::atomic<int> g_atfork{0};
// Registered during static initialisation, before main and any thread, so that the first lock of
// a program does not register it while another thread forks.
[[maybe_unused]] const bool g_registered_at_start =
    register_atfork_once(g_atfork, nullptr, nullptr, &forget_in_child);
}  // namespace

std::int32_t fill() noexcept {
  const std::int32_t tid = current_tid();
  // One read of /proc/TID/stat per thread (and per fork child): a few microseconds, once.
  t_start = process_start_time(tid);
  // Cached only once the handler that clears the cache in a fork child is in place (before that,
  // e.g. called from another file's static initialiser, every call asks the kernel).
  if (register_atfork_once(g_atfork, nullptr, nullptr, &forget_in_child)) t_tid = tid;
  return tid;
}
}  // namespace tid_cache

void random_bytes(void* buf, std::size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    ssize_t r = retry_eintr([&] { return ::getrandom(p, n, 0); });
    if (r < 0) throw_errno("cannot get random bytes");
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

SocketPairFds make_socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    throw_errno("cannot create pipe");
  return {Fd(fds[0]), Fd(fds[1])};
}

void shutdown_direction(int fd, int how) noexcept { ::shutdown(fd, how == 0 ? SHUT_RD : SHUT_WR); }

Fd open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  long r = ::syscall(SYS_pidfd_open, pid, 0);
  if (r >= 0) {
    // pidfd_open sets O_CLOEXEC itself (man pidfd_open); nothing to add.
    return Fd(static_cast<int>(r));
  }
#else
  (void)pid;
#endif
  return Fd();
}

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

Ready poll_two(int fd, bool write, int other, std::chrono::nanoseconds timeout) {
  using namespace std::chrono;
  const bool forever = timeout.count() < 0;
  const auto deadline = forever ? steady_clock::time_point::max() : steady_clock::now() + timeout;
  for (;;) {
    int ms = -1;
    if (!forever) {
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now() + microseconds(999));
      ms = static_cast<int>(std::clamp<long long>(left.count(), 0, 1 << 30));
    }
    pollfd p[2] = {{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0}, {other, POLLIN, 0}};
    int r = ::poll(p, other >= 0 ? 2 : 1, ms);
    if (r > 0) {
      if (p[0].revents != 0) return Ready::fd;
      return Ready::other;
    }
    if (r == 0) return Ready::timeout;
    if (errno != EINTR) throw_errno("cannot poll");
  }
}

}  // namespace mpp::sys
