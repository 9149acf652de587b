// A queue's rings: one main ring plus up to kMaxLanes producer lanes, so that producers in
// different processes do not serialize on one producer lock. Memory + futex only (plus the
// liveness probe of sys::process_alive when every lane is taken), so it runs under ThreadSanitizer
// with threads standing in for processes (each with its own lane choice word, see producer()).
//
// Lanes: each is a whole Ring (src/shm/ring.hpp) of the queue's capacity, in a second mapping
// reserved as address space only (untouched lanes cost nothing; a lane whose consumers keep up
// recycles its first pages). The lane budget (Ring::lane) keeps producers that run ahead from
// holding much more than one capacity together: a lane may always hold kLaneHold bytes, more
// only while all lanes together hold at most the capacity. A process claims a free lane (an
// empty one if any) on its first put (its ProcessTag in the main header's lane_owner[]) and then
// puts only there,
// under the lane's own producer lock, which only its threads take. A process that finds no free
// lane (and no lane whose owner has died), and every process of a queue with maxsize (whose item
// count must be exact across producers), puts to the main ring instead; the choice is made once per
// process, so per-producer FIFO order holds. A lane is released when its process drops the queue
// or leaves as an mpp child (the items stay and are taken in order) and taken over when its owner
// is found dead (pid and start time, so not when the pid now names another process).
//
// Consumers take from any ring with items, each ring under its own consumer lock; all rings wake
// the main ring's data_wake, so a consumer with nothing to take sleeps once for all of them.
//
// Real-time order across rings: if one put() returned before another began (in any processes),
// no get() takes the later item while the earlier one is still queued. Within a ring that holds
// by construction (one producer lock, one FIFO). Across rings, once a second ring of the queue has
// had a producer (ordered(), set for good in claim/mark_used), every record carries a stamp: a
// ticket from the main header's counter, taken under its ring's producer lock, so stamps grow
// along each ring and a put that began after another returned has the larger one. A consumer
// holding ring i takes the item at its head only when no other ring may hold an older one
// (gate()): it reads every other ring's head lower bound (Ring::peek) after it saw the item
// published, so an item that had to come first was visible to that read. Items a process put
// before the queue became ordered are unstamped (0, older than all) and lie in the one ring used
// until then. Stamps compare modulo 2^32: they stay correct while the stamps of queued items span
// less than 2^31 (the oldest head is always taken first, and a queue holds far fewer items) and
// an empty ring's lower bound is refreshed before it falls 2^29 behind (gate() does).
//
// Closing: close() first marks the queue closing (puts refuse), then takes and releases the
// producer lock of every lane that was ever used and of the main ring, which waits out every put
// that passed its check, then seals it. Consumers treat "sealed and empty" as final. A lane
// claimed concurrently with close() is covered by seq_cst ordering: either close() sees it in
// lanes_used, or its claimer sees the queue closing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shm/ring.hpp"

namespace mpp::shm {

class RingSet {
 public:
  // Per-process producer choice (RingSet::producer): not chosen yet, being chosen by another
  // thread, the main ring, or a lane index >= 0.
  static constexpr int kUnchosen = -1;
  static constexpr int kMainRing = -2;
  static constexpr int kChoosing = -3;
  // Bytes a lane may always hold; beyond that only while all lanes together hold at most the
  // queue's capacity (see Ring::lane).
  static constexpr std::size_t kLaneHold = 1 << 20;
  // Address space all lanes of one queue may reserve together.
  static constexpr std::size_t kLaneBudget = std::size_t{8} << 30;
  static_assert(kLaneHold / 4 >= kMaxBatchBytes + sizeof(RecordHeader),
                "a full put_many record must be small enough to wrap early (Ring::early_wrap)");

  RingSet() = default;
  // How many lanes a queue of `capacity` ring bytes gets (0 .. kMaxLanes): as many as fit in
  // kLaneBudget of address space, or in 1/16 of `address_limit` (the process's RLIMIT_AS, 0 for
  // none), so that reserving lanes never eats much of a limited address space.
  static std::size_t lanes_for(std::size_t capacity, std::size_t address_limit = 0) noexcept;
  // `main` was created by Ring::create; `lanes_memory` is zero-filled memory of
  // lanes * Ring::mapping_bytes(capacity) bytes, 64-aligned (may be null when lanes is 0).
  RingSet(Ring main, std::byte* lanes_memory, std::size_t lanes) noexcept;

  [[nodiscard]] Ring& main() noexcept { return main_; }
  [[nodiscard]] const Ring& main() const noexcept { return main_; }

  // ---- producers -------------------------------------------------------------------------------
  // The ring this process (`self`) puts to: its lane, claimed on the first call (`choice` is the
  // process's state, reset to kUnchosen in a forked child), or the main ring.
  Ring& producer(std::atomic<int>& choice, ProcessTag self) noexcept {
    const int c = choice.load(std::memory_order_acquire);
    if (c >= 0) return lanes_[static_cast<std::size_t>(c)];  // the per-put path: inline
    return c == kMainRing ? main_ : choose(choice, self);
  }
  // Gives this process's lane back (its items stay queued). Call when the process drops the queue.
  void release(std::atomic<int>& choice, ProcessTag self) noexcept;
  // Frees `lane` (a choice value; nothing for the main ring) for other processes while this one
  // may still put there until it exits: for a process on its way out, whose other threads must
  // not move to another lane (that would break their process's order) in its last moments.
  void disown(int lane, ProcessTag self) noexcept;
  // How many lanes this process took over from dead owners (tests, diagnostics).
  static std::uint64_t lane_takeovers() noexcept;

