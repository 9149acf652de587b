// The queue's shared-memory ring: variable-size records, many producers, many consumers, any
// processes. Memory + futex only (the one system call beyond futex is the liveness probe of
// sys::process_alive in slow paths), so the same code runs under ThreadSanitizer with threads.
//
// Layout of the mapping: a RingHeader (kHeaderBytes, page-aligned) then `capacity` data bytes
// (a power of two). Positions `tail` (producers) and `head` (consumers) are monotonic 64-bit byte
// counts; a position's offset in the data is pos & (capacity - 1).
//
// Records are 8-byte aligned: an 8-byte RecordHeader {kind | payload size, stamp} then the
// payload; kind is an item, a skip, or a batch (put_many: many items, each with a 4-byte length,
// taken one by one; a consumer inside a batch keeps the record's end in Cursor::rec_end). A
// record never wraps: when it does not fit before the end, the producer writes a `skip` record
// covering the rest and starts again at offset 0. Consequence: a record may take up to half the
// ring (it always fits once the ring drains).
// Recycling: when a producer finds the ring empty past offset kRecycleMin, it moves both
// positions to the start of the next lap (a skip record, published by both sides under both
// locks), so a queue whose consumers keep up stays within its first few cache-warm pages instead
// of faulting in all of a 64 MiB ring (a first touch costs ~15-45 us per page here). An empty
// ring loses no capacity by this.
//
// Lanes (a queue's per-producer rings, src/shm/ring_set.hpp) are Rings too, with three additions:
// they share the main ring's closed flag and consumer wake-up words (n_), a lane budget limits
// what a lane holds beyond kLaneHold bytes while other lanes hold a lot (grant(), checked about
// once per hold or kBudgetStep bytes written), and small records wrap early, past offset hold,
// when consumers are past the start of the current lap (early_wrap()), so that a lane with
// trailing consumers stays within its first pages even when it is never quite empty.
//
// Order: one ring is FIFO in the order its producers took prod_lock. A queue with several rings
// (lanes, src/shm/ring_set.hpp) keeps real-time order across them with stamps: once the queue is
// ordered (the main header's `ordered` flag), a producer takes a ticket from the main header's
// counter for each item or batch record, under its ring's lock (next_stamp), so stamps grow along
// every ring and a put that began after another returned carries the larger one. Consumers
// publish, next to their position, a lower bound of the stamp of the ring's next item (head_lb:
// exact when they saw that item, else the newest ticket read while the ring looked empty), which
// other consumers read without the lock (peek) to decide whether an older item may wait in
// another ring (RingSet::gate). An unordered queue writes stamp 0 and costs one load per put.
//
// Producers serialise on prod_lock, consumers on cons_lock (RingLock: owner pid in the word, dead
// owners taken over). A side publishes its work with one release store of its position after the
// records are complete, so a producer killed mid-copy publishes nothing; its successor gets
// owner_died, repairs the item counter (Cursor::recover) and continues from the published
// position, overwriting the torn bytes. A consumer killed while decoding has not advanced `head`:
// the item stays in the ring for the next consumer (an item leaves the ring only when a get()
// has finished decoding it).
//
// Waiting: nobody sleeps holding a lock. A waiter registers in a waiters count, reads a sequence
// word, re-checks its condition and futex-waits on the sequence word; the other side bumps the
// word and wakes only when the waiters count is non-zero, so the common case costs one fence and
// one load, no syscall. Producers registered for membarrier skip even that fence (and release
// their lock with a plain store): a consumer about to sleep calls sys::membarrier_global() after
// registering and before re-checking, which orders the producers' stores for it (see
// put_publish_unlock). Consumers do the same while they are behind, and then a producer about to
// sleep for space issues the membarrier (see get_publish_unlock). Sleeps are sliced (kWaitSlice) so
// that a lost wake-up (a waiter killed after being chosen) costs at most one slice, and so
// consumers can notice that every process that could put has died.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "shm/deadline.hpp"
#include "shm/ring_lock.hpp"
#include "shm/wait_word.hpp"

