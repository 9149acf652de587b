// The fault seam's state (see fault.hpp): one slot of atomics per operation, armed by tests.
#include "sys/fault.hpp"

#include <atomic>

namespace mpp::sys::fault {
namespace {
struct Slot {
  std::atomic<int> err{0};
  std::atomic<int> times{0};
  std::atomic<int> skip{0};
};
Slot g_slots[static_cast<int>(Op::count_)];
std::atomic<bool> g_armed{false};
}  // namespace

void inject(Op op, int err, int times, int skip) noexcept {
  auto& s = g_slots[static_cast<int>(op)];
  s.err.store(err);
  s.skip.store(skip);
  s.times.store(times);
  g_armed.store(true);
}
void clear() noexcept {
  for (auto& s : g_slots) s.times.store(0);
  g_armed.store(false);
}
int take(Op op) noexcept {
  if (!g_armed.load(std::memory_order_relaxed)) return 0;
  auto& s = g_slots[static_cast<int>(op)];
  if (s.skip.load() > 0) {
    s.skip.fetch_sub(1);
    return 0;
  }
  int t = s.times.load();
  while (t > 0) {
    if (s.times.compare_exchange_weak(t, t - 1)) return s.err.load();
  }
  return 0;
}

}  // namespace mpp::sys::fault
