// Test seam: makes selected system calls fail on purpose, so tests can reach error paths
// ("fork fails with EAGAIN", "mmap fails with ENOMEM") without exhausting the machine.
//
// Production code calls sys::fault::take(Op) just before the real call; when an injection is armed
// for that op it returns the errno to fail with (and the call is skipped). Disarmed cost: one
// relaxed atomic load.
#pragma once

namespace mpp::sys::fault {

enum class Op { fork, mmap, memfd, pidfd, count_ };

// Fail the next `times` calls of `op` with `err` (after letting `skip` calls through).
void inject(Op op, int err, int times = 1, int skip = 0) noexcept;
// Disarm every injection.
void clear() noexcept;
// Returns 0 to proceed, or the errno the call must fail with.
int take(Op op) noexcept;

// RAII: inject on construction, clear on destruction.
class Scoped {
 public:
  Scoped(Op op, int err, int times = 1, int skip = 0) noexcept { inject(op, err, times, skip); }
  ~Scoped() { clear(); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;
};

}  // namespace mpp::sys::fault