namespace mpp::shm {

inline constexpr std::size_t kRecordAlign = 8;
inline constexpr std::size_t kMinCapacity = 64;
// Skip records carry their length in 32 bits, so the ring stays below 4 GiB.
inline constexpr std::size_t kMaxCapacity = std::size_t{1} << 31;
// Offset from which a producer considers jumping back to offset 0 (see "recycling" above).
inline constexpr std::size_t kRecycleMin = 64 * 1024;
inline constexpr std::size_t kMaxAttached = 1024;  // pid slots of processes attached to a ring
// Most producer lanes a queue has (see src/shm/ring_set.hpp).
inline constexpr std::size_t kMaxLanes = 64;
// Published bytes not yet taken above which a consumer releases its lock with a plain store (see
// Ring::get_publish_unlock): 4 KiB is a few hundred small items, far from caught up.
inline constexpr std::size_t kPlainUnlockBacklog = 4096;

// Record kinds, in the top bits of RecordHeader::word (lengths stay below: an item's payload is at
// most half a ring of at most 2^31 bytes, so < 2^30; a skip's length is < 2^31).
inline constexpr std::uint32_t kItem = 0;
// A batch record (put_many): its payload is a sequence of items, each a 4-byte length, the
// bytes, and padding to 4 bytes. Consumers may take its items one by one (Cursor::rec_end).
inline constexpr std::uint32_t kBatch = 0x40000000u;
inline constexpr std::uint32_t kSkip = 0x80000000u;
struct RecordHeader {
  std::uint32_t word;   // kind | length (item, batch: payload bytes; skip: bytes skipped, header
                        // included)
  std::uint32_t stamp;  // real-time order stamp of an item or batch (see "Order" above); 0: none
  static constexpr RecordHeader make(std::uint32_t kind, std::size_t size,
                                     std::uint32_t stamp = 0) noexcept {
    return {kind | static_cast<std::uint32_t>(size), stamp};
  }
  [[nodiscard]] constexpr std::uint32_t kind() const noexcept {
    return (word & kSkip) != 0 ? kSkip : word & kBatch;
  }
  [[nodiscard]] constexpr std::uint32_t size() const noexcept {
    return word & ((word & kSkip) != 0 ? ~kSkip : ~(kSkip | kBatch));
  }
};
static_assert(RecordHeader::make(kSkip, (std::size_t{1} << 31) - 8).size() ==
                  (std::uint32_t{1} << 31) - 8,
              "a skip keeps 31 bits of length");

// Real-time order stamps (see "Order" above) compare modulo 2^32; 0 is "unstamped", older than
// every stamp (only the first ring a queue ever used holds unstamped items).
[[nodiscard]] constexpr bool stamp_older(std::uint32_t a, std::uint32_t b) noexcept {
  if (a == 0 || b == 0) return a == 0 && b != 0;
  return static_cast<std::int32_t>(a - b) < 0;
}
inline constexpr std::size_t kBatchItemAlign = 4;
// Largest batch record put_many writes: consumers see each one as soon as it is complete.
inline constexpr std::size_t kMaxBatchBytes = 64 * 1024;
static_assert(sizeof(RecordHeader) == kRecordAlign,
              "a record header is exactly one alignment unit, so payloads stay 8-byte aligned");

// A process as shared tables record it: its pid and its start time (sys::process_start_time;
// 0 = unknown, then the pid alone identifies it), so that a dead process whose pid the kernel has
// given to a new process is not taken for alive. Packed into one 64-bit word (0 = nobody) so that
// a table entry is claimed, compared and freed with single atomic operations.
struct ProcessTag {
  std::int32_t pid = 0;
  std::uint32_t start = 0;
  [[nodiscard]] constexpr std::uint64_t packed() const noexcept {
    return (std::uint64_t{start} << 32) | static_cast<std::uint32_t>(pid);
  }
  static constexpr ProcessTag unpack(std::uint64_t v) noexcept {
    return {static_cast<std::int32_t>(static_cast<std::uint32_t>(v)),
            static_cast<std::uint32_t>(v >> 32)};
  }
};
static_assert(ProcessTag{1, 0}.packed() != 0, "a recorded process never packs to the free value");

// One side's published state. Only the side's lock holder writes; others read pos and count.
struct Cursor {
  std::atomic<std::uint64_t> pos{0};    // byte position, published with release
  std::atomic<std::uint64_t> count{0};  // items published so far (put or got)
  // Consumers only: end of the items of the batch record `pos` points into, 0 at a record
  // boundary. (Once a consumer is inside a batch record, its header may already be overwritten.)
  std::atomic<std::uint64_t> rec_end{0};
  // Write-ahead intent, so that a successor can repair `count` and `rec_end` if the holder died
  // between the stores of publish(). Plain fields: only ever touched under the side's lock.
  std::uint64_t intent_pos = 0;
  std::uint64_t intent_count = 0;
  std::uint64_t intent_rec_end = 0;
  std::uint64_t prev_count = 0;
  std::uint64_t prev_rec_end = 0;
  std::atomic<std::uint32_t> intent_valid{0};

