#include "shm/ring.hpp"

#include <algorithm>
#include <bit>
#include <new>

#include "sys/futex.hpp"
#include "sys/proc.hpp"

namespace mpp::shm {

namespace {

constexpr std::uint64_t kMagic = 0x6d70702d72696e67ull;  // "mpp-ring"
// Sleeps are cut into slices this long: the bound on a lost wake-up, and how often a consumer
// checks whether anyone who could put is still alive.
constexpr std::chrono::milliseconds kWaitSlice{100};
// Polls before sleeping (~1 us). Measured here: a futex round trip between two processes costs
// ~5-8 us, and longer spins made ping-pong slower, not faster: the two vCPUs are shared with
// other work (and may be SMT siblings), so a spinner mostly steals time from the process it waits
// for.
constexpr int kSpin = 64;
constexpr int kMinSpin = 4;
constexpr int kMaxSpin = 1024;
constexpr int kPollGap = 1;

using Clock = std::chrono::steady_clock;

std::atomic<std::uint64_t> g_late_data_wakeups{0};
std::atomic<std::uint64_t> g_late_space_wakeups{0};

}  // namespace

std::size_t Ring::normalize_capacity(std::size_t requested) noexcept {
  if (requested > kMaxCapacity) return 0;
  return std::bit_ceil(std::max(requested, kMinCapacity));
}

Ring Ring::create(void* memory, std::size_t capacity, std::size_t maxsize) noexcept {
  auto* h = new (memory) RingHeader{};
  h->magic = kMagic;
  h->capacity = capacity;
  h->maxsize = maxsize;
  h->recycle_at = kRecycleMin;
  return Ring(h, static_cast<std::byte*>(memory) + kHeaderBytes, capacity, h);
}

Ring Ring::lane(std::byte* lanes, std::size_t index, std::size_t capacity, std::size_t hold,
                const Ring& main) noexcept {
  // Zero-filled memory is an empty ring whose recycle_at (0) lets the first recycling check run
  // as soon as the producer passes kRecycleMin, and whose budget_until (0) makes the first put
  // ask for the budget; magic, capacity and maxsize (0) are never read from a lane's header.
  std::byte* memory = lanes + index * mapping_bytes(capacity);
  Ring r(reinterpret_cast<RingHeader*>(memory), memory + kHeaderBytes, capacity, main.h_);
  r.hold_ = std::max<std::size_t>(1, std::min(hold, capacity));
  r.early_from_ = r.hold_;
  r.lanes_ = lanes;
  return r;
}

std::uint64_t Ring::held(const RingHeader& h) noexcept {
  // Head first: the published tail read after it can only be further on.
  const std::uint64_t head = h.cons.pos.load(std::memory_order_acquire);
  return held_between(h, head, h.prod.pos.load(std::memory_order_acquire));
}

std::uint64_t Ring::held(const RingHeader& h, std::uint64_t tail) noexcept {
  return held_between(h, h.cons.pos.load(std::memory_order_acquire), tail);
}

std::uint64_t Ring::held_between(const RingHeader& h, std::uint64_t head,
                                 std::uint64_t tail) noexcept {
  std::uint64_t used = tail - head;
  // Racy reads are fine: this feeds a budget, not a safety check.
  const std::uint64_t at = h.early_skip_at.load(std::memory_order_relaxed);
  const std::uint64_t len = h.early_skip_len.load(std::memory_order_relaxed);
  if (at >= head && at < tail && len <= used) used -= len;
  return used;
}

std::uint64_t Ring::lanes_held() const noexcept {
  const std::size_t used =
      std::min<std::size_t>(n_->lanes_used.load(std::memory_order_acquire), kMaxLanes);
  const std::size_t stride = mapping_bytes(cap_);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < used; ++i) {
    total += held(*reinterpret_cast<const RingHeader*>(lanes_ + i * stride));
  }
  return total;
}

