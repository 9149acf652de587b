// mpp/queue.hpp: Python's multiprocessing.Queue / JoinableQueue, over shared memory.
//
// What: a queue of items of type T (anything the codec can encode, see codec.hpp) that many
// producer and many consumer processes share. Items are encoded straight into rings of
// variable-size records in anonymous MAP_SHARED mappings created by the constructor (nothing
// appears in /dev/shm; the memory goes away with the last process that maps it). There is no
// feeder thread: when put() returns, the item is in shared memory, so a process may exit (even
// with _exit) or be joined right after putting. Each item is delivered whole to exactly one get().
//
// Order: real time. If one put() returned before another put() began, in any processes (ordered
// for instance by a join(), a Lock, an Event, or program order in one thread), no get() returns
// the later item while the earlier one is still queued. So the classic pattern holds: producers
// put and exit, the parent joins them and then puts one sentinel per consumer, and no item is
// left behind the sentinels. Items of puts that overlap in time come out in either order; items
// of one put_many() keep their order. Each producing process puts to a ring of its own, a "lane"
// (up to 64 per queue), so producers never wait for one another's lock; processes beyond the 64th,
// and every producer of a queue with maxsize, share the queue's main ring. Once a second ring has
// a producer, every put takes a ticket from one shared counter (one atomic increment) and
// consumers take the oldest head among the rings; a queue with one producing process pays
// nothing for this. Cost and limits: docs/design.md, "Real-time order across lanes".
//
// Lifetime and fork: a Queue is a handle; copies refer to the same queue (a shared_ptr to this
// process's view of the mapping). Children forked after the queue was created (mpp::Process,
// Pool workers, plain fork()) inherit it and may use any copy of the handle. A queue cannot be
// passed to an unrelated process.
//
// Memory ordering: put() happens-before the get() that returns the item (release/acquire on the
// ring positions), in any processes.
//
// Blocking: every blocking call spins for a few microseconds, then sleeps on a cross-process
// futex; signals that interrupt the sleep (EINTR) are absorbed, nothing is lost. put()/get()
// without a timeout block indefinitely; the timed forms return false / nullopt when the timeout
// passes; try_ forms never wait for room or items (they may wait the few hundred nanoseconds
// another process holds the ring's lock to copy an item). No operation wakes anyone with a
// syscall unless someone sleeps.
//
// Sizes: QueueOptions::capacity_bytes is rounded up to a power of two (at least 64 bytes, at most
// 2 GiB): the size of the main ring and of each lane. Every item occupies its encoded size plus
// an 8-byte header, rounded up to 8 bytes. One item may take at most half a ring: put() of a
// larger item throws std::invalid_argument (see max_item_bytes()). maxsize counts items; 0 means
// only capacity_bytes bounds the queue. What producers can have queued and not yet taken: a lone
// producer fills its whole lane (capacity_bytes) before put() blocks; when several run ahead of
// their consumers, each lane may hold 1 MiB, and more only while all lanes together hold at most
// capacity_bytes (so the queue holds about max(capacity_bytes, 1 MiB x producers) plus the main
// ring). The main ring, if up to 1 MiB, is prefaulted; a larger one touches only its first
// 256 KiB up front. Lanes are reserved as address space only (MAP_NORESERVE, up to 8 GiB per
// queue) and touched as used: a lane whose consumers keep up reuses its first pages, so the 64 MiB
// default costs little. Under an address-space limit (ulimit -v) a queue reserves at most 1/16 of
// it for lanes (fewer lanes); where the kernel refuses the reservation (e.g. strict overcommit),
// the queue works on its main ring alone.
//
// Faults (what is guaranteed when processes die):
// - A producer killed in the middle of put() (even half-way through copying a huge item) never
//   publishes a torn item: the item becomes visible with one store after it is complete. The
//   next producer notices the dead lock owner (within ~50 ms) and carries on.
// - A consumer killed inside get() before it returned has not removed the item: it stays in the
//   queue for the next consumer. Once get() has returned, the item belongs to that process; if it
//   then dies, the item is lost (for JoinableQueue, its task_done() never comes and join() waits).
// - get() on an empty queue, when every other process that ever attached to the queue has exited
//   (or dropped all its handles) and the calling process itself never put to it, throws
//   QueueClosed instead of waiting forever (checked every 100 ms while it sleeps). try_get() and
//   get(timeout) never throw for this: they return nullopt (possibly before the timeout, since
//   nothing can arrive), as Python's get(timeout=...) raises Empty. This applies
//   once the queue has been shared with at least one child; a single process with several threads
//   is never told so. Processes count as "could still put" while alive, even if they never will
//   (e.g. a child that exec'd another program). A process is recorded by pid and start time
//   (read from /proc once per forked child, ~14 us), so a dead one whose pid the kernel has since
//   given to another process counts as dead. An mpp child (a Process whose target returned or
//   threw, a Pool worker that leaves) detaches on its way out; one that was killed or called
//   _exit is found dead later. When more than 1024 processes are attached and alive at once,
//   this detection is switched off for the queue (get() then just waits).
//
// Throughput: put()/get() take a producer or consumer lock per item (a lane's producer lock is
// only ever taken by its own process, and close()), with no syscall when nobody sleeps. A put()
// costs one locked instruction: it releases the lock with a plain store and looks
// for sleeping consumers without a fence, because a consumer about to sleep issues membarrier(2)
// instead (Linux >= 4.16; elsewhere the fenced protocol is used). get() does the same while the
// consumer is behind (more than 4 KiB of items waiting), and keeps its locked unlock once it has
// caught up (so that a consumer on an empty queue does not poll the producer's lines item by
// item); a producer about to sleep for space issues the membarrier. Each process registers for
// that once, on its first put() or get(). put_many()/get_many() amortize that: put_many packs up to
// 64 KiB of items into one record per lock hold, get_many takes up to `max` items per lock hold;
// items put with put_many can be taken with get() and vice versa.
// Many producers: with lanes, producers do not contend with one another; the single consumer
// then sets the pace (bench/README.md, "Queue"). Batching with put_many/get_many still pays where
// items are small: it saves the per-item lock and publish on both sides.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpp/codec.hpp"
#include "mpp/detail/queue_core.hpp"
#include "mpp/errors.hpp"