  void publish(std::uint64_t new_pos, std::uint64_t new_count,
               std::uint64_t new_rec_end = 0) noexcept {
    prev_count = count.load(std::memory_order_relaxed);
    prev_rec_end = rec_end.load(std::memory_order_relaxed);
    intent_pos = new_pos;
    intent_count = new_count;
    intent_rec_end = new_rec_end;
    intent_valid.store(1, std::memory_order_release);
    // count before pos: whoever sees the new position also sees the count that includes it.
    count.store(new_count, std::memory_order_release);
    rec_end.store(new_rec_end, std::memory_order_release);
    pos.store(new_pos, std::memory_order_release);
    intent_valid.store(0, std::memory_order_release);
  }
  // After taking the lock from a dead holder: make count and rec_end agree with the published
  // position.
  void recover() noexcept {
    if (intent_valid.load(std::memory_order_acquire) == 0) return;
    if (pos.load(std::memory_order_relaxed) == intent_pos) {
      count.store(intent_count, std::memory_order_release);
      rec_end.store(intent_rec_end, std::memory_order_release);
    } else {
      count.store(prev_count, std::memory_order_release);
      rec_end.store(prev_rec_end, std::memory_order_release);
    }
    intent_valid.store(0, std::memory_order_release);
  }
};

struct RingHeader {
  // Constants, written once by the creator.
  std::uint64_t magic;
  std::uint64_t capacity;  // power of two
  std::uint64_t maxsize;   // most items held at once, 0 = unlimited
  // Producer side: the lock and the lock holder's private caches share a line that consumers
  // never read; the published cursor gets its own line (consumers poll it).
  alignas(128) RingLock prod_lock;
  std::uint64_t head_cache;     // a lower bound of cons.pos, refreshed when space seems short
  std::uint64_t got_cache;      // a lower bound of cons.count, for maxsize
  std::uint64_t recycle_at;     // next tail at which a jump back to offset 0 is considered
  std::uint64_t budget_until;   // lanes: tail up to which the lane budget allows writing
  std::uint64_t wrap_check_at;  // lanes: next tail at which an early wrap is considered
  alignas(128) Cursor prod;
  // Lanes: the last early-wrap skip record (Ring::reserve), which the lane budget does not count
  // as held bytes. At most one is in flight: a lane wraps early only once consumers are past the
  // start of the current lap.
  std::atomic<std::uint64_t> early_skip_at;
  std::atomic<std::uint64_t> early_skip_len;
  // Consumer side, same split.
  alignas(128) RingLock cons_lock;
  std::uint64_t tail_cache;      // a lower bound of prod.pos
  std::uint32_t cons_rec_stamp;  // stamp of the batch record a consumer is inside (rec_end != 0)
  alignas(128) Cursor cons;
  // Ordered queues: a lower bound of the stamp of the item at cons.pos (exact when a consumer
  // has seen that item; see Ring::peek). Stored after cons.pos, read before it.
  std::atomic<std::uint32_t> head_lb;
  // Ordered queues: a published tail the last consumer to leave saw (a lower bound of prod.pos
  // then), so that a peek at a ring known to hold items does not read the producer's line.
  std::atomic<std::uint64_t> seen_tail;
  // "Items were published" and "space was freed" futex words, each with its sleepers count.
  alignas(128) WaitWord data_wake;
  std::atomic<std::uint32_t> data_armed;  // a consumer is about to sleep: the next put wakes
  alignas(128) WaitWord space_wake;
  std::atomic<std::uint64_t> space_need;  // largest record a sleeping producer waits to fit
                                          // (0: no wake-up requested since the last one)
  // Rarely written state.
  // 0 open; kClosing: put() refuses (RingSet::close is making sure no put is still publishing);
  // kSealed: closed, and every put that did not refuse has published.
  alignas(128) std::atomic<std::uint32_t> closed;
  // Main ring: items of different rings must be taken in stamp order (set, never cleared, once a
  // second ring of the queue has had a producer; see RingSet::ordered).
  std::atomic<std::uint32_t> ordered;
  std::atomic<std::uint32_t> shared;          // a second process has attached
  std::atomic<std::uint32_t> table_overflow;  // a process could not be recorded in `attached`
  WaitWord join_wake;                         // JoinableQueue: bumped when all tasks are done
  std::atomic<std::uint64_t> done_count;      // JoinableQueue: task_done() calls
  alignas(64) std::atomic<std::uint64_t> attached[kMaxAttached];  // ProcessTags, 0 = free slot
  // Producer lanes (main ring only; see ring_set.hpp): how many lanes were ever claimed (lanes
  // [0, lanes_used) may hold items) and each lane's owner (a ProcessTag, 0 = free).
  alignas(64) std::atomic<std::uint32_t> lanes_used;
  std::atomic<std::uint64_t> lane_owner[kMaxLanes];
  // Main ring, ordered queues: the last stamp handed out (producers take the next under their
  // ring's lock; a line of its own, since every put of an ordered queue writes it).
  alignas(128) std::atomic<std::uint32_t> ticket;
};
inline constexpr std::uint32_t kClosing = 1;
inline constexpr std::uint32_t kSealed = 2;

inline constexpr std::size_t kHeaderBytes = 16384;
static_assert(sizeof(RingHeader) <= kHeaderBytes,
              "the ring header must fit in the space reserved before the data");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "64-bit positions must be lock-free atomics to be shared between processes");

