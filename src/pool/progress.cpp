// Rendering of the pool's progress bar.
#include "pool/progress.hpp"

#include <atomic>
#include <cstdio>

#include "sys/terminal.hpp"

namespace mpp::detail {

void draw_progress(const PoolProgress& p) noexcept {
  // Asked once per process; an atomic rather than a function-local static, whose guard a fork in
  // another thread could catch half-way (issue 16). -1: not asked yet.
  static std::atomic<int> is_tty{-1};
  int t = is_tty.load(std::memory_order_relaxed);
  if (t < 0) {
    t = sys::stderr_is_tty() ? 1 : 0;
    is_tty.store(t, std::memory_order_relaxed);
  }
  const bool tty = t == 1;
  // Log files and pipes get one line at the end rather than hundreds of carriage returns.
  if (!tty && !p.finished) return;
  const double secs = std::chrono::duration<double>(p.elapsed).count();
  const double rate = secs > 0 ? static_cast<double>(p.done) / secs : 0.0;
  char bar[33] = {};
  char line[256];
  int n = 0;
  if (p.total > 0) {
    const double frac = static_cast<double>(p.done) / static_cast<double>(p.total);
    const int fill = static_cast<int>(frac * 30.0);
    for (int i = 0; i < 30; ++i) bar[i] = i < fill ? '#' : '.';
    const double eta = rate > 0 ? static_cast<double>(p.total - p.done) / rate : 0.0;
    n = std::snprintf(line, sizeof line, "%s[%s] %lld/%lld items  %.0f items/s  %s %.1fs%s",
                      tty ? "\r" : "", bar, static_cast<long long>(p.done),
                      static_cast<long long>(p.total), rate, p.finished ? "took" : "ETA",
                      p.finished ? secs : eta, p.finished ? "\n" : "");
  } else {
    n = std::snprintf(line, sizeof line, "%s%lld items  %.0f items/s  %.1fs%s", tty ? "\r" : "",
                      static_cast<long long>(p.done), rate, secs, p.finished ? "\n" : "");
  }
  if (n > 0) {
    sys::write_stderr(
        line, static_cast<std::size_t>(n < static_cast<int>(sizeof line) ? n : sizeof line - 1));
  }
}

}  // namespace mpp::detail
