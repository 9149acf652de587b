// Who drives a pool engine when several threads wait on it: the one mechanism both engines
// (src/pool/engine.cpp for mpp::Pool, src/mpi/engine.cpp for mpp::mpi::Pool) use to be callable
// from any number of threads without a background thread.
//
// What: an engine's state (its workers, queued batches, and everything its batches hold) is
// guarded by the gate's mutex; any thread holding it may pump the engine (move chunks and
// results). Of the threads that wait on the engine (a get(), a map, an imap advance, a join),
// exactly one is the driver: it pumps, checks the workers (crashes, task_timeout) and sleeps on
// the engine's own wake-up (a worker's notify, an MPI poll) with the mutex released. The others
// are passengers: each sleeps on its own word until its done() holds, its deadline passes, or the
// driver hands it the role (the driver's own done() held, or its deadline passed). Whoever
// changes the engine's state calls progressed(), which evaluates each passenger's done() and
// wakes exactly those it now satisfies, so a passenger costs no wake-up until its result is in
// (no thundering herd, no polling).
//
// Why not a background thread: the pool would then need one thread per pool, started in every
// program (a fork of which must not inherit it half-way), and every result would cross one more
// thread. Why not every waiter on the engine's wake-up: a worker's notify wakes them all, and
// each would take the mutex in turn to find nothing for it.
//
// Rules: every member is called with the mutex held (by `lk`); done() predicates only read state
// the mutex guards and do not throw; a driver calls leave() when its wait ends (DriverScope).
// Blocking: only enter() (as a passenger). Fork: a child never touches a parent's gate (pool
// workers run worker code only; a forked program must not use its parent's pools). Memory:
// passengers live on their waiters' stacks; nothing is allocated.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "shm/wait_word.hpp"

namespace mpp::detail {

class DriverGate {
 public:
  using Clock = std::chrono::steady_clock;
  using Lock = std::unique_lock<std::mutex>;
  using Done = std::function<bool()>;

  [[nodiscard]] std::mutex& mutex() noexcept { return mu_; }
  [[nodiscard]] bool driving() const noexcept { return driving_; }

  // Returns true when the caller became the driver (done() was false and no thread drove);
  // otherwise it waits as a passenger, with the mutex released while it sleeps, and returns
  // false once done() holds or the deadline passed (the caller re-checks done()). A passenger
  // handed the role becomes the driver. Never throws.
  bool enter(Lock& lk, const Done& done, Clock::time_point deadline) noexcept {
    if (!driving_) return take(done);
    Passenger me;
    me.done = &done;
    link(me);
    for (;;) {
      if (done()) break;
      if (!driving_) {
        unlink(me);
        return take(done);
      }
      const auto now = Clock::now();
      if (now >= deadline) break;
      const std::uint32_t seen = me.word.word().load(std::memory_order_relaxed);
      lk.unlock();
      // A wake-up bumps the word under the mutex, after this read: the sleep returns at once.
      (void)me.word.sleep(
          seen, deadline == Clock::time_point::max()
                    ? std::chrono::nanoseconds::max()
                    : std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now));
      lk.lock();
    }
    unlink(me);
    // It may have been handed the role just now: pass it on.
    if (!driving_) hand_over();
    return false;
  }

  // The driver's wait ended: hands the role to a passenger that is still waiting.
  void leave() noexcept {
    driving_ = false;
    driver_done_ = nullptr;
    hand_over();
  }

  // The engine's state changed: wakes the passengers whose done() holds now. Returns true when
  // the driver's own done() holds (a driver asleep outside the mutex must then be woken by the
  // caller through the engine's wake-up).
  bool progressed() noexcept {
    for (Passenger* p = head_; p != nullptr; p = p->next) {
      if (!p->woken && (*p->done)()) {
        p->woken = true;
        p->word.bump_and_wake(1);
      }
    }
    return driver_done_ != nullptr && (*driver_done_)();
  }

  // Every done() may have changed in a way progressed() cannot tell (close, join, terminate: a
  // passenger of join waits for idleness): wakes all passengers to re-check.
  void wake_all() noexcept {
    for (Passenger* p = head_; p != nullptr; p = p->next) p->word.bump_and_wake(1);
  }

 private:
  struct Passenger {
    const Done* done = nullptr;
    shm::WaitWord word;
    bool woken = false;  // progressed() found its done(): no second wake-up
    Passenger* prev = nullptr;
    Passenger* next = nullptr;
  };

  // Wakes the oldest passenger not already woken for its result; it takes the role.
  void hand_over() noexcept {
    for (Passenger* p = head_; p != nullptr; p = p->next) {
      if (!p->woken) {
        p->word.bump_and_wake(1);
        return;
      }
    }
  }
  bool take(const Done& done) noexcept {
    driving_ = true;
    driver_done_ = &done;
    return true;
  }
  void link(Passenger& p) noexcept {
    p.prev = tail_;
    (tail_ != nullptr ? tail_->next : head_) = &p;
    tail_ = &p;
  }
  void unlink(Passenger& p) noexcept {
    (p.prev != nullptr ? p.prev->next : head_) = p.next;
    (p.next != nullptr ? p.next->prev : tail_) = p.prev;
    p.prev = p.next = nullptr;
  }

  std::mutex mu_;
  bool driving_ = false;
  const Done* driver_done_ = nullptr;
  Passenger* head_ = nullptr;  // waiting passengers, oldest first (the next driver)
  Passenger* tail_ = nullptr;
};

// Leaves the driver role when a driver's wait ends, also by an exception.
class DriverScope {
 public:
  explicit DriverScope(DriverGate& g) noexcept : g_(g) {}
  ~DriverScope() { g_.leave(); }
  DriverScope(const DriverScope&) = delete;
  DriverScope& operator=(const DriverScope&) = delete;

 private:
  DriverGate& g_;
};

}  // namespace mpp::detail