enum class WaitStatus {
  ready,      // the condition may hold now: retry under the lock
  timed_out,  // the deadline passed
  closed,     // close() was called
  orphaned,   // (consumers) nothing is queued and every process that could put has died
};

class Ring {
 public:
  Ring() = default;
  // Bytes the mapping needs for a ring of `capacity` (already normalized) data bytes.
  static std::size_t mapping_bytes(std::size_t capacity) noexcept {
    return kHeaderBytes + capacity;
  }
  // Rounds a requested capacity up to a power of two within [kMinCapacity, kMaxCapacity];
  // 0 if the request is larger than kMaxCapacity.
  static std::size_t normalize_capacity(std::size_t requested) noexcept;
  // Initializes a ring in zero-filled memory of mapping_bytes(capacity) bytes, aligned to 64.
  static Ring create(void* memory, std::size_t capacity, std::size_t maxsize) noexcept;
  // Producer lane `index` (see ring_set.hpp) of the lanes at `lanes` (mapping_bytes(capacity)
  // bytes apart, zero-filled): zero is a valid empty ring, so nothing is written and untouched
  // lanes cost no memory. `main` provides the closed flag and the consumers' wake-up words, which
  // all rings of a queue share, and the count of lanes in use.
  // The lane budget: a lane may always hold `hold` bytes; beyond that, only while all lanes
  // together hold at most `capacity` bytes (so that many producers running ahead of their
  // consumers do not each fill a whole ring). A lone producer can still fill its whole lane.
  static Ring lane(std::byte* lanes, std::size_t index, std::size_t capacity, std::size_t hold,
                   const Ring& main) noexcept;

  [[nodiscard]] RingHeader* header() const noexcept { return h_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }
  // Largest payload a single item may have (its record takes at most half the ring).
  [[nodiscard]] std::size_t max_payload() const noexcept { return cap_ / 2 - sizeof(RecordHeader); }
  static constexpr std::size_t record_bytes(std::size_t payload) noexcept {
    return (sizeof(RecordHeader) + payload + kRecordAlign - 1) & ~(kRecordAlign - 1);
  }

  // ---- producers -------------------------------------------------------------------------------
  struct PutTxn {
    std::uint64_t tail = 0;
    std::uint64_t count = 0;
    std::uint64_t start_count = 0;
    std::int32_t self = 0;
  };
  // Takes the producer lock (blocking briefly; repairs after a dead holder) and starts a batch.
  void put_lock(PutTxn& t, std::int32_t self) noexcept {
    if (h_->prod_lock.lock(self) == Acquire::owner_died) h_->prod.recover();
    t.self = self;
    t.tail = h_->prod.pos.load(std::memory_order_relaxed);
    t.count = t.start_count = h_->prod.count.load(std::memory_order_relaxed);
  }
  // Under the producer lock: room for one record of `payload` bytes, or nullptr when the ring (or
  // maxsize) has no room right now. The header is written; the caller fills the payload.
  std::byte* reserve(PutTxn& t, std::size_t payload) noexcept;
  // Under the producer lock: room for a batch record whose payload is at least `min_payload`
  // bytes (nullptr when there is none right now). `room` receives the usable payload bytes (at
  // most kMaxBatchBytes), `max_items` how many items maxsize still allows. Nothing is written
  // until commit_batch.
  std::byte* open_batch(PutTxn& t, std::size_t min_payload, std::size_t& room,
                        std::size_t& max_items) noexcept;
  // Closes the batch record opened at `payload` with `used` bytes holding `items` items.
  void commit_batch(PutTxn& t, std::byte* payload, std::size_t used, std::size_t items) noexcept {
    const RecordHeader rh = RecordHeader::make(kBatch, used, next_stamp());
    std::memcpy(payload - sizeof(RecordHeader), &rh, sizeof rh);
    t.tail += record_bytes(used);
    t.count += items;
  }
  static constexpr std::size_t batch_item_bytes(std::size_t payload) noexcept {
    return (4 + payload + kBatchItemAlign - 1) & ~(kBatchItemAlign - 1);
  }
  // Publishes everything reserved since put_lock or the last publish (one release store) and
  // wakes sleeping consumers if there are any. The lock stays held.
  void put_publish(PutTxn& t) noexcept {
    const std::uint64_t n = t.count - t.start_count;
    if (n == 0) return;
    h_->prod.publish(t.tail, t.count);
    t.start_count = t.count;
    wake_data(n, WakerFence::needed);
  }
  // Releases the producer lock; whatever was reserved but not published is abandoned.
  void put_unlock() noexcept { h_->prod_lock.unlock(); }
  // Publishes, releases the lock, then wakes consumers (outside the lock: a woken consumer never
  // needs it, and the release doubles as the barrier of the wake protocol).
  //
  // `fenceless`: the caller's process is registered with sys::membarrier_register(). Then the
  // unlock is a plain store and sleeping consumers are looked for with a plain load: no locked
  // instruction and no fence on the producer's path (which would stall it on the lines the
  // consumer is reading). A consumer about to sleep calls sys::membarrier_global() between
  // announcing itself and re-checking for data, which stands in for our missing StoreLoad fence.
  void put_publish_unlock(PutTxn& t, bool fenceless = false) noexcept {
    const std::uint64_t n = t.count - t.start_count;
    if (n != 0) h_->prod.publish(t.tail, t.count);
    if (fenceless) {
      h_->prod_lock.unlock_plain();
    } else {
      h_->prod_lock.unlock();
    }
    if (n != 0) {
      wake_data(n, fenceless ? WakerFence::sleepers_membarrier : WakerFence::after_locked_op);
    }
  }
  // Waits (lock not held) until a record of `payload` bytes may fit, the ring is closed, or the
  // deadline passes.
  WaitStatus wait_space(std::size_t payload, const Deadline& d) noexcept;

