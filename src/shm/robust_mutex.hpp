// A process-shared, robust mutex that lives inside shared memory.
//
// It is glibc's PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST mutex (futex-based; the kernel's
// robust-list walk at thread death marks a lock whose owner died). We use it rather than a hand-
// written futex lock because only the kernel's robust list can notice an owner that was SIGKILLed.
//
// Lifetime: placement-constructed once in a fresh shared mapping by its creator (init()), then used
// by every process that maps it. Memory ordering: lock() is an acquire, unlock() a release, across
// processes. Fork: a child inherits the mapping; a lock held by the forking thread stays held by
// the parent, never by the child.
#pragma once

#include <pthread.h>

#include <chrono>
#include <optional>

namespace mpp::shm {

enum class LockResult {
  acquired,    // normal acquisition
  owner_died,  // acquired, but the previous owner died holding it: state may be inconsistent
  timed_out,   // not acquired
};

class RobustMutex {
 public:
  // Initializes the mutex in place (in shared memory). Throws std::system_error.
  void init();
  // Blocks until acquired. Returns acquired or owner_died. Throws std::system_error if the mutex
  // is unusable (ENOTRECOVERABLE: a previous owner_died was not made consistent).
  LockResult lock();
  // Waits at most `timeout`.
  LockResult lock_for(std::chrono::nanoseconds timeout);
  // Never blocks.
  LockResult try_lock();
  // After owner_died: declare the protected state repaired, so the mutex stays usable.
  void mark_consistent() noexcept;
  void unlock() noexcept;

 private:
  pthread_mutex_t m_;
};

}  // namespace mpp::shm
