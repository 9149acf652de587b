// mpp/sync.hpp: locks and synchronization primitives shared between processes, like Python's
// multiprocessing.Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition and Barrier.
//
// What: every object is a HANDLE. Copies refer to the same primitive, whose state lives in
// anonymous MAP_SHARED memory; children forked after the object was created (mpp::Process
// targets, Pool workers, plain fork()) share it just by using a handle (captured, passed as an
// argument, or a global). Processes that are not descendants cannot reach it.
//
// Lifetime: the shared state stays mapped in a process while any handle to it exists there; it is
// gone when the last process holding a handle drops it or exits. Nothing is ever left in /dev/shm.
//
// Fork: a child sees every primitive in the state it had at fork(). A Lock held by the forking
// thread stays held by that thread of the parent; the child does NOT own it.
//
// Memory ordering: acquire() of a Lock/RLock/Semaphore and a successful Event::wait() are acquire
// operations, release()/set() are release operations, across processes; leaving Barrier::wait()
// makes visible everything every party wrote before it arrived.
//
// Robustness (Lock, RLock, and the lock inside Condition): if the holder dies (SIGKILL included,
// or a thread that exits holding it) the lock is not lost. A waiter notices within a short check
// interval (10 ms, growing to 160 ms while the holder stays alive) that the holder's thread is
// gone, takes the lock over, and returns normally from acquire(); until that holder releases,
// owner_died() returns true in it: the protected state may be half-updated, repair it before
// releasing. The lock is usable again at once; there is no "unrecoverable" state. (Limits: a
// holder that calls execve() keeps the lock. A dead holder whose thread id the kernel has given
// to a new thread is still recognised as dead, by the thread's start time, except for 1 new
// thread in 512 whose start time matches in the bits the lock keeps.)
// Semaphores, Events and Barriers have no owner and are not robust: a process that dies before
// release()/set()/arriving is simply a release that never happens, exactly as in Python.
//
// Blocking: names say it. acquire()/wait() block; acquire(timeout)/wait(timeout) block at most
// the timeout and return false when it passed; try_* never block. No call here is a cancellation
// point for mpp: a blocked wait is interrupted only by its condition or its timeout.
//
// Errors: std::system_error when the shared mapping cannot be created; std::logic_error for
// misuse (acquiring a Lock this thread already holds, releasing a lock this thread does not hold,
// waiting on a Condition without holding its lock, over-releasing a BoundedSemaphore);
// std::invalid_argument for bad construction arguments (Barrier with 0 parties).
#pragma once

#include <chrono>
#include <memory>

#include "mpp/detail/export.hpp"
#include "mpp/detail/sync_block.hpp"

namespace mpp {

namespace detail {
class ValueGuard;
}

// A robust, non-recursive mutual-exclusion lock owned by one thread of one process at a time.
// Also BasicLockable/Lockable (lock/unlock/try_lock), so std::lock_guard and std::unique_lock work.
class MPP_API Lock {
 public:
  // Creates a new unlocked lock in fresh shared memory. Throws std::system_error.
  Lock();

  // Blocks until acquired. Throws std::logic_error if the calling thread already holds it (a
  // certain deadlock otherwise). If the previous holder died holding it, returns normally and
  // owner_died() is true until release().
  void acquire();
  // Blocks at most `timeout` (<= 0: does not block). True if acquired. Throws like acquire().
  [[nodiscard]] bool acquire(std::chrono::milliseconds timeout);
  // Never blocks. True if acquired. Throws like acquire().
  [[nodiscard]] bool try_acquire();
  // Never blocks. Throws std::logic_error if the calling thread does not hold the lock.
  void release();

  // BasicLockable / Lockable names (std::lock_guard, std::unique_lock): acquire, try_acquire,
  // release.
  void lock() { acquire(); }
  [[nodiscard]] bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

  // True (in the holder) when this acquisition took over the lock from a holder that died. Only
  // meaningful while held. Never blocks, never throws.
  [[nodiscard]] bool owner_died() const noexcept;
  // How many holders died holding this lock, over its whole life (diagnostics).
  [[nodiscard]] unsigned owner_deaths() const noexcept;

 private:
  friend struct detail::SyncAccess;
  friend class detail::ValueGuard;
  Lock(std::shared_ptr<void> keep, shm::SyncLock* state) noexcept
      : keep_(std::move(keep)), s_(state) {}

  std::shared_ptr<void> keep_;
  shm::SyncLock* s_ = nullptr;
};

namespace detail {
// A new Lock placed at the start of `block` (which the Lock then keeps mapped). Used by Value and
// Array to keep their lock and their data in one mapping. Throws std::system_error.
[[nodiscard]] MPP_API Lock make_lock_at(const SharedBlock& block);

// Holds `lock` for a scope unless the calling thread already holds it; used by Value so that
// get()/set() work both alone and inside the user's own critical section on get_lock().
class MPP_API ValueGuard {
 public:
  explicit ValueGuard(Lock& lock);  // blocks; never throws
  ~ValueGuard();
  ValueGuard(const ValueGuard&) = delete;
  ValueGuard& operator=(const ValueGuard&) = delete;

 private:
  shm::SyncLock* s_;
  bool acquired_;
};
}  // namespace detail

// A robust re-entrant lock: its owner thread may acquire it again; each acquire() needs one
// release(). Same surface and errors as Lock, except that re-acquiring is allowed.
class MPP_API RLock {
 public:
  RLock();  // throws std::system_error