  // ---- consumers -------------------------------------------------------------------------------
  struct GetTxn {
    std::uint64_t head = 0;
    std::uint64_t count = 0;
    std::uint64_t start_head = 0;
    std::uint64_t rec_end = 0;  // see Cursor::rec_end
  };
  void get_lock(GetTxn& t, std::int32_t self) noexcept {
    if (h_->cons_lock.lock(self) == Acquire::owner_died) h_->cons.recover();
    start_get(t);
  }
  // get_lock without blocking: false (nothing held) when another consumer holds the lock.
  bool try_get_lock(GetTxn& t, std::int32_t self) noexcept {
    if (!h_->cons_lock.try_lock(self)) return false;
    start_get(t);
    return true;
  }
  // Under the consumer lock: the next item's payload, or nullopt when none is published. The
  // bytes stay valid (unreused by producers) until get_publish_unlock.
  // (A template so that QueueCore can pass its own transaction struct with the same members,
  // without copying it in and out for every item.)
  template <class Txn>
  std::optional<std::span<const std::byte>> next(Txn& t) noexcept;
  // Under the consumer lock: true if next() would return an item (skip records are passed).
  template <class Txn>
  bool has_item(Txn& t) noexcept;
  // Frees the space of every item taken since get_lock or the last publish and wakes sleeping
  // producers if there are any. The lock stays held.
  template <class Txn>
  void get_publish(Txn& t) noexcept {
    if (t.head == t.start_head) return;
    h_->cons.publish(t.head, t.count, t.rec_end);
    t.start_head = t.head;
    wake_space(WakerFence::needed);
  }
  void get_unlock() noexcept { h_->cons_lock.unlock(); }