bool Ring::grant(std::uint64_t tail, std::uint64_t rec) noexcept {
  RingHeader& h = *h_;
  const std::uint64_t mine = held(h, tail);
  if (mine + rec <= hold_) {
    // Within what a lane may always hold: nothing to ask until it may hold more.
    h.budget_until = tail + (hold_ - mine);
    return true;
  }
  // lanes_held() counts this lane up to its published tail, which may be behind `tail` by the
  // records of a batch not yet published: add the difference.
  const std::uint64_t published = held(h);
  const std::uint64_t unpublished = mine > published ? mine - published : 0;
  if (lanes_held() + unpublished + rec > cap_) return false;
  h.budget_until = tail + rec + kBudgetStep;
  return true;
}

std::size_t Ring::early_wrap(std::uint64_t tail, std::size_t off, std::size_t rec) noexcept {
  RingHeader& h = *h_;
  const std::uint64_t head = h.cons.pos.load(std::memory_order_acquire);
  h.head_cache = head;
  // The next lap's first `rec` bytes must be free: consumers are past this lap's start + rec.
  if (head < tail - off + rec) {
    h.wrap_check_at = tail + kBudgetStep;
    return 0;
  }
  h.early_skip_at.store(tail, std::memory_order_relaxed);
  h.early_skip_len.store(cap_ - off, std::memory_order_relaxed);
  return cap_ - off;
}

std::uint64_t Ring::wake_free(std::uint64_t need) const noexcept {
  return std::max<std::uint64_t>(cap_ / 4, need);
}

std::byte* Ring::open_batch(PutTxn& t, std::size_t min_payload, std::size_t& room,
                            std::size_t& max_items) noexcept {
  RingHeader& h = *h_;
  max_items = ~std::size_t{0};
  if (h.maxsize != 0) {
    if (t.count - h.got_cache >= h.maxsize) {
      h.got_cache = h.cons.count.load(std::memory_order_acquire);
      if (t.count - h.got_cache >= h.maxsize) return nullptr;
    }
    max_items = h.maxsize - static_cast<std::size_t>(t.count - h.got_cache);
  }
  const std::size_t min_rec = record_bytes(min_payload);
  std::size_t off = t.tail & mask_;
  if (skip_before(off, min_rec) == 0 && off >= kRecycleMin && t.tail >= h.recycle_at) {
    h.recycle_at = t.tail + kRecycleMin / 4;
    if (h.cons.pos.load(std::memory_order_acquire) == t.tail) recycle(t, off);
  }
  std::size_t skip = skip_before(off, min_rec);
  if (skip == 0 && off + min_rec > early_from_ && min_rec <= early_from_ / 4 &&
      t.tail >= h.wrap_check_at) {
    skip = early_wrap(t.tail, off, min_rec);
  }
  if (t.tail + skip + min_rec - h.head_cache > cap_) {
    h.head_cache = h.cons.pos.load(std::memory_order_acquire);
    if (t.tail + skip + min_rec - h.head_cache > cap_) return nullptr;
  }
  if (hold_ != 0 && t.tail + skip + min_rec > h.budget_until && !grant(t.tail + skip, min_rec)) {
    return nullptr;
  }
  if (skip != 0) {
    const RecordHeader sk = RecordHeader::make(kSkip, skip);
    std::memcpy(data_ + off, &sk, sizeof sk);
    t.tail += skip;
    off = 0;
  }
  const std::uint64_t free_bytes = cap_ - (t.tail - h.head_cache);
  std::uint64_t limit = std::min<std::uint64_t>(free_bytes, cap_ - off);
  // A lane writes no further than its budget allows (grant() above made that at least min_rec).
  if (hold_ != 0) limit = std::min<std::uint64_t>(limit, h.budget_until - t.tail);
  std::size_t bytes = static_cast<std::size_t>(limit) - sizeof(RecordHeader);
  bytes = std::min({bytes, std::max(kMaxBatchBytes, min_payload), max_payload()});
  room = bytes & ~(kBatchItemAlign - 1);
  return data_ + off + sizeof(RecordHeader);
}

