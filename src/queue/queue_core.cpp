#include "mpp/detail/queue_core.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <type_traits>

#include "mpp/errors.hpp"
#include "runtime/fork_hooks.hpp"
#include "shm/ring.hpp"
#include "shm/ring_set.hpp"
#include "sys/failpoint.hpp"
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
  return shm::Deadline::at(w.deadline);
}

[[noreturn]] void throw_put_closed() { throw QueueClosed("put() on a closed queue"); }

}  // namespace

struct QueueCore::Impl {
  sys::Mapping mapping;
  sys::Mapping lanes_mapping;  // address space only (see map_anonymous_shared_sparse)
  shm::RingSet rings;
  // Per process (reset in every child by the fork hook).
  std::int32_t pid = 0;
  std::uint32_t start = 0;   // sys::self_start_time()
  std::int32_t lock_id = 0;  // shm::RingLock::id_for(pid, start)
  int slot = -1;
  [[nodiscard]] shm::ProcessTag tag() const noexcept { return {pid, start}; }
  // Which ring this process puts to (see RingSet::producer).
  std::atomic<int> producer{shm::RingSet::kUnchosen};
  // Consumers of this process: the ring to look at first (where the oldest item was last seen;
  // races between threads only cost a move).
  std::atomic<std::size_t> cur{0};
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
    impl->start = sys::self_start_time();
    impl->lock_id = shm::RingLock::id_for(impl->pid, impl->start);
    impl->slot = impl->rings.main().attach(impl->tag(), /*is_child=*/true);
    // The parent's lane stays the parent's: a child claims its own on its first put.
    impl->producer.store(shm::RingSet::kUnchosen, std::memory_order_relaxed);
    impl->has_put.store(false, std::memory_order_relaxed);
    impl->fenceless.store(-1, std::memory_order_relaxed);
  }
  // A child about to _exit still holding the queue: free its attached slot and its lane (whose
  // items stay queued) now, instead of leaving them to a liveness probe later. Unlike the
  // destructor it keeps its lane choice: another thread may still put until _exit, and must not
  // move to a different lane in those last moments (its items would overtake each other).
  static void on_child_exit(void* self) noexcept {
    auto* impl = static_cast<Impl*>(self);
    // Only in a child whose fork hook attached it (never on the parent's behalf).
    if (impl->pid != sys::self_pid()) return;
    impl->rings.disown(impl->producer.load(std::memory_order_acquire), impl->tag());
    impl->rings.main().detach(impl->slot, impl->tag());
    impl->slot = -1;
  }
};

QueueCore::QueueCore(std::size_t maxsize, std::size_t capacity_bytes) : impl_(new Impl) {
  const std::size_t cap = shm::Ring::normalize_capacity(capacity_bytes);
  if (cap == 0) throw std::invalid_argument("queue capacity_bytes larger than 2 GiB");
  const std::size_t bytes = shm::Ring::mapping_bytes(cap);
  impl_->mapping = sys::map_anonymous_shared(bytes, /*prefault=*/cap <= kPrefaultWhole);
  const shm::Ring main = shm::Ring::create(impl_->mapping.data(), cap, maxsize);
  if (cap > kPrefaultWhole) {
    std::memset(impl_->mapping.bytes() + shm::kHeaderBytes, 0, std::min(cap, kWarmBytes));
  }
  // Producer lanes: not for maxsize queues (their count must be exact), and a queue without
  // them (the reservation refused, e.g. under strict overcommit) still works, on one ring.
  std::size_t lanes = maxsize == 0 ? shm::RingSet::lanes_for(cap, sys::address_space_limit()) : 0;
  if (lanes != 0) {
    try {
      impl_->lanes_mapping = sys::map_anonymous_shared_sparse(lanes * bytes);
    } catch (const std::system_error&) {
      lanes = 0;
    }
  }
  impl_->rings = shm::RingSet(main, impl_->lanes_mapping.bytes(), lanes);
  impl_->pid = sys::self_pid();
  impl_->start = sys::self_start_time();
  impl_->lock_id = shm::RingLock::id_for(impl_->pid, impl_->start);
  impl_->slot = impl_->rings.main().attach(impl_->tag(), /*is_child=*/false);
  impl_->hook = register_fork_child_hook(&Impl::on_fork_child, impl_.get(), &Impl::on_child_exit);
}

