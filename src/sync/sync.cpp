// Handles of mpp/sync.hpp over the algorithms of shm/sync_lock and shm/sync_prims.
#include "mpp/sync.hpp"

#include <new>
#include <stdexcept>
#include <type_traits>

#include "shm/sync_lock.hpp"
#include "shm/sync_prims.hpp"

namespace mpp {

namespace detail {

struct SyncAccess {
  static Lock make_lock(std::shared_ptr<void> keep, shm::SyncLock* s) noexcept {
    return Lock(std::move(keep), s);
  }
};

Lock make_lock_at(const SharedBlock& block) {
  auto* s = new (block.base) shm::SyncLock;
  s->init(shm::SyncLock::Kind::errorcheck);
  return SyncAccess::make_lock(block.keep, s);
}

ValueGuard::ValueGuard(Lock& lock) : s_(lock.s_) {
  // An acquire by a thread that already holds the lock (inside a user's lock_guard on get_lock())
  // is not an error here: Value::get()/set() then run under the caller's critical section, like
  // Python's Value with its re-entrant lock.
  // Checked with a plain load first: inside the user's critical section a failing CAS would cost
  // a locked instruction on every get()/set().
  acquired_ = !s_->held_by_caller() && s_->lock() != shm::Acquire::already_owned;
}

ValueGuard::~ValueGuard() {
  if (acquired_) s_->unlock();
}

}  // namespace detail

namespace {

template <class State>
State* place(detail::SharedBlock& b) {
  static_assert(std::is_trivially_destructible_v<State>,
                "shared states are never destroyed: the last unmap simply drops them");
  return new (b.base) State;
}

// Milliseconds to nanoseconds without overflow: huge timeouts mean "forever".
std::chrono::nanoseconds to_ns(std::chrono::milliseconds t) noexcept {
  constexpr auto kMax =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds::max() / 2);
  return t >= kMax ? std::chrono::nanoseconds::max() : std::chrono::nanoseconds(t);
}

void check_acquired(shm::Acquire a) {
  if (a == shm::Acquire::already_owned)
    throw std::logic_error("lock already held by this thread (acquiring it again would deadlock)");
}

}  // namespace

// ---- Lock --------------------------------------------------------------------------------------
Lock::Lock() {
  auto b = detail::allocate_shared_block(sizeof(shm::SyncLock));
  *this = detail::make_lock_at(b);
}

void Lock::acquire() { check_acquired(s_->lock()); }

bool Lock::acquire(std::chrono::milliseconds timeout) {
  auto a = s_->lock_for(to_ns(timeout));
  check_acquired(a);
  return a != shm::Acquire::timed_out;
}

bool Lock::try_acquire() {
  auto a = s_->try_lock();
  check_acquired(a);
  return a != shm::Acquire::timed_out;
}

void Lock::release() {
  if (!s_->unlock()) throw std::logic_error("release of a lock not held by this thread");
}

bool Lock::owner_died() const noexcept { return s_->owner_died(); }
unsigned Lock::owner_deaths() const noexcept { return s_->deaths(); }

// ---- RLock -------------------------------------------------------------------------------------
RLock::RLock() {
  auto b = detail::allocate_shared_block(sizeof(shm::SyncLock));
  s_ = place<shm::SyncLock>(b);
  s_->init(shm::SyncLock::Kind::recursive);
  keep_ = std::move(b.keep);
}

void RLock::acquire() { (void)s_->lock(); }

bool RLock::acquire(std::chrono::milliseconds timeout) {
  return s_->lock_for(to_ns(timeout)) != shm::Acquire::timed_out;
}

bool RLock::try_acquire() { return s_->try_lock() != shm::Acquire::timed_out; }

void RLock::release() {
  if (!s_->unlock()) throw std::logic_error("release of a lock not held by this thread");
}

bool RLock::owner_died() const noexcept { return s_->owner_died(); }
unsigned RLock::owner_deaths() const noexcept { return s_->deaths(); }

// ---- Semaphore ---------------------------------------------------------------------------------
Semaphore::Semaphore(unsigned value) : Semaphore(value, shm::SemaphoreState::kUnbounded) {}

Semaphore::Semaphore(unsigned value, unsigned bound) {
  auto b = detail::allocate_shared_block(sizeof(shm::SemaphoreState));
  s_ = place<shm::SemaphoreState>(b);
  s_->init(value, bound);
  keep_ = std::move(b.keep);
}

void Semaphore::acquire() { (void)s_->acquire(shm::Deadline::forever()); }

bool Semaphore::acquire(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return s_->try_acquire();
  return s_->acquire(shm::Deadline::after(to_ns(timeout)));
}

bool Semaphore::try_acquire() { return s_->try_acquire(); }

void Semaphore::release() {
  if (!s_->release()) throw std::logic_error("semaphore released too many times");
}

unsigned Semaphore::get_value() const noexcept { return s_->value(); }

BoundedSemaphore::BoundedSemaphore(unsigned value) : Semaphore(value, value) {}

// ---- Event -------------------------------------------------------------------------------------
Event::Event() {
  auto b = detail::allocate_shared_block(sizeof(shm::EventState));
  s_ = place<shm::EventState>(b);
  s_->init();
  keep_ = std::move(b.keep);
}

void Event::set() { s_->set(); }
void Event::clear() { s_->clear(); }
bool Event::is_set() const { return s_->is_set(); }
void Event::wait() { (void)s_->wait(shm::Deadline::forever()); }
bool Event::wait(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return s_->is_set();
  return s_->wait(shm::Deadline::after(to_ns(timeout)));
}

// ---- Condition ---------------------------------------------------------------------------------
Condition::Condition() : Condition(Lock()) {}

Condition::Condition(Lock lock) : lock_(std::move(lock)) {
  auto b = detail::allocate_shared_block(sizeof(shm::CondState));
  s_ = place<shm::CondState>(b);
  s_->init();
  keep_ = std::move(b.keep);
}

void Condition::wait() { (void)wait(std::chrono::milliseconds::max()); }

bool Condition::wait(std::chrono::milliseconds timeout) {
  const shm::Deadline deadline = shm::Deadline::after(to_ns(timeout));
  // The ticket is taken under the lock, so a notify issued after we release it is never missed.
  const std::uint32_t ticket = s_->prepare();
  try {
    lock_.release();
  } catch (...) {
    s_->cancel();
    throw std::logic_error("Condition::wait without holding its lock");
  }
  const bool notified = s_->sleep(ticket, deadline);
  lock_.acquire();
  return notified;
}

void Condition::notify(unsigned n) { s_->notify(n); }
void Condition::notify_all() { s_->notify_all(); }

// ---- Barrier -----------------------------------------------------------------------------------
Barrier::Barrier(unsigned parties) {
  if (parties == 0 || parties > shm::BarrierState::kMaxParties)
    throw std::invalid_argument("Barrier parties must be between 1 and 65535");
  auto b = detail::allocate_shared_block(sizeof(shm::BarrierState));
  s_ = place<shm::BarrierState>(b);
  s_->init(parties);
  keep_ = std::move(b.keep);
}

void Barrier::wait() { (void)s_->wait(); }
unsigned Barrier::parties() const noexcept { return s_->parties(); }
unsigned Barrier::n_waiting() const noexcept { return s_->n_waiting(); }

}  // namespace mpp