void Ring::recycle(PutTxn& t, std::size_t& off) noexcept {
  RingHeader& h = *h_;
  // try_lock: a consumer inside get() is about to find data or leave; never wait for it here
  // (and never block on the consumer lock while holding the producer lock).
  if (!h.cons_lock.try_lock(t.self)) return;
  if (h.cons.pos.load(std::memory_order_relaxed) == t.tail) {
    const std::size_t skip = cap_ - off;
    const RecordHeader sk = RecordHeader::make(kSkip, skip);
    std::memcpy(data_ + off, &sk, sizeof sk);
    // Producer side first: if we die between the two publishes, the ring holds one lone skip
    // record, which consumers pass like any other.
    t.tail += skip;
    h.prod.publish(t.tail, t.count);
    h.cons.publish(t.tail, h.cons.count.load(std::memory_order_relaxed), 0);
    h.tail_cache = t.tail;
    h.head_cache = t.tail;
    h.recycle_at = t.tail + kRecycleMin;
    off = 0;
  }
  h.cons_lock.unlock();
}

bool Ring::may_fit(std::size_t rec) const noexcept { return room_for(rec) == Room::fits; }

Ring::Room Ring::room_for(std::size_t rec) const noexcept {
  const RingHeader& h = *h_;
  const auto tail = h.prod.pos.load(std::memory_order_acquire);
  const auto head = h.cons.pos.load(std::memory_order_acquire);
  if (h.maxsize != 0) {
    const auto put = h.prod.count.load(std::memory_order_acquire);
    const auto got = h.cons.count.load(std::memory_order_acquire);
    if (put - got >= h.maxsize) return Room::full;
  }
  const std::uint64_t need = skip_before(tail & mask_, rec) + rec;
  if (tail + need - head > cap_) return Room::full;
  if (hold_ == 0 || tail + need - head <= hold_ || lanes_held() + need <= cap_) return Room::fits;
  return Room::over_budget;
}

void Ring::wake_data(std::uint64_t items, WakerFence f) noexcept {
  if (!n_->data_wake.waiting(f)) return;
  // One wake-up per sleep: sleepers re-arm before each sleep, so a put() after the wake-up (while
  // the woken consumer is still being scheduled) does not pay for another futex_wake.
  if (n_->data_armed.exchange(0, std::memory_order_acq_rel) == 0) return;
  // One item feeds one consumer; a batch may feed many.
  n_->data_wake.bump_and_wake(items >= WaitWord::kAll ? WaitWord::kAll : static_cast<int>(items));
}

void Ring::wake_space(WakerFence f) noexcept {
  if (!h_->space_wake.waiting(f)) return;
  // Hysteresis: wake sleeping producers only once a good share of the ring (or of maxsize) is
  // free. Waking them for every freed item would cost a futex_wake per get() while they sleep
  // and a sleep/wake round trip per put(); this way they come back to a batch of free room.
  // (A producer whose item fits earlier sleeps at most one slice longer.)
  const auto tail = h_->prod.pos.load(std::memory_order_acquire);
  const auto head = h_->cons.pos.load(std::memory_order_acquire);
  const std::uint64_t free_bytes = cap_ - (tail - head);
  const std::uint64_t need = wake_free(h_->space_need.load(std::memory_order_relaxed));
  if (free_bytes < need) return;
  if (h_->maxsize != 0) {
    const std::uint64_t low = h_->maxsize - std::max<std::uint64_t>(1, h_->maxsize / 4);
    if (size() > low) return;
  }
  // One wake-up per sleep, as for data: sleepers re-arm (set space_need) before each sleep.
  if (h_->space_need.exchange(0, std::memory_order_acq_rel) == 0) return;
  // All: freed space may be enough for several waiting producers' (different-sized) items, and
  // they re-check under their lock anyway.
  h_->space_wake.bump_and_wake();
}

