// Waiting for file descriptors (see poll.hpp).
#include "sys/poll.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "sys/check.hpp"

namespace mpp::sys {

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

int poll_readable_many(const int* fds, bool* ready, std::size_t n,
                       std::chrono::nanoseconds timeout) {
  using namespace std::chrono;
  std::vector<pollfd> p(n);
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = {fds[i], POLLIN, 0};
    ready[i] = false;
  }
  const bool forever = timeout.count() < 0;
  const auto deadline = forever ? steady_clock::time_point::max() : steady_clock::now() + timeout;
  for (;;) {
    int ms = -1;
    if (!forever) {
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now() + microseconds(999));
      ms = static_cast<int>(std::clamp<long long>(left.count(), 0, 1 << 30));
    }
    const int r = ::poll(p.data(), static_cast<nfds_t>(n), ms);
    if (r >= 0) {
      for (std::size_t i = 0; i < n; ++i) ready[i] = p[i].fd >= 0 && p[i].revents != 0;
      return r;
    }
    if (errno != EINTR) throw_errno("cannot poll");
  }
}

}  // namespace mpp::sys