  // ---- consumers -------------------------------------------------------------------------------
  // Rings that may hold items now: ring(0) is the main ring, ring(i) lane i-1.
  [[nodiscard]] std::size_t rings() const noexcept {
    const std::size_t used = main_.header()->lanes_used.load(std::memory_order_acquire);
    return 1 + (used < lanes_.size() ? used : lanes_.size());
  }
  [[nodiscard]] Ring& ring(std::size_t i) noexcept { return i == 0 ? main_ : lanes_[i - 1]; }
  [[nodiscard]] bool any_data() const noexcept;
  // Waits until some ring may have an item (see Ring::wait_data).
  WaitStatus wait_data(const Deadline& d, std::int32_t self, bool self_may_put,
                       std::atomic<int>* spin) noexcept;

  // ---- real-time order between rings (see the header comment) --------------------------------
  // True once items of different rings must be taken in stamp order (never cleared).
  [[nodiscard]] bool ordered() const noexcept {
    return main_.header()->ordered.load(std::memory_order_seq_cst) != 0;
  }
  // A consumer's view while it holds one ring's consumer lock (reset it when it takes another).
  struct Gate {
    std::uint64_t seen_end = 0;  // items below this were published before `limit` was read
    bool checked = false;        // seen_end, ordered and limit are set
    bool ordered = false;
    bool limited = false;     // another ring may hold an item
    bool fresh = false;       // limit was computed for the item now at the head
    std::uint32_t limit = 0;  // the oldest head lower bound among the other rings
    std::size_t older = 0;    // that ring
  };
  enum class Verdict { take, empty, elsewhere };
  // Under ring i's consumer lock: whether the next item of ring i (t's position) may be taken
  // now (take), ring i has no item (empty), or another ring may hold an older item (elsewhere:
  // g.older; leave ring i through leave() and look there). Memory only.
  template <class Txn>
  Verdict gate(Gate& g, std::size_t i, Txn& t, std::int32_t self) noexcept {
    Ring& r = ring(i);
    if (!r.has_item(t)) {
      if (!g.checked) g.ordered = ordered();
      return Verdict::empty;
    }
    if (!g.checked || t.head >= g.seen_end) {
      // The items below seen_end were published before the reads that follow, so an item of
      // another ring that had to come before one of them is visible to those reads.
      g.seen_end = r.seen_tail();
      g.ordered = ordered();
      g.checked = true;
      if (g.ordered) look_around(g, i, r.head_stamp(t), self);
    }
    if (!g.ordered || !g.limited) return Verdict::take;
    // Stamps are unique across rings (but 0): a lower bound equal to ours is below a newer item.
    const std::uint32_t s = r.head_stamp(t);
    if (stamp_older(g.limit, s)) {
      // Rings whose bound was newer than the item first looked at were not asked whether they
      // hold anything: ask now, for this item.
      if (!g.fresh) look_around(g, i, s, self);
      if (g.limited && stamp_older(g.limit, s)) return Verdict::elsewhere;
    }
    g.fresh = false;  // the next item is newer
    return Verdict::take;
  }
  // Publishes what a consumer leaving ring i saw (ordered queues: its next item's lower bound),
  // then releases its lock (Ring::get_publish_unlock).
  template <class Txn>
  void leave(const Gate& g, std::size_t i, Txn& t, bool fenceless = false) noexcept {
    Ring& r = ring(i);
    if (!g.ordered) {
      r.get_publish_unlock(t, fenceless);
      return;
    }
    const std::uint32_t lb = r.next_lb(t);
    r.get_publish_unlock(t, fenceless, &lb);
  }

  // ---- state -----------------------------------------------------------------------------------
  void close(std::int32_t self) noexcept;
  [[nodiscard]] bool closed() const noexcept { return main_.closed(); }
  [[nodiscard]] bool sealed() const noexcept { return main_.sealed(); }
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::uint64_t put_count() const noexcept;

  // ---- JoinableQueue ---------------------------------------------------------------------------
  bool task_done() noexcept { return main_.task_done(put_count()); }
  bool join(const Deadline& d) noexcept;
  [[nodiscard]] std::uint64_t unfinished() const noexcept {
    const std::uint64_t done = main_.done_count();  // first: the total read after it is larger
    return put_count() - done;
  }

 private:
  // Reads every other ring's head lower bound into g.limit / g.older (gate()); refreshes the
  // lower bound of an empty ring that has fallen far behind `stamp` (a stamp being taken now).
  void look_around(Gate& g, std::size_t i, std::uint32_t stamp, std::int32_t self) noexcept;
  void set_ordered() noexcept;
  Ring& choose(std::atomic<int>& choice, ProcessTag self) noexcept;
  int claim(ProcessTag self) noexcept;
  int mark_used(std::size_t lane) noexcept;

  Ring main_;
  std::vector<Ring> lanes_;
};

}  // namespace mpp::shm