namespace mpp {

// Options of a Queue.
struct QueueOptions {
  std::size_t maxsize = 0;                // most items held at once; 0 = bounded only by bytes
  std::size_t capacity_bytes = 64 << 20;  // shared-memory ring size (rounded up to a power of 2)
};

// A FIFO of T between processes over shared memory (Python's multiprocessing.Queue); see the
// file comment.
template <class T>
class Queue {
  static_assert(codec::Codable<T>, "Queue<T>: T must be a type the codec can encode (codec.hpp)");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, std::string_view>,
                "Queue<std::string_view>: a decoded view would point into ring memory that is "
                "reused as soon as get() returns; use std::string");

 public:
  // The item type.
  using value_type = T;

  // Creates a queue with the default options (64 MiB ring, no item limit). Throws
  // std::system_error ("cannot map shared memory").
  Queue() : Queue(QueueOptions{}) {}
  // At most `maxsize` items at once (0 = no item limit).
  explicit Queue(std::size_t maxsize) : Queue(QueueOptions{.maxsize = maxsize}) {}
  // Throws std::invalid_argument if capacity_bytes exceeds 2 GiB, std::system_error if the
  // mapping fails.
  explicit Queue(QueueOptions options)
      : core_(std::make_shared<detail::QueueCore>(options.maxsize, options.capacity_bytes)) {}