  void acquire();                                                 // blocks
  [[nodiscard]] bool acquire(std::chrono::milliseconds timeout);  // blocks at most timeout
  [[nodiscard]] bool try_acquire();                               // never blocks
  void release();  // throws std::logic_error if the calling thread does not hold it

  // BasicLockable / Lockable names (std::lock_guard, std::unique_lock): acquire, try_acquire,
  // release.
  void lock() { acquire(); }
  [[nodiscard]] bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

  // As Lock: true when this acquisition took over from a holder that died; how many times that
  // happened.
  [[nodiscard]] bool owner_died() const noexcept;
  [[nodiscard]] unsigned owner_deaths() const noexcept;

 private:
  std::shared_ptr<void> keep_;
  shm::SyncLock* s_ = nullptr;
};

// A counting semaphore (Python's multiprocessing.Semaphore). Anyone may release.
class MPP_API Semaphore {
 public:
  // Throws std::system_error.
  explicit Semaphore(unsigned value = 1);

  void acquire();  // blocks while the value is 0, then decrements it
  [[nodiscard]] bool acquire(std::chrono::milliseconds timeout);  // false after the timeout
  [[nodiscard]] bool try_acquire();                               // never blocks
  // Never blocks. Increments the value, waking one waiter. BoundedSemaphore: throws
  // std::logic_error when the value is already at its initial value.
  void release();
  [[nodiscard]] unsigned get_value() const noexcept;  // a snapshot, like Python's get_value()

 protected:
  // For BoundedSemaphore: release() past `bound` throws.
  Semaphore(unsigned value, unsigned bound);

 private:
  std::shared_ptr<void> keep_;
  shm::SemaphoreState* s_ = nullptr;
};

// A semaphore whose value may never exceed its initial value: release() beyond it throws
// std::logic_error (Python raises ValueError) and changes nothing.
class MPP_API BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(unsigned value = 1);  // throws std::system_error
};

// A flag that processes can wait for (Python's multiprocessing.Event). Starts cleared.
class MPP_API Event {
 public:
  Event();  // throws std::system_error

  void set();                                                  // never blocks; wakes every waiter
  void clear();                                                // never blocks
  [[nodiscard]] bool is_set() const;                           // never blocks
  void wait();                                                 // blocks until set
  [[nodiscard]] bool wait(std::chrono::milliseconds timeout);  // true if set within the timeout

 private:
  std::shared_ptr<void> keep_;
  shm::EventState* s_ = nullptr;
};

// A condition variable with its own (robust) Lock, like Python's multiprocessing.Condition.
// wait() must be called holding the lock; it releases it while sleeping and holds it again when
// it returns. Wake-ups may be spurious: use wait_for(predicate) for a condition.
class MPP_API Condition {
 public:
  Condition();                    // with a new Lock; throws std::system_error
  explicit Condition(Lock lock);  // shares an existing Lock (a handle); throws std::system_error

  // The condition's lock: as Lock (get_lock() is the Lock itself).
  void acquire() { lock_.acquire(); }
  [[nodiscard]] bool acquire(std::chrono::milliseconds timeout) { return lock_.acquire(timeout); }
  void release() { lock_.release(); }
  void lock() { lock_.acquire(); }
  [[nodiscard]] bool try_lock() { return lock_.try_acquire(); }
  void unlock() { lock_.release(); }
  [[nodiscard]] Lock& get_lock() noexcept { return lock_; }
  [[nodiscard]] bool owner_died() const noexcept { return lock_.owner_died(); }

  // Blocks until notified (or spuriously woken). Throws std::logic_error if the calling thread
  // does not hold the lock.
  void wait();
  // Blocks at most `timeout`; false if it timed out. Throws like wait().
  [[nodiscard]] bool wait(std::chrono::milliseconds timeout);
  // Blocks until pred() is true (evaluated with the lock held). Throws like wait().
  template <class Pred>
  void wait_for(Pred pred) {
    while (!pred()) wait();
  }
  // Blocks at most `timeout` in total; returns the last value of pred(). Throws like wait().
  template <class Pred>
  [[nodiscard]] bool wait_for(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !wait(left)) return pred();
    }
    return true;
  }
  // Never block. Wake at most n waiters / every waiter. Call them holding the lock (as Python
  // requires): a notify without it may miss a waiter that is just going to sleep.
  void notify(unsigned n = 1);
  void notify_all();

 private:
  Lock lock_;
  std::shared_ptr<void> keep_;
  shm::CondState* s_ = nullptr;
};

// A reusable barrier for a fixed number of parties (Python's multiprocessing.Barrier, without
// abort/timeout). Not robust: a party that dies before arriving leaves the others waiting.
class MPP_API Barrier {
 public:
  // Throws std::invalid_argument if parties is 0 or above 65535; std::system_error.
  explicit Barrier(unsigned parties);

  void wait();  // blocks until `parties` calls (from any processes) have arrived
  // The number of parties given to the constructor.
  [[nodiscard]] unsigned parties() const noexcept;
  [[nodiscard]] unsigned n_waiting() const noexcept;  // a snapshot

 private:
  std::shared_ptr<void> keep_;
  shm::BarrierState* s_ = nullptr;
};

}  // namespace mpp
