#include "shm/ring_set.hpp"

#include <algorithm>

#include "sys/futex.hpp"
#include "sys/proc.hpp"

namespace mpp::shm {

namespace {
std::atomic<std::uint64_t> g_lane_takeovers{0};
}  // namespace

std::uint64_t RingSet::lane_takeovers() noexcept {
  return g_lane_takeovers.load(std::memory_order_relaxed);
}

std::size_t RingSet::lanes_for(std::size_t capacity, std::size_t address_limit) noexcept {
  std::size_t budget = kLaneBudget;
  if (address_limit != 0) budget = std::min(budget, address_limit / 16);
  return std::min(kMaxLanes, budget / Ring::mapping_bytes(capacity));
}

RingSet::RingSet(Ring main, std::byte* lanes_memory, std::size_t lanes) noexcept : main_(main) {
  lanes_.reserve(lanes);
  for (std::size_t i = 0; i < lanes; ++i) {
    lanes_.push_back(Ring::lane(lanes_memory, i, main_.capacity(), kLaneHold, main_));
  }
}

Ring& RingSet::choose(std::atomic<int>& choice, ProcessTag self) noexcept {
  int c = choice.load(std::memory_order_acquire);
  while (c < 0 && c != kMainRing) {
    if (c == kUnchosen && choice.compare_exchange_weak(c, kChoosing, std::memory_order_acq_rel)) {
      c = claim(self);
      choice.store(c, std::memory_order_release);
      break;
    }
    // Another thread of this process is claiming: it takes a few loads and one CAS.
    sys::cpu_relax();
    c = choice.load(std::memory_order_acquire);
  }
  return c >= 0 ? lanes_[static_cast<std::size_t>(c)] : main_;
}

int RingSet::claim(ProcessTag self) noexcept {
  RingHeader& h = *main_.header();
  // With maxsize, the main ring's counters must see every item to refuse the one too many.
  if (lanes_.empty() || h.maxsize != 0) return kMainRing;
  const std::uint64_t me = self.packed();
  // A free lane that holds nothing first (one never used, or drained), so that a new producer
  // does not queue behind the items a departed one left; then any free lane.
  const std::size_t used = h.lanes_used.load(std::memory_order_acquire);
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t i = 0; i < lanes_.size(); ++i) {
      if (pass == 0 && i < used && lanes_[i].has_data()) continue;
      std::uint64_t owner = 0;
      if (h.lane_owner[i].load(std::memory_order_relaxed) == 0 &&
          h.lane_owner[i].compare_exchange_strong(owner, me, std::memory_order_seq_cst)) {
        return mark_used(i);
      }
    }
  }
  // Every lane has an owner: take over one whose owner has died (a syscall or two per lane, once
  // per process, only when the lanes have run out). The owner's start time tells a dead owner
  // from a new process that was given its pid.
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    std::uint64_t owner = h.lane_owner[i].load(std::memory_order_acquire);
    const ProcessTag o = ProcessTag::unpack(owner);
    if (owner != 0 && owner != me && !sys::process_alive(o.pid, o.start) &&
        h.lane_owner[i].compare_exchange_strong(owner, me, std::memory_order_seq_cst)) {
      g_lane_takeovers.fetch_add(1, std::memory_order_relaxed);
      return mark_used(i);
    }
  }
  // Lanes have run out: this process shares the main ring while others have lanes.
  set_ordered();
  return kMainRing;
}

void RingSet::set_ordered() noexcept {
  // seq_cst, before this process's first put to its second ring: a consumer that sees that put
  // and then reads the flag (seq_cst) sees it set.
  std::uint32_t expected = 0;
  main_.header()->ordered.compare_exchange_strong(expected, 1, std::memory_order_seq_cst);
}