  // ---- real-time order (ordered queues; see "Order" above and RingSet::gate) --------------------
  // Under the consumer lock, after has_item(t) returned true: the stamp of the item t is at.
  template <class Txn>
  [[nodiscard]] std::uint32_t head_stamp(const Txn& t) const noexcept;
  // Without any lock: whether the ring holds something now, and a lower bound of the stamp of
  // its next item (exact once a consumer has looked at that item; see RingHeader::head_lb).
  // Peeking is split so that the producer's line is read only when needed: lb() first, then
  // has_data_after_lb() (positions read after the bound).
  [[nodiscard]] std::uint32_t lb() const noexcept {
    return h_->head_lb.load(std::memory_order_acquire);  // before cons.pos
  }
  [[nodiscard]] bool has_data_after_lb() const noexcept {
    const std::uint64_t head = h_->cons.pos.load(std::memory_order_acquire);
    if (head < h_->seen_tail.load(std::memory_order_acquire)) return true;
    return h_->prod.pos.load(std::memory_order_acquire) != head;
  }
  // Under the consumer lock: the lower bound to publish for the next item (its stamp when there
  // is one; when the ring is empty, the newest stamp handed out, read before looking: any item
  // published later that must come before one a consumer takes afterwards was stamped after it).
  template <class Txn>
  [[nodiscard]] std::uint32_t next_lb(Txn& t) noexcept {
    if (has_item(t)) return head_stamp(t);
    const std::uint32_t c = n_->ticket.load(std::memory_order_acquire);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the ticket read before the tail read
    h_->tail_cache = h_->prod.pos.load(std::memory_order_acquire);
    return has_item(t) ? head_stamp(t) : c;
  }
  // Under the consumer lock: the published tail consumers last saw (items below were published
  // before now).
  [[nodiscard]] std::uint64_t seen_tail() const noexcept { return h_->tail_cache; }
  // Frees the space of the items taken, releases the lock, then wakes producers sleeping for
  // space (outside the lock).
  //
  // `fenceless`: the caller's process is registered with sys::membarrier_register(). Then, while
  // the consumer is behind (at least kPlainUnlockBacklog bytes published and not yet taken), the
  // unlock is a plain store and sleeping producers are looked for with a plain load; a producer
  // about to sleep for space calls sys::membarrier_global() before re-checking. When the
  // consumer has caught up, the locked exchange stays: a consumer that got faster would only
  // poll the line producers are writing, item by item (measured: 1 -> 1 8-byte items fell from
  // ~28 to 6-8 M/s with a plain unlock on every get, and rose to 36-49 M/s with this rule).
  //
  // `head_lb` (ordered queues): stored after the position, as RingHeader::head_lb requires.
  template <class Txn>
  void get_publish_unlock(Txn& t, bool fenceless = false,
                          const std::uint32_t* head_lb = nullptr) noexcept {
    const bool moved = t.head != t.start_head;
    if (moved) h_->cons.publish(t.head, t.count, t.rec_end);
    if (head_lb != nullptr) {
      h_->seen_tail.store(h_->tail_cache, std::memory_order_relaxed);
      h_->head_lb.store(*head_lb, std::memory_order_release);
    }
    fenceless = fenceless && h_->tail_cache - t.head >= kPlainUnlockBacklog;
    if (fenceless) {
      h_->cons_lock.unlock_plain();
    } else {
      h_->cons_lock.unlock();
    }
    if (moved)
      wake_space(fenceless ? WakerFence::sleepers_membarrier : WakerFence::after_locked_op);
  }
  // Waits (lock not held) until an item may be available. `self_may_put`: the caller's process
  // has put to this ring or may still do so from another thread (then it never reports orphaned).
  // `spin`: the caller's adaptive spin budget (polls before sleeping), updated here; nullptr for
  // a fixed budget. `any_data(ctx)`, when given, replaces this ring's has_data() (a queue with
  // lanes waits for any of its rings; they all wake this ring's data_wake).
  WaitStatus wait_data(const Deadline& d, std::int32_t self, bool self_may_put,
                       std::atomic<int>* spin = nullptr, bool (*any_data)(const void*) = nullptr,
                       const void* ctx = nullptr) noexcept;
  // How many of this process's sleeps in wait_data() lasted a whole slice without a wake-up
  // while an item was already there when it ended (a lost wake-up; tests, diagnostics).
  static std::uint64_t late_data_wakeups() noexcept;
  // The same for producers in wait_space(): sleeps that lasted a whole slice while the space they
  // waited for (and the wake-up threshold) had been freed.
  static std::uint64_t late_space_wakeups() noexcept;

  // ---- state -----------------------------------------------------------------------------------
  // Marks the ring closed and sealed (after taking the producer lock, so no put publishes after
  // it) and wakes every waiter of this ring. (A queue with lanes closes through RingSet::close,
  // which ends with this on its main ring.)
  void close(std::int32_t self) noexcept;
  // Puts must refuse (closing or closed).
  [[nodiscard]] bool closed() const noexcept {
    return n_->closed.load(std::memory_order_acquire) != 0;
  }
  // Closed, and every put that did not refuse has published: "closed and empty" is final.
  [[nodiscard]] bool sealed() const noexcept {
    return n_->closed.load(std::memory_order_acquire) == kSealed;
  }
  // Something published and not yet taken (no lock; a hint under concurrency).
  [[nodiscard]] bool has_data() const noexcept {
    return h_->prod.pos.load(std::memory_order_acquire) !=
           h_->cons.pos.load(std::memory_order_acquire);
  }
  // Items held now (approximate under concurrency, never negative).
  [[nodiscard]] std::size_t size() const noexcept {
    const auto got = h_->cons.count.load(std::memory_order_acquire);
    const auto put = h_->prod.count.load(std::memory_order_acquire);
    return static_cast<std::size_t>(put - got);
  }
  [[nodiscard]] bool full() const noexcept;
  [[nodiscard]] std::uint64_t put_count() const noexcept {
    return h_->prod.count.load(std::memory_order_acquire);
  }

  // ---- processes attached (for "every producer died") -----------------------------------------
  // Records `self`; returns its slot or -1 when the table is full of live processes (a full
  // table first gives the slots of dead ones to new processes). Memory, plus the liveness probes
  // of sys::process_alive when the table is full, all async-signal-safe: callable right after
  // fork in the child.
  int attach(ProcessTag self, bool is_child) noexcept;
  void detach(int slot, ProcessTag self) noexcept;
  // True when no process other than `self` that is attached is still alive (and the table is
  // trustworthy and some child ever attached).
  [[nodiscard]] bool others_all_dead(std::int32_t self) noexcept;

