#include "mpp/detail/queue_core.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "mpp/detail/failpoint.hpp"
#include "mpp/detail/fork_hooks.hpp"
#include "mpp/errors.hpp"
#include "shm/ring.hpp"
#include "sys/futex.hpp"
#include "sys/mem.hpp"
#include "sys/proc.hpp"

namespace mpp::detail {

namespace {

// Rings up to this size are prefaulted whole (MAP_POPULATE); larger ones only have their first
// kWarmBytes touched: a first touch costs ~15 us per page here, so populating 64 MiB would make
// the constructor take a quarter of a second, while recycling (see ring.hpp) keeps a streaming
// queue within its first few hundred KiB.
constexpr std::size_t kPrefaultWhole = std::size_t{1} << 20;
constexpr std::size_t kWarmBytes = 256 * 1024;
// Batches publish (and free space / wake the other side) at least this often, so a long
// put_many or get_many keeps the other side busy instead of stalling it until the end.
constexpr std::size_t kPublishEvery = 256;

shm::Deadline to_deadline(const QueueWait& w) noexcept {
  switch (w.kind) {
    case QueueWait::Kind::forever:
      return shm::Deadline::forever();
    case QueueWait::Kind::poll:
      return shm::Deadline::poll();
    case QueueWait::Kind::until:
      break;
  }
  return {shm::Deadline::Kind::at, w.deadline};
}

[[noreturn]] void throw_put_closed() { throw QueueClosed("put() on a closed queue"); }

}  // namespace

struct QueueCore::Impl {
  sys::Mapping mapping;
  shm::Ring ring;
  // Per process (reset in every child by the fork hook).
  std::int32_t pid = 0;
  int slot = -1;
  // This process has put an item: it then never concludes that "nobody can put any more".
  std::atomic<bool> has_put{false};
  // Adaptive spin budget of this process's consumers (see Ring::wait_data).
  std::atomic<int> get_spin{64};
  // put() and get() may take Ring's fenceless paths: -1 not asked yet, 0 no, 1 yes (this process
  // is registered for membarrier). Per process: a child registers again on its first put/get.
  std::atomic<int> fenceless{-1};
  bool may_skip_fences() noexcept {
    int f = fenceless.load(std::memory_order_relaxed);
    if (f < 0) {
#if defined(__SANITIZE_THREAD__)
      f = 0;  // TSan cannot see membarrier's ordering: keep the fenced protocol it can check
#else
      f = sys::membarrier_register() ? 1 : 0;
#endif
      fenceless.store(f, std::memory_order_relaxed);
    }
    return f == 1;
  }
  std::size_t hook = 0;