WaitStatus Ring::wait_space(std::size_t payload, const Deadline& d) noexcept {
  const std::size_t rec = record_bytes(payload);
  auto ready = [&] { return closed() || may_fit(rec); };
  for (int i = 0; i < kSpin; ++i) {
    if (ready()) return closed() ? WaitStatus::closed : WaitStatus::ready;
    if (d.is_poll()) return WaitStatus::timed_out;
    for (int k = 0; k < kPollGap; ++k) sys::cpu_relax();
  }
  for (;;) {
    auto slice = d.next_slice(kWaitSlice);
    if (!slice) return WaitStatus::timed_out;
    // What consumers must free before waking us: room for the record, or, for a lane held back
    // by the lane budget, most of its own bytes (a lane may always hold hold_ bytes; other lanes
    // draining only shortens the wait by up to a slice).
    const std::uint64_t want = room_for(rec) == Room::over_budget ? cap_ - hold_ + hold_ / 4 : rec;
    auto need = h_->space_need.load(std::memory_order_relaxed);
    while (need < want && !h_->space_need.compare_exchange_weak(need, want)) {
    }
    const bool expired = h_->space_wake.sleep_unless(ready, *slice,
                                                     /*wakers_may_be_fenceless=*/true);
    if (closed()) return WaitStatus::closed;
    if (may_fit(rec)) {
      // wake_space's threshold (without maxsize, whose threshold is counted in items).
      const std::uint64_t free_bytes = cap_ - (h_->prod.pos.load(std::memory_order_acquire) -
                                               h_->cons.pos.load(std::memory_order_acquire));
      if (expired && h_->maxsize == 0 && free_bytes >= wake_free(want)) {
        g_late_space_wakeups.fetch_add(1, std::memory_order_relaxed);
      }
      return WaitStatus::ready;
    }
  }
}

std::uint64_t Ring::late_data_wakeups() noexcept {
  return g_late_data_wakeups.load(std::memory_order_relaxed);
}
std::uint64_t Ring::late_space_wakeups() noexcept {
  return g_late_space_wakeups.load(std::memory_order_relaxed);
}

WaitStatus Ring::wait_data(const Deadline& d, std::int32_t self, bool self_may_put,
                           std::atomic<int>* spin, bool (*any_data)(const void*),
                           const void* ctx) noexcept {
  auto has_data = [&] { return any_data != nullptr ? any_data(ctx) : this->has_data(); };
  // Sealed, not just closing: until then a put that passed its check may still publish.
  auto closed = [&] { return sealed(); };
  auto ready = [&] { return closed() || has_data(); };
  // Adaptive spin (per process and queue, like glibc's adaptive mutexes): a wait that was
  // answered while spinning doubles the next budget, one that had to sleep halves it. Streaming
  // keeps spinning (no sleep/wake per item); ping-pong, where the other side is asleep and
  // cannot answer within a spin, stops wasting microseconds per hop.
  const int budget = spin != nullptr ? spin->load(std::memory_order_relaxed) : kSpin;
  for (int i = 0; i < budget; ++i) {
    if (has_data()) {
      if (spin != nullptr && budget < kMaxSpin) spin->store(budget * 2, std::memory_order_relaxed);
      return WaitStatus::ready;
    }
    if (closed()) return WaitStatus::closed;
    if (d.is_poll()) return WaitStatus::timed_out;
    for (int k = 0; k < kPollGap; ++k) sys::cpu_relax();
  }
  if (spin != nullptr && budget > kMinSpin) spin->store(budget / 2, std::memory_order_relaxed);
  for (;;) {
    auto slice = d.next_slice(kWaitSlice);
    if (!slice) return WaitStatus::timed_out;
    n_->data_armed.store(1, std::memory_order_relaxed);
    const bool expired = n_->data_wake.sleep_unless(ready, *slice,
                                                    /*wakers_may_be_fenceless=*/true);
    if (has_data()) {
      if (expired) g_late_data_wakeups.fetch_add(1, std::memory_order_relaxed);
      return WaitStatus::ready;
    }
    if (closed()) return WaitStatus::closed;
    // Liveness first, then emptiness: an item put just before its producer died is still seen.
    if (expired && !self_may_put && others_all_dead(self) && !has_data()) {
      return WaitStatus::orphaned;
    }
  }
}