  // ---- JoinableQueue accounting (main ring) --------------------------------------------------
  // False when it would exceed `put_total`, the items put to the queue (read after the caller's
  // get() returned; nothing is changed then). Wakes join() when it was the last.
  bool task_done(std::uint64_t put_total) noexcept;
  bool task_done() noexcept { return task_done(put_count()); }
  // Waits until every item put so far has been marked done (`unfinished(ctx)` == 0, or this
  // ring's count when null); false on timeout.
  bool join(const Deadline& d, std::uint64_t (*unfinished)(const void*) = nullptr,
            const void* ctx = nullptr) noexcept;
  [[nodiscard]] std::uint64_t done_count() const noexcept {
    return h_->done_count.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t unfinished() const noexcept { return put_count() - done_count(); }

 private:
  Ring(RingHeader* h, std::byte* data, std::size_t cap, RingHeader* n) noexcept
      : h_(h), n_(n), data_(data), cap_(cap), mask_(cap - 1) {}
  // Under the producer lock: the stamp of the record being written (0 while the queue is not
  // ordered). Tickets are unique and increase in the order they are taken; 0 is skipped.
  std::uint32_t next_stamp() noexcept {
    if (n_->ordered.load(std::memory_order_relaxed) == 0) return 0;
    std::uint32_t s = n_->ticket.fetch_add(1, std::memory_order_relaxed) + 1;
    if (s == 0) s = n_->ticket.fetch_add(1, std::memory_order_relaxed) + 1;
    return s;
  }
  void start_get(GetTxn& t) noexcept {
    t.head = t.start_head = h_->cons.pos.load(std::memory_order_relaxed);
    t.count = h_->cons.count.load(std::memory_order_relaxed);
    t.rec_end = h_->cons.rec_end.load(std::memory_order_relaxed);
  }
  void wake_data(std::uint64_t items, WakerFence f) noexcept;
  void wake_space(WakerFence f) noexcept;
  [[nodiscard]] bool may_fit(std::size_t rec) const noexcept;
  enum class Room : unsigned char { fits, full, over_budget };
  [[nodiscard]] Room room_for(std::size_t rec) const noexcept;
  // Bytes a record of `rec` bytes starting at offset `off` must skip first (0: it goes at off).
  [[nodiscard]] std::size_t skip_before(std::size_t off, std::size_t rec) const noexcept {
    return off + rec > cap_ ? cap_ - off : 0;
  }
  // Lanes: under the producer lock, whether the lane budget lets the producer write `rec` more
  // bytes at `tail` (extends h.budget_until when it does). Slow path: runs about once per
  // `hold_` bytes written while the lane is short, once per kBudgetStep beyond that.
  bool grant(std::uint64_t tail, std::uint64_t rec) noexcept;
  // Lanes: under the producer lock, for a record of `rec` bytes (at most hold_/4) at offset `off`
  // that would pass offset hold_: the bytes to skip to start the next lap now (0: go on here).
  // Wrapping early keeps a lane whose consumers trail by less than hold_ within its first hold_
  // bytes instead of walking through (and faulting in) its whole capacity. Larger records never
  // wrap early: the skipped bytes count as used until consumers pass them, so the lap after an
  // early wrap has only the room consumers have freed at its start.
  std::size_t early_wrap(std::uint64_t tail, std::size_t off, std::size_t rec) noexcept;
  // Bytes lane `h` holds up to its published tail, or up to `tail` (the producer's own, under its
  // lock), the early-wrap skip excluded.
  static std::uint64_t held(const RingHeader& h) noexcept;
  static std::uint64_t held(const RingHeader& h, std::uint64_t tail) noexcept;
  static std::uint64_t held_between(const RingHeader& h, std::uint64_t head,
                                    std::uint64_t tail) noexcept;
  // Bytes all lanes hold now (a sum over the lanes in use).
  [[nodiscard]] std::uint64_t lanes_held() const noexcept;
  // Free bytes at which consumers wake a producer sleeping for space (hysteresis).
  [[nodiscard]] std::uint64_t wake_free(std::uint64_t need) const noexcept;
  // Under the producer lock, with the ring seen empty at t.tail: moves both positions to the
  // start of the next lap (offset 0), if no consumer is busy. Updates `off`.
  void recycle(PutTxn& t, std::size_t& off) noexcept;

  RingHeader* h_ = nullptr;
  RingHeader* n_ = nullptr;  // the queue's main ring header: closed flag, consumers' wake-ups
  std::byte* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t mask_ = 0;
  // Lanes only (see lane()); hold_ == 0 for a main ring.
  std::size_t hold_ = 0;
  std::size_t early_from_ = ~std::size_t{0};  // hold_ for a lane: offset past which it may wrap
  std::byte* lanes_ = nullptr;
};
// Lanes beyond their `hold` re-check the lane budget once per this many bytes.
inline constexpr std::size_t kBudgetStep = 64 * 1024;

inline std::byte* Ring::reserve(PutTxn& t, std::size_t payload) noexcept {
  const std::size_t rec = record_bytes(payload);
  RingHeader& h = *h_;
  if (h.maxsize != 0 && t.count - h.got_cache >= h.maxsize) {
    h.got_cache = h.cons.count.load(std::memory_order_acquire);
    if (t.count - h.got_cache >= h.maxsize) return nullptr;
  }
  std::size_t off = t.tail & mask_;
  std::size_t skip = skip_before(off, rec);
  if (skip == 0 && off >= kRecycleMin && t.tail >= h.recycle_at) {
    h.recycle_at = t.tail + kRecycleMin / 4;
    if (h.cons.pos.load(std::memory_order_acquire) == t.tail) recycle(t, off);
  }
  if (skip == 0 && off + rec > early_from_ && rec <= early_from_ / 4 && t.tail >= h.wrap_check_at) {
    skip = early_wrap(t.tail, off, rec);
  }
  const std::uint64_t need = skip + rec;
  if (t.tail + need - h.head_cache > cap_) {
    h.head_cache = h.cons.pos.load(std::memory_order_acquire);
    if (t.tail + need - h.head_cache > cap_) return nullptr;
  }
  if (hold_ != 0 && t.tail + need > h.budget_until && !grant(t.tail + skip, rec)) return nullptr;
  if (skip != 0) {
    const RecordHeader sk = RecordHeader::make(kSkip, skip);
    std::memcpy(data_ + off, &sk, sizeof sk);
    t.tail += skip;
    off = 0;
  }
  const RecordHeader rh = RecordHeader::make(kItem, payload, next_stamp());
  std::memcpy(data_ + off, &rh, sizeof rh);
  t.tail += rec;
  t.count += 1;
  return data_ + off + sizeof(RecordHeader);
}

template <class Txn>
inline std::optional<std::span<const std::byte>> Ring::next(Txn& t) noexcept {
  RingHeader& h = *h_;
  for (;;) {
    if (t.rec_end != 0) {
      // Inside a batch record: [u32 length][bytes][pad]; the record never wraps.
      const std::size_t off = t.head & mask_;
      std::uint32_t len;
      std::memcpy(&len, data_ + off, sizeof len);
      t.head += batch_item_bytes(len);
      t.count += 1;
      if (t.head >= t.rec_end) {
        t.head = (t.rec_end + kRecordAlign - 1) & ~std::uint64_t{kRecordAlign - 1};
        t.rec_end = 0;
      }
      return std::span<const std::byte>(data_ + off + 4, len);
    }
    if (t.head >= h.tail_cache) {
      h.tail_cache = h.prod.pos.load(std::memory_order_acquire);
      if (t.head >= h.tail_cache) return std::nullopt;
    }
    const std::size_t off = t.head & mask_;
    RecordHeader rh;
    std::memcpy(&rh, data_ + off, sizeof rh);
    const std::uint32_t kind = rh.kind();
    const std::uint32_t size = rh.size();
    if (kind == kSkip) {
      t.head += size;
      continue;
    }
    if (kind == kBatch) {
      t.rec_end = t.head + sizeof(RecordHeader) + size;
      t.head += sizeof(RecordHeader);
      // The batch's header may be overwritten once head has moved past it: keep its stamp.
      h.cons_rec_stamp = rh.stamp;
      continue;
    }
    t.head += record_bytes(size);
    t.count += 1;
    return std::span<const std::byte>(data_ + off + sizeof(RecordHeader), size);
  }
}

template <class Txn>
inline bool Ring::has_item(Txn& t) noexcept {
  RingHeader& h = *h_;
  for (;;) {
    if (t.rec_end != 0) return true;
    if (t.head >= h.tail_cache) {
      h.tail_cache = h.prod.pos.load(std::memory_order_acquire);
      if (t.head >= h.tail_cache) return false;
    }
    RecordHeader rh;
    std::memcpy(&rh, data_ + (t.head & mask_), sizeof rh);
    if (rh.kind() != kSkip) return true;
    t.head += rh.size();
  }
}

template <class Txn>
inline std::uint32_t Ring::head_stamp(const Txn& t) const noexcept {
  if (t.rec_end != 0) return h_->cons_rec_stamp;
  RecordHeader rh;
  std::memcpy(&rh, data_ + (t.head & mask_), sizeof rh);
  return rh.stamp;
}

}  // namespace mpp::shm
