// Waiting for file descriptors (see poll.hpp).
#include "sys/poll.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "sys/check.hpp"

namespace mpp::sys {

namespace {

// poll(2)'s timeout for the time left until `deadline` (max(): forever), rounded up to a whole
// millisecond so that a wait never ends early.
int ms_left(std::chrono::steady_clock::time_point deadline) {
  using namespace std::chrono;
  if (deadline == steady_clock::time_point::max()) return -1;
  auto left = duration_cast<milliseconds>(deadline - steady_clock::now() + microseconds(999));
  return static_cast<int>(std::clamp<long long>(left.count(), 0, 1 << 30));
}

std::chrono::steady_clock::time_point deadline_after(std::chrono::nanoseconds timeout) {
  using std::chrono::steady_clock;
  return timeout.count() < 0 ? steady_clock::time_point::max() : steady_clock::now() + timeout;
}

}  // namespace

Ready poll_two(int fd, bool write, int other, std::chrono::nanoseconds timeout) {
  const auto deadline = deadline_after(timeout);
  for (;;) {
    const int ms = ms_left(deadline);
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

int poll_readable_many(const int* fds, bool* ready, std::size_t n,
                       std::chrono::nanoseconds timeout) {
  std::vector<pollfd> p(n);
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = {fds[i], POLLIN, 0};
    ready[i] = false;
  }
  const auto deadline = deadline_after(timeout);
  for (;;) {
    const int r = ::poll(p.data(), static_cast<nfds_t>(n), ms_left(deadline));
    if (r >= 0) {
      for (std::size_t i = 0; i < n; ++i) ready[i] = p[i].fd >= 0 && p[i].revents != 0;
      return r;
    }
    if (errno != EINTR) throw_errno("cannot poll");
  }
}

}  // namespace mpp::sys