void Ring::close(std::int32_t self) noexcept {
  if (h_->prod_lock.lock(self) == Acquire::owner_died) h_->prod.recover();
  h_->closed.store(kSealed, std::memory_order_release);
  h_->prod_lock.unlock();
  h_->data_wake.bump_and_wake();
  h_->space_wake.bump_and_wake();
  h_->join_wake.bump_and_wake();
}

bool Ring::full() const noexcept {
  // Whether a put of the smallest item would fail now (maxsize, room, or a lane's budget).
  return room_for(record_bytes(1)) != Room::fits;
}

int Ring::attach(ProcessTag self, bool is_child) noexcept {
  if (is_child) h_->shared.store(1, std::memory_order_relaxed);
  const std::uint64_t me = self.packed();
  for (std::size_t i = 0; i < kMaxAttached; ++i) {
    std::uint64_t expected = 0;
    if (h_->attached[i].load(std::memory_order_relaxed) == 0 &&
        h_->attached[i].compare_exchange_strong(expected, me, std::memory_order_acq_rel)) {
      return static_cast<int>(i);
    }
  }
  // Full: processes that died without detaching (killed, or left with _exit) still hold slots.
  // Reuse the first dead one's (a probe per slot, only when the table is full).
  for (std::size_t i = 0; i < kMaxAttached; ++i) {
    std::uint64_t entry = h_->attached[i].load(std::memory_order_acquire);
    const ProcessTag other = ProcessTag::unpack(entry);
    if (entry != 0 && !sys::process_alive(other.pid, other.start) &&
        h_->attached[i].compare_exchange_strong(entry, me, std::memory_order_acq_rel)) {
      return static_cast<int>(i);
    }
  }
  // A table full of live processes makes "every producer died" undecidable; from now on
  // consumers assume someone may still put (the conservative answer: wait rather than fail).
  h_->table_overflow.store(1, std::memory_order_release);
  return -1;
}

void Ring::detach(int slot, ProcessTag self) noexcept {
  if (slot < 0 || static_cast<std::size_t>(slot) >= kMaxAttached) return;
  std::uint64_t expected = self.packed();
  h_->attached[slot].compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
}

bool Ring::others_all_dead(std::int32_t self) noexcept {
  // Only once the ring was shared with a child: a single process with several threads must not
  // be told that nobody can put.
  if (h_->shared.load(std::memory_order_acquire) == 0) return false;
  if (h_->table_overflow.load(std::memory_order_acquire) != 0) return false;
  for (auto& slot : h_->attached) {
    std::uint64_t entry = slot.load(std::memory_order_acquire);
    const ProcessTag other = ProcessTag::unpack(entry);
    if (entry == 0 || other.pid == self) continue;
    if (sys::process_alive(other.pid, other.start)) return false;
    // Dead: free the slot for later children (CAS: the slot may have been reused meanwhile).
    slot.compare_exchange_strong(entry, 0, std::memory_order_acq_rel);
  }
  return true;
}

bool Ring::task_done(std::uint64_t put_total) noexcept {
  // One snapshot of put_total is enough: every item the caller got was counted before it, so a
  // legitimate call always has done + 1 <= put_total, and "the last one" means done + 1 equals
  // the current total, which the snapshot then equals too (totals only grow).
  auto done = h_->done_count.load(std::memory_order_relaxed);
  for (;;) {
    if (done >= put_total) return false;
    if (h_->done_count.compare_exchange_weak(done, done + 1, std::memory_order_acq_rel)) break;
  }
  if (done + 1 == put_total) {
    h_->join_wake.notify();
  }
  return true;
}

bool Ring::join(const Deadline& d, std::uint64_t (*unfinished_fn)(const void*),
                const void* ctx) noexcept {
  auto ready = [&] { return (unfinished_fn != nullptr ? unfinished_fn(ctx) : unfinished()) == 0; };
  for (;;) {
    if (ready()) return true;
    auto slice = d.next_slice(kWaitSlice);
    if (!slice) return false;
    h_->join_wake.sleep_unless(ready, *slice);
  }
}

}  // namespace mpp::shm