  // Blocks while the queue is full. Throws QueueClosed (closed, before or while waiting),
  // std::invalid_argument (item larger than max_item_bytes()), SerializationError (item cannot be
  // encoded).
  void put(const T& item) { put_impl(item, detail::QueueWait::forever()); }
  // Never waits for room: false if the item does not fit now. Throws like put().
  [[nodiscard]] bool try_put(const T& item) { return put_impl(item, detail::QueueWait::poll()); }
  // Waits at most `timeout` for room; false if it passed. Throws like put().
  template <class Rep, class Period>
  [[nodiscard]] bool put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    return put_impl(item, detail::QueueWait::within(timeout));
  }

  // Blocks while the queue is empty. Throws QueueClosed when the queue is closed and drained, or
  // empty with every other attached process gone (see the top of this file); SerializationError
  // if the bytes cannot be decoded (that item is dropped).
  [[nodiscard]] T get() {
    std::optional<T> v;
    get_impl(v, detail::QueueWait::forever());
    return std::move(*v);
  }
  // Never waits for an item: nullopt if none is queued now. Throws QueueClosed when closed and
  // drained, SerializationError.
  [[nodiscard]] std::optional<T> try_get() {
    std::optional<T> v;
    get_impl(v, detail::QueueWait::poll());
    return v;
  }
  // Waits at most `timeout`; nullopt if it passed. Throws like get().
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> get(std::chrono::duration<Rep, Period> timeout) {
    std::optional<T> v;
    get_impl(v, detail::QueueWait::within(timeout));
    return v;
  }

  // ---- batched forms (not in Python; for throughput) ----------------------------------------
  // Puts every element of `items` in order, packed into batch records of up to 64 KiB written
  // under one producer lock (each record is published as soon as it is complete, so consumers
  // start early). Blocks while full. Other producers' items may interleave between records,
  // never inside one. Consumers take the items one by one as usual. Throws like put(); items
  // before a failure have been put. Returns the number of items put.
  template <std::ranges::input_range R>
  requires std::convertible_to < std::ranges::range_reference_t<R>,
  const T& > std::size_t put_many(R&& items) {
    using Core = detail::QueueCore;
    Core::PutBatch batch;
    Core::BatchWriter w;
    auto it = std::ranges::begin(items);
    const auto last = std::ranges::end(items);
    std::size_t n = 0;
    try {
      while (it != last) {
        std::size_t size = codec::encoded_size(static_cast<const T&>(*it));
        // Room for at least this item; then as many of the next ones as fit.
        w = Core::BatchWriter(core_->batch_open(batch, Core::batch_item_bytes(size)));
        do {
          w.add(size, [&](std::byte* dst) { codec::encode_to(dst, static_cast<const T&>(*it)); });
          ++it;
          if (it == last) break;
          size = codec::encoded_size(static_cast<const T&>(*it));
        } while (w.fits(size));
        n += core_->batch_commit(batch, w);
      }
    } catch (...) {
      (void)core_->batch_commit(batch, w);
      core_->batch_close(batch);
      throw;
    }
    core_->batch_close(batch);
    return n;
  }
  // Appends to `out` between 1 and `max` items: blocks until at least one item is queued, then
  // takes what is there, up to max, one lock hold per ring (lane) it takes from. Returns the
  // number appended.
  // Throws like get() (items decoded before a SerializationError stay in `out`).
  std::size_t get_many(std::vector<T>& out, std::size_t max) {
    return get_many_impl(out, max, detail::QueueWait::forever());
  }
  // Never waits: 0 if nothing is queued now.
  std::size_t try_get_many(std::vector<T>& out, std::size_t max) {
    return get_many_impl(out, max, detail::QueueWait::poll());
  }
  // Waits at most `timeout` for the first item; 0 if it passed.
  template <class Rep, class Period>
  std::size_t get_many(std::vector<T>& out, std::size_t max,
                       std::chrono::duration<Rep, Period> timeout) {
    return get_many_impl(out, max, detail::QueueWait::within(timeout));
  }

  // No more puts, from any process: put() then throws QueueClosed; get() returns what is still
  // queued, then throws QueueClosed. Wakes every waiter. Idempotent; does not throw. (Unlike
  // Python's close(), it closes the queue for everyone, not just this handle.) Blocks until every
  // put() already past its "closed?" check has published (microseconds; ~50 ms per lane whose
  // producer died inside put(), whose lock it then takes over), so that an item put() accepted is
  // never lost to a get() that sees the queue closed and empty.
  void close() noexcept { core_->close(); }
  // True once close() ran in any process. Never blocks.
  [[nodiscard]] bool closed() const noexcept { return core_->closed(); }
  // Approximate under concurrency, like Python's qsize()/empty()/full(); never block.
  [[nodiscard]] bool empty() const noexcept { return core_->empty(); }
  // maxsize items are queued, or the ring this process puts to (its lane, else the main ring)
  // has no room for even a 1-byte item now (for a lane: or the lane budget holds it back), i.e.
  // try_put() would fail.
  [[nodiscard]] bool full() const noexcept { return core_->full(); }
  // Items queued (approximate under concurrency, like qsize()); never blocks.
  [[nodiscard]] std::size_t size() const noexcept { return core_->size(); }
  // Largest encoded item put() accepts (half the ring minus the record header).
  [[nodiscard]] std::size_t max_item_bytes() const noexcept { return core_->max_item_bytes(); }
  // The ring size actually used (capacity_bytes rounded up).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return core_->capacity_bytes(); }

 protected:
  // The shared queue state (for JoinableQueue).
  [[nodiscard]] detail::QueueCore& core() const noexcept { return *core_; }

 private:
  bool put_impl(const T& item, detail::QueueWait wait) {
    return core_->put(codec::encoded_size(item), &item, &encode_one, wait);
  }
  static void encode_one(const void* item, std::byte* out) {
    codec::encode_to(out, *static_cast<const T*>(item));
  }
  void get_impl(std::optional<T>& v, detail::QueueWait wait) {
    core_->get(1, &v, &decode_one, wait);
  }
  // Converts to the decoded value, so that emplace() builds a std::string in place (from the
  // conversion's prvalue) instead of moving a temporary: moving a short std::string is a memcpy
  // call (~5 ns of a ~50 ns put+get). Only for std::string, whose constructors cannot take a
  // Decoded; a type with a catch-all constructor template could.
  struct Decoded {
    std::span<const std::byte> bytes;
    operator T() const { return codec::decode<T>(bytes); }  // NOLINT(google-explicit-constructor)
  };
  static void decode_one(void* sink, std::span<const std::byte> bytes) {
    if constexpr (std::is_same_v<T, std::string>) {
      static_cast<std::optional<T>*>(sink)->emplace(Decoded{bytes});
    } else {
      static_cast<std::optional<T>*>(sink)->emplace(codec::decode<T>(bytes));
    }
  }
  std::size_t get_many_impl(std::vector<T>& out, std::size_t max, detail::QueueWait wait) {
    if (max == 0) return 0;
    detail::QueueCore::GetBatch batch;
    if (!core_->get_open(batch, wait)) return 0;
    std::size_t n = 0;
    std::span<const std::byte> bytes;
    try {
      // A failed decode still consumes its item (it would fail again for the next consumer).
      while (n < max && core_->get_next(batch, bytes)) {
        ++n;
        out.push_back(codec::decode<T>(bytes));
      }
    } catch (...) {
      core_->get_close(batch);
      throw;
    }
    core_->get_close(batch);
    return n;
  }

  std::shared_ptr<detail::QueueCore> core_;
};

// A Queue that also counts unfinished tasks, like Python's JoinableQueue: every put() adds one,
// every task_done() removes one, join() waits until none is left. The counters live in the
// shared ring header, so task_done() and join() work from any process.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  using Queue<T>::Queue;

  // Marks one item taken with get() as processed. Never blocks. Throws std::logic_error when
  // called more times than items were put.
  void task_done() { this->core().task_done(); }
  // Blocks until every item put so far has been marked done (EINTR-safe). A consumer that dies
  // between get() and task_done() makes join() wait forever, as in Python: use the timed form.
  void join() { (void)this->core().join(detail::QueueWait::forever()); }
  // Waits at most `timeout`; true if every item was done in time.
  template <class Rep, class Period>
  [[nodiscard]] bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->core().join(detail::QueueWait::within(timeout));
  }
  // Items put but not yet marked done (approximate under concurrency).
  [[nodiscard]] std::size_t unfinished_tasks() const noexcept {
    return static_cast<std::size_t>(this->core().unfinished());
  }
};

}  // namespace mpp