  static void on_fork_child(void* self) noexcept {
    auto* impl = static_cast<Impl*>(self);
    impl->pid = sys::self_pid();
    impl->slot = impl->ring.attach(impl->pid, /*is_child=*/true);
    impl->has_put.store(false, std::memory_order_relaxed);
    impl->fenceless.store(-1, std::memory_order_relaxed);
  }
};

QueueCore::QueueCore(std::size_t maxsize, std::size_t capacity_bytes) : impl_(new Impl) {
  const std::size_t cap = shm::Ring::normalize_capacity(capacity_bytes);
  if (cap == 0) throw std::invalid_argument("queue capacity_bytes larger than 2 GiB");
  const std::size_t bytes = shm::Ring::mapping_bytes(cap);
  impl_->mapping = sys::map_anonymous_shared(bytes, /*prefault=*/cap <= kPrefaultWhole);
  impl_->ring = shm::Ring::create(impl_->mapping.data(), cap, maxsize);
  if (cap > kPrefaultWhole) {
    std::memset(impl_->mapping.bytes() + shm::kHeaderBytes, 0, std::min(cap, kWarmBytes));
  }
  impl_->pid = sys::self_pid();
  impl_->slot = impl_->ring.attach(impl_->pid, /*is_child=*/false);
  impl_->hook = register_fork_child_hook(&Impl::on_fork_child, impl_.get());
}

QueueCore::~QueueCore() {
  unregister_fork_child_hook(impl_->hook);
  // A process that dropped its last handle can no longer put: consumers waiting on it should not.
  impl_->ring.detach(impl_->slot, impl_->pid);
}

bool QueueCore::put(std::size_t size, const void* item, EncodeFn encode, QueueWait wait) {
  shm::Ring& ring = impl_->ring;
  if (size > ring.max_payload()) {
    throw std::invalid_argument("queue item larger than half of the queue's capacity_bytes");
  }
  const shm::Deadline deadline = to_deadline(wait);
  shm::Ring::PutTxn t;
  for (;;) {
    ring.put_lock(t, impl_->pid);
    if (ring.closed()) {
      ring.put_unlock();
      throw_put_closed();
    }
    if (std::byte* out = ring.reserve(t, size)) {
      MPP_FAILPOINT("queue.put.after_claim");  // slot claimed, nothing written or published
      try {
        encode(item, out);
        MPP_FAILPOINT("queue.put.item_written");  // whole item in the ring, not published
      } catch (...) {
        ring.put_unlock();  // the reservation is abandoned: nothing was published
        throw;
      }
      ring.put_publish_unlock(t, impl_->may_skip_fences());
      impl_->has_put.store(true, std::memory_order_relaxed);
      return true;
    }
    ring.put_unlock();
    switch (ring.wait_space(size, deadline)) {
      case shm::WaitStatus::closed:
        throw_put_closed();
      case shm::WaitStatus::timed_out:
        return false;
      default:
        break;
    }
  }
}

namespace {
shm::Ring::PutTxn txn_of(const QueueCore::PutBatch& b) noexcept {
  return {b.tail, b.count, b.start_count, b.self};
}
void store(QueueCore::PutBatch& b, const shm::Ring::PutTxn& t) noexcept {
  b.tail = t.tail;
  b.count = t.count;
  b.start_count = t.start_count;
  b.self = t.self;
}
shm::Ring::GetTxn txn_of(const QueueCore::GetBatch& g) noexcept {
  return {g.head, g.count, g.start_head, g.rec_end};
}
void store(QueueCore::GetBatch& g, const shm::Ring::GetTxn& t) noexcept {
  g.head = t.head;
  g.count = t.count;
  g.start_head = t.start_head;
  g.rec_end = t.rec_end;
}
}  // namespace

QueueCore::Room QueueCore::batch_open(PutBatch& b, std::size_t min_bytes) {
  shm::Ring& ring = impl_->ring;
  if (min_bytes > ring.max_payload()) {
    batch_close(b);
    throw std::invalid_argument("queue item larger than half of the queue's capacity_bytes");
  }
  for (;;) {
    if (!b.locked) {
      shm::Ring::PutTxn t;
      ring.put_lock(t, impl_->pid);
      store(b, t);
      b.locked = true;
      if (ring.closed()) {
        batch_close(b);
        throw_put_closed();
      }
    }
    shm::Ring::PutTxn t = txn_of(b);
    Room room{};
    room.data = ring.open_batch(t, min_bytes, room.bytes, room.max_items);
    store(b, t);
    if (room.data != nullptr) return room;
    batch_close(b);
    if (ring.wait_space(min_bytes, shm::Deadline::forever()) == shm::WaitStatus::closed) {
      throw_put_closed();
    }
  }
}

void QueueCore::batch_commit(PutBatch& b, std::byte* data, std::size_t used,
                             std::size_t items) noexcept {
  shm::Ring::PutTxn t = txn_of(b);
  impl_->ring.commit_batch(t, data, used, items);
  MPP_FAILPOINT("queue.put_many.before_publish");
  // Publish every record at once (they are at most kMaxBatchBytes): consumers start early.
  impl_->ring.put_publish(t);
  store(b, t);
  impl_->has_put.store(true, std::memory_order_relaxed);
}

void QueueCore::batch_close(PutBatch& b) noexcept {
  if (!b.locked) return;
  shm::Ring::PutTxn t = txn_of(b);
  impl_->ring.put_publish_unlock(t);
  store(b, t);
  b.locked = false;
}

bool QueueCore::get_open(GetBatch& g, QueueWait wait) {
  shm::Ring& ring = impl_->ring;
  const shm::Deadline deadline = to_deadline(wait);
  bool orphaned = false;
  for (;;) {
    const bool was_closed = ring.closed();  // see get()
    shm::Ring::GetTxn t;
    ring.get_lock(t, impl_->pid);
    if (ring.has_item(t)) {
      store(g, t);
      g.taken = 0;
      g.locked = true;
      return true;
    }
    ring.get_publish_unlock(t);
    if (was_closed) throw QueueClosed("get() on a closed and empty queue");
    if (orphaned) {
      // Only a get() that would otherwise wait forever is told: try_get/get(timeout) behave like
      // Python's (nothing came, nullopt), even when nothing ever can.
      if (wait.kind != QueueWait::Kind::forever) return false;
      throw QueueClosed("get() on an empty queue that every other process using it has left");
    }
    switch (ring.wait_data(deadline, impl_->pid, impl_->has_put.load(std::memory_order_relaxed),
                           &impl_->get_spin)) {
      case shm::WaitStatus::timed_out:
        return false;
      case shm::WaitStatus::orphaned:
        orphaned = true;
        break;
      default:
        break;
    }
  }
}

bool QueueCore::get_next(GetBatch& g, std::span<const std::byte>& bytes) noexcept {
  // Publish only items the caller has finished with (all returned before this call): the one we
  // return now must stay unreused until it is decoded.
  if (g.taken != 0 && g.taken % kPublishEvery == 0) impl_->ring.get_publish(g);
  auto item = impl_->ring.next(g);
  if (!item) return false;
  ++g.taken;
  bytes = *item;
  return true;
}

void QueueCore::get_close(GetBatch& g) noexcept {
  if (!g.locked) return;
  shm::Ring::GetTxn t = txn_of(g);
  impl_->ring.get_publish_unlock(t);
  store(g, t);
  g.locked = false;
}

std::size_t QueueCore::get(std::size_t max, void* sink, DecodeFn decode, QueueWait wait) {
  shm::Ring& ring = impl_->ring;
  const shm::Deadline deadline = to_deadline(wait);
  bool orphaned = false;
  shm::Ring::GetTxn t;
  for (;;) {
    // Read before looking at the items: close() publishes after every last put, so "closed" seen
    // first and "empty" seen second means empty for good.
    const bool was_closed = ring.closed();
    ring.get_lock(t, impl_->pid);
    std::size_t n = 0;
    MPP_FAILPOINT("queue.get.holding_lock");
    try {
      while (n < max) {
        auto bytes = ring.next(t);
        if (!bytes) break;
        ++n;
        // A failed decode still consumes its item (it would fail again for the next consumer).
        decode(sink, *bytes);
        MPP_FAILPOINT("queue.get.after_decode");  // item copied out, head not yet moved
        if (n % kPublishEvery == 0) ring.get_publish(t);
      }
    } catch (...) {
      ring.get_publish_unlock(t);
      throw;
    }
    ring.get_publish_unlock(t, impl_->may_skip_fences());
    if (n != 0) return n;
    if (was_closed) throw QueueClosed("get() on a closed and empty queue");
    if (orphaned) {
      if (wait.kind != QueueWait::Kind::forever) return 0;  // as in get_open
      throw QueueClosed("get() on an empty queue that every other process using it has left");
    }
    switch (ring.wait_data(deadline, impl_->pid, impl_->has_put.load(std::memory_order_relaxed),
                           &impl_->get_spin)) {
      case shm::WaitStatus::timed_out:
        return 0;
      case shm::WaitStatus::orphaned:
        orphaned = true;  // one more look under the lock, then QueueClosed
        break;
      default:
        break;
    }
  }
}

void QueueCore::close() noexcept { impl_->ring.close(impl_->pid); }
bool QueueCore::closed() const noexcept { return impl_->ring.closed(); }
bool QueueCore::empty() const noexcept { return impl_->ring.size() == 0; }
bool QueueCore::full() const noexcept { return impl_->ring.full(); }
std::size_t QueueCore::size() const noexcept { return impl_->ring.size(); }
std::size_t QueueCore::max_item_bytes() const noexcept { return impl_->ring.max_payload(); }
std::size_t QueueCore::capacity_bytes() const noexcept { return impl_->ring.capacity(); }

void QueueCore::task_done() {
  if (!impl_->ring.task_done()) {
    throw std::logic_error("task_done() called more times than items were put");
  }
}
bool QueueCore::join(QueueWait wait) { return impl_->ring.join(to_deadline(wait)); }
std::uint64_t QueueCore::unfinished() const noexcept { return impl_->ring.unfinished(); }

}  // namespace mpp::detail