void RingSet::look_around(Gate& g, std::size_t i, std::uint32_t stamp, std::int32_t self) noexcept {
  g.limited = false;
  g.fresh = true;
  const std::size_t n = rings();
  for (std::size_t j = 0; j < n; ++j) {
    if (j == i) continue;
    Ring& r = ring(j);
    const std::uint32_t lb = r.lb();
    // A bound newer than `stamp` cannot hold up this item: it limits the items after it, and
    // gate() asks again (whether the ring holds anything) when one of them reaches it.
    const bool matters = stamp_older(lb, stamp);
    if (matters && !r.has_data_after_lb()) {
      // An empty ring's bound must stay within 2^31 of the stamps it is compared with (they
      // compare modulo 2^32): one 2^29 behind a stamp being taken now is refreshed under its
      // lock (never waited for: a consumer holding the lock refreshes it on leaving). Between two
      // looks fewer stamps than that are handed out: a queue holds far fewer items, and one look
      // covers at most one ring's.
      Ring::GetTxn t;
      if (stamp != 0 && static_cast<std::int32_t>(stamp - lb) > (1 << 29) &&
          r.try_get_lock(t, self)) {
        const std::uint32_t fresh = r.next_lb(t);
        r.get_publish_unlock(t, false, &fresh);
      }
      continue;
    }
    if (!g.limited || stamp_older(lb, g.limit)) {
      g.limit = lb;
      g.older = j;
      g.limited = true;
    }
  }
}

int RingSet::mark_used(std::size_t lane) noexcept {
  RingHeader& h = *main_.header();
  const auto want = static_cast<std::uint32_t>(lane + 1);
  // A second ring gets a producer: from now on items carry stamps (see ordered()).
  if (lane >= 1) set_ordered();
  std::uint32_t used = h.lanes_used.load(std::memory_order_seq_cst);
  while (used < want &&
         !h.lanes_used.compare_exchange_weak(used, want, std::memory_order_seq_cst)) {
  }
  // Pairs with close(): it stores kClosing and then reads lanes_used, we did the reverse (seq_cst
  // both). If close() did not see this lane, we see the queue closing here, and so does the
  // put that follows (it re-reads the flag under the lane's lock).
  (void)h.closed.load(std::memory_order_seq_cst);
  return static_cast<int>(lane);
}

void RingSet::release(std::atomic<int>& choice, ProcessTag self) noexcept {
  disown(choice.exchange(kUnchosen, std::memory_order_acq_rel), self);
}

void RingSet::disown(int lane, ProcessTag self) noexcept {
  if (lane < 0) return;
  std::uint64_t owner = self.packed();
  main_.header()->lane_owner[lane].compare_exchange_strong(owner, 0, std::memory_order_acq_rel);
}

bool RingSet::any_data() const noexcept {
  if (main_.has_data()) return true;
  const std::size_t n = rings();
  for (std::size_t i = 1; i < n; ++i) {
    if (lanes_[i - 1].has_data()) return true;
  }
  return false;
}

WaitStatus RingSet::wait_data(const Deadline& d, std::int32_t self, bool self_may_put,
                              std::atomic<int>* spin) noexcept {
  if (lanes_.empty()) return main_.wait_data(d, self, self_may_put, spin);
  return main_.wait_data(
      d, self, self_may_put, spin,
      [](const void* set) { return static_cast<const RingSet*>(set)->any_data(); }, this);
}

void RingSet::close(std::int32_t self) noexcept {
  RingHeader& h = *main_.header();
  std::uint32_t state = 0;
  if (!h.closed.compare_exchange_strong(state, kClosing, std::memory_order_seq_cst) &&
      state == kSealed) {
    return;
  }
  // Every put that read "open" holds its ring's producer lock until it has published: taking each
  // lane's lock once waits those out (and producers sleeping for space there see kClosing). Lanes
  // claimed after this read see kClosing (see mark_used). Ring::close then does the same for the
  // main ring, seals the queue and wakes everyone waiting on the main ring.
  const std::size_t n = rings();
  for (std::size_t i = 1; i < n; ++i) {
    RingHeader& lane = *lanes_[i - 1].header();
    if (lane.prod_lock.lock(self) == Acquire::owner_died) lane.prod.recover();
    lane.prod_lock.unlock();
    lane.space_wake.bump_and_wake();
  }
  main_.close(self);
}

std::size_t RingSet::size() const noexcept {
  std::size_t total = main_.size();
  const std::size_t n = rings();
  for (std::size_t i = 1; i < n; ++i) total += lanes_[i - 1].size();
  return total;
}

std::uint64_t RingSet::put_count() const noexcept {
  std::uint64_t total = main_.put_count();
  const std::size_t n = rings();
  for (std::size_t i = 1; i < n; ++i) total += lanes_[i - 1].put_count();
  return total;
}

bool RingSet::join(const Deadline& d) noexcept {
  return main_.join(
      d, [](const void* set) { return static_cast<const RingSet*>(set)->unfinished(); }, this);
}

}  // namespace mpp::shm