QueueCore::~QueueCore() {
  unregister_fork_child_hook(impl_->hook);
  // A process that dropped its last handle can no longer put: consumers waiting on it should not,
  // and its lane (whose items stay queued) is free for another process.
  impl_->rings.release(impl_->producer, impl_->tag());
  impl_->rings.main().detach(impl_->slot, impl_->tag());
}

bool QueueCore::put(std::size_t size, const void* item, EncodeFn encode, QueueWait wait) {
  shm::Ring& ring = impl_->rings.producer(impl_->producer, impl_->tag());
  if (size > ring.max_payload()) {
    throw std::invalid_argument("queue item larger than half of the queue's capacity_bytes");
  }
  const shm::Deadline deadline = to_deadline(wait);
  shm::Ring::PutTxn t;
  for (;;) {
    ring.put_lock(t, impl_->lock_id);
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
// The batch record format has two readers of one layout: QueueCore::BatchWriter (public side,
// which cannot include src/shm) writes what shm::Ring reads.
constexpr bool same_batch_format() noexcept {
  for (std::size_t n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 100, 65535}) {
    if (QueueCore::batch_item_bytes(n) != shm::Ring::batch_item_bytes(n)) return false;
  }
  return true;
}
static_assert(same_batch_format() && shm::kBatchItemAlign == 4,
              "QueueCore::BatchWriter writes the batch records shm::Ring reads");
static_assert(sizeof(shm::RingSet::Gate) <= sizeof(QueueCore::GetBatch::gate) &&
                  alignof(shm::RingSet::Gate) <= 8 &&
                  std::is_trivially_copyable_v<shm::RingSet::Gate>,
              "GetBatch::gate holds a RingSet::Gate");
shm::RingSet::Gate& gate_of(QueueCore::GetBatch& g) noexcept {
  return *std::launder(reinterpret_cast<shm::RingSet::Gate*>(g.gate));
}
void reset_gate(QueueCore::GetBatch& g) noexcept { new (g.gate) shm::RingSet::Gate{}; }
// Moves a consumer follows to a ring with an older item before it looks elsewhere (consumers
// of other processes can keep moving heads; each move is towards an older item).
constexpr std::size_t kMaxHops = 8;
constexpr std::size_t kNoRing = ~std::size_t{0};
void store(QueueCore::GetBatch& g, const shm::Ring::GetTxn& t) noexcept {
  g.head = t.head;
  g.count = t.count;
  g.start_head = t.start_head;
  g.rec_end = t.rec_end;
}
}  // namespace

QueueCore::Room QueueCore::batch_open(PutBatch& b, std::size_t min_bytes) {
  shm::Ring& ring = impl_->rings.producer(impl_->producer, impl_->tag());
  if (min_bytes > ring.max_payload()) {
    batch_close(b);
    throw std::invalid_argument("queue item larger than half of the queue's capacity_bytes");
  }
  for (;;) {
    if (!b.locked) {
      shm::Ring::PutTxn t;
      ring.put_lock(t, impl_->lock_id);
      store(b, t);
      b.locked = true;
      b.ring = &ring;
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
  auto& ring = *static_cast<shm::Ring*>(b.ring);
  ring.commit_batch(t, data, used, items);
  MPP_FAILPOINT("queue.put_many.before_publish");
  // Publish every record at once (they are at most kMaxBatchBytes): consumers start early.
  ring.put_publish(t);
  store(b, t);
  impl_->has_put.store(true, std::memory_order_relaxed);
}

void QueueCore::batch_close(PutBatch& b) noexcept {
  if (!b.locked) return;
  shm::Ring::PutTxn t = txn_of(b);
  static_cast<shm::Ring*>(b.ring)->put_publish_unlock(t);
  store(b, t);
  b.locked = false;
}

namespace {
// The ring after `i` among `n`.
std::size_t next_ring(std::size_t i, std::size_t n) noexcept { return i + 1 >= n ? 0 : i + 1; }
}  // namespace

bool QueueCore::get_open(GetBatch& g, QueueWait wait) {
  shm::RingSet& rs = impl_->rings;
  const shm::Deadline deadline = to_deadline(wait);
  bool orphaned = false;
  for (;;) {
    const bool was_closed = rs.sealed();  // see get()
    const std::size_t n = rs.rings();
    std::size_t i = impl_->cur.load(std::memory_order_relaxed);
    if (i >= n) i = 0;
    std::size_t hops = 0;
    for (std::size_t v = 0; v < n; ++v, i = next_ring(i, n)) {
      shm::Ring& ring = rs.ring(i);
      if (v != 0 && !ring.has_data()) continue;
      shm::Ring::GetTxn t;
      ring.get_lock(t, impl_->lock_id);
      shm::RingSet::Gate gate;
      const auto verdict = rs.gate(gate, i, t, impl_->lock_id);
      if (verdict == shm::RingSet::Verdict::take) {
        store(g, t);
        g.taken = 0;
        g.ring = i;
        g.ring_ptr = &ring;
        g.visited = v + 1;
        g.locked = true;
        g.hops = hops;
        new (g.gate) shm::RingSet::Gate(gate);
        return true;
      }
      rs.leave(gate, i, t);
      if (verdict == shm::RingSet::Verdict::elsewhere && hops++ < kMaxHops) {
        // Look at the ring with the older item next (the loop's step moves to gate.older).
        i = gate.older == 0 ? n - 1 : gate.older - 1;
        --v;
      }
    }
    if (was_closed) throw QueueClosed("get() on a closed and empty queue");
    if (orphaned) {
      // Only a get() that would otherwise wait forever is told: try_get/get(timeout) behave like
      // Python's (nothing came, nullopt), even when nothing ever can.
      if (wait.kind != QueueWait::Kind::forever) return false;
      throw QueueClosed("get() on an empty queue that every other process using it has left");
    }
    switch (rs.wait_data(deadline, impl_->pid, impl_->has_put.load(std::memory_order_relaxed),
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
  auto* current = static_cast<shm::Ring*>(g.ring_ptr);
  if (g.taken != 0 && g.taken % kPublishEvery == 0) current->get_publish(g);
  shm::RingSet& rs = impl_->rings;
  for (;;) {
    shm::RingSet::Gate& gate = gate_of(g);
    auto verdict = shm::RingSet::Verdict::take;
    if (gate.ordered || !gate.checked || g.head >= gate.seen_end) {
      verdict = rs.gate(gate, g.ring, g, impl_->lock_id);
    }
    if (verdict == shm::RingSet::Verdict::take) {
      if (auto item = current->next(g)) {
        ++g.taken;
        bytes = *item;
        return true;
      }
      verdict = shm::RingSet::Verdict::empty;
    }
    // Leave this ring: for the one with an older item, or (run dry) for the next one with items,
    // once around at most.
    rs.leave(gate, g.ring, g);
    g.locked = false;
    const std::size_t n = rs.rings();
    std::size_t to = kNoRing;
    if (verdict == shm::RingSet::Verdict::elsewhere && g.hops++ < kMaxHops) {
      to = gate.older;
    } else {
      while (g.visited < n) {
        ++g.visited;
        g.ring = next_ring(g.ring, n);
        if (rs.ring(g.ring).has_data()) {
          to = g.ring;
          break;
        }
      }
      if (to == kNoRing) return false;
    }
    shm::Ring& ring = rs.ring(to);
    shm::Ring::GetTxn t;
    ring.get_lock(t, impl_->lock_id);
    store(g, t);
    g.taken = 0;
    g.ring = to;
    g.ring_ptr = current = &ring;
    g.locked = true;
    reset_gate(g);
  }
}

void QueueCore::get_close(GetBatch& g) noexcept {
  if (!g.locked) return;
  shm::Ring::GetTxn t = txn_of(g);
  impl_->rings.leave(gate_of(g), g.ring, t);
  store(g, t);
  g.locked = false;
  // The next batch starts where this one stopped (at the oldest item, in an ordered queue).
  impl_->cur.store(g.ring, std::memory_order_relaxed);
}

namespace {
// Up to `max` items of ring `i` into `sink`, under its consumer lock. In an ordered queue it stops
// where another ring may hold an older item: `older` receives that ring (kNoRing otherwise).
std::size_t take(shm::RingSet& rs, std::size_t i, std::int32_t self, bool fenceless,
                 std::size_t max, void* sink, QueueCore::DecodeFn decode, std::size_t& older) {
  shm::Ring& ring = rs.ring(i);
  shm::Ring::GetTxn t;
  ring.get_lock(t, self);
  shm::RingSet::Gate gate;
  std::size_t n = 0;
  older = kNoRing;
  MPP_FAILPOINT("queue.get.holding_lock");
  try {
    while (n < max) {
      // Unordered queues ask the gate only when the items known to be published run out.
      if (gate.ordered || !gate.checked || t.head >= gate.seen_end) {
        const auto verdict = rs.gate(gate, i, t, self);
        if (verdict != shm::RingSet::Verdict::take) {
          if (verdict == shm::RingSet::Verdict::elsewhere) older = gate.older;
          break;
        }
      }
      auto bytes = ring.next(t);
      if (!bytes) break;
      ++n;
      // A failed decode still consumes its item (it would fail again for the next consumer).
      decode(sink, *bytes);
      MPP_FAILPOINT("queue.get.after_decode");  // item copied out, head not yet moved
      if (n % kPublishEvery == 0) ring.get_publish(t);
    }
  } catch (...) {
    rs.leave(gate, i, t);
    throw;
  }
  rs.leave(gate, i, t, fenceless);
  return n;
}
}  // namespace

std::size_t QueueCore::get(std::size_t max, void* sink, DecodeFn decode, QueueWait wait) {
  shm::RingSet& rs = impl_->rings;
  const shm::Deadline deadline = to_deadline(wait);
  bool orphaned = false;
  for (;;) {
    // Read before looking at the items: close() seals after every last put has published, so
    // "sealed" seen first and "empty" seen second means empty for good.
    const bool was_closed = rs.sealed();
    const std::size_t n_rings = rs.rings();
    std::size_t i = impl_->cur.load(std::memory_order_relaxed);
    if (i >= n_rings) i = 0;
    std::size_t n = 0;
    std::size_t hops = 0;
    std::size_t older = kNoRing;
    for (std::size_t v = 0; v < n_rings; ++v) {
      shm::Ring& ring = rs.ring(i);
      // The ring that had items last time is tried under its lock straight away (its cached
      // tail often answers without touching the producer's line); others only if they look
      // non-empty.
      if (v == 0 || ring.has_data()) {
        n += take(rs, i, impl_->lock_id, impl_->may_skip_fences(), max - n, sink, decode, older);
        if (n == max) break;
        if (older != kNoRing && hops++ < kMaxHops) {
          // Another ring may hold an older item (ordered queue): look there next.
          i = older;
          --v;
          continue;
        }
      }
      i = next_ring(i, n_rings);
    }
    if (n != 0) {
      // The next get() starts where the oldest item is (an unordered queue has items in one ring
      // only: the only one that ever had a producer).
      impl_->cur.store(older != kNoRing ? older : i, std::memory_order_relaxed);
      return n;
    }
    if (was_closed) throw QueueClosed("get() on a closed and empty queue");
    if (orphaned) {
      if (wait.kind != QueueWait::Kind::forever) return 0;  // as in get_open
      throw QueueClosed("get() on an empty queue that every other process using it has left");
    }
    switch (rs.wait_data(deadline, impl_->pid, impl_->has_put.load(std::memory_order_relaxed),
                         &impl_->get_spin)) {
      case shm::WaitStatus::timed_out:
        return 0;
      case shm::WaitStatus::orphaned:
        orphaned = true;  // one more look under the locks, then QueueClosed
        break;
      default:
        break;
    }
  }
}
void QueueCore::close() noexcept { impl_->rings.close(impl_->lock_id); }
bool QueueCore::closed() const noexcept { return impl_->rings.closed(); }
bool QueueCore::empty() const noexcept { return impl_->rings.size() == 0; }
bool QueueCore::full() const noexcept {
  // The ring this process puts to (or would, for one that has not put yet: the main ring).
  const int c = impl_->producer.load(std::memory_order_acquire);
  if (c >= 0) return impl_->rings.ring(static_cast<std::size_t>(c) + 1).full();
  return impl_->rings.main().full();
}
std::size_t QueueCore::size() const noexcept { return impl_->rings.size(); }
std::size_t QueueCore::max_item_bytes() const noexcept { return impl_->rings.main().max_payload(); }
std::size_t QueueCore::capacity_bytes() const noexcept { return impl_->rings.main().capacity(); }

void QueueCore::task_done() {
  if (!impl_->rings.task_done()) {
    throw std::logic_error("task_done() called more times than items were put");
  }
}
bool QueueCore::join(QueueWait wait) { return impl_->rings.join(to_deadline(wait)); }
std::uint64_t QueueCore::unfinished() const noexcept { return impl_->rings.unfinished(); }

}  // namespace mpp::detail
