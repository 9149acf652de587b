// The parent side of mpp::Pool (the pool core's local transport): forks the workers, lays out
// their shared slots and rings, hands chunks to the least-loaded worker, reads results back, and
// handles lost workers, timeouts, close/join/terminate. The worker side is src/pool/worker.cpp,
// the message format src/pool/wire.hpp, what both pool engines share src/pool/core.hpp.
//
// Threads: every member locks the engine's DriverGate (src/pool/driver.hpp says who drives and
// who waits); whoever holds it may pump. The driver sleeps on PoolShared::to_parent with the
// mutex released, watching only shared-memory counters (the rings) and kick_gen_, which a thread
// that made the driver's own wait come true bumps before notifying to_parent.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "mpp/pool.hpp"
#include "mpp/process.hpp"
#include "pool/core.hpp"
#include "pool/driver.hpp"
#include "pool/launch.hpp"
#include "pool/progress.hpp"
#include "pool/wire.hpp"
#include "pool/worker.hpp"
#include "sys/failpoint.hpp"
#include "sys/mem.hpp"
#include "sys/proc.hpp"
#include "sys/sched.hpp"

namespace mpp::detail {

namespace {

using wire::PoolShared;
using wire::ResultHeader;
using wire::TaskHeader;
using wire::WorkerShared;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Ring sizes: small enough that first-touching them is cheap when many workers start, large
// enough that typical chunks and results cross in one piece. Bigger messages stream through.
constexpr std::size_t kTaskRing = 64 * 1024;
constexpr std::size_t kResultRing = 128 * 1024;
// Chunks a worker holds at once: one running, one waiting in its ring so it never idles between
// chunks; more would hurt balancing at the end of a call.
constexpr std::size_t kDepth = 2;
// No busy-waiting before sleeping on the futex: on the 2-core reference VM, shared with other
// work, spinning measured 2-4x slower round trips than sleeping at once (the spinner holds the
// core the other side needs). Kept as knobs for dedicated machines.
constexpr auto kParentSpin = 0us;
constexpr auto kCheckInterval = 10ms;  // how often a waiting parent looks for dead workers
constexpr unsigned kMaxProcesses = 1024;
constexpr std::uint32_t kMaxResends = 3;
// cancel() of a running task: SIGTERM, then SIGKILL if the worker still lives this long after
// (docs/design.md, "Cancel"); meanwhile dead workers are looked for every kStopCheck.
constexpr auto kCancelGrace = 100ms;
constexpr auto kStopCheck = 100us;
static_assert(kDepth < wire::kDropSlots, "a worker's dropped places must not collide");

using LocalBatch = Batch<LocalTransport>;
using Lock = DriverGate::Lock;

// The engine whose progress callback (PoolOptions::on_progress) this thread is running, if any:
// the callback runs while that engine's mutex is held, so a call back into the same pool must not
// lock it again (see Engine::lock).
thread_local const Engine* t_in_callback = nullptr;

struct Record {
  std::shared_ptr<LocalBatch> batch;
  std::int64_t first = 0;
  std::uint32_t count = 0;
  std::vector<std::int64_t> skip;  // sorted; their bytes are not in the payload
  ByteBuffer msg;                  // header + skip list + payload, as sent
  // Where each item's bytes end in the payload (an item in `skip` takes none); empty while the
  // batch's inputs have a fixed size. See leave_out().
  std::vector<std::uint64_t> ends;
  std::uint32_t resends = 0;
  // Its call was cancelled (Engine::cancel): already settled with the batch; whatever comes back
  // for it is discarded, and it is never sent again. Kept while (part of) it is in a worker's
  // ring, so that the worker's reply still finds it.
  bool dropped = false;
};

struct Worker {
  WorkerShared* sh = nullptr;
  WorkerProcess child;  // our child, or a zygote's or forkserver's (launch.hpp)
  bool alive = false;
  std::deque<Record> held;  // in the order sent; [0, nsent) fully written to the ring
  std::size_t nsent = 0;
  std::size_t sent_bytes = 0;  // of held[nsent]
  std::uint64_t received = 0;  // results of this incarnation
  std::uint64_t dispatched = 0;
  ByteBuffer in;  // result being assembled
  std::size_t in_have = 0;
  std::size_t in_need = sizeof(ResultHeader);
  PoolWorkerStats stats;  // the slot's counters (busy time of past processes included)
  // task_timeout sampling
  std::uint64_t seen_started = 0;
  std::int64_t seen_current = -2;
  Clock::time_point seen_at{};
  // Being stopped by cancel(): SIGTERM sent, SIGKILL at stop_deadline; it gets no more chunks.
  bool stopping = false;
  bool stop_killed = false;
  Clock::time_point stop_deadline{};
};

std::exception_ptr lost_error(pid_t pid, std::int64_t index, const WorkerProcess& child,
                              const sys::CrashFrames& crash, bool timed_out,
                              std::chrono::milliseconds timeout) {
  const int st = child.exitcode().value_or(0);
  const int sig = st < 0 ? -st : 0;
  const int code = st < 0 ? 0 : st;
  if (timed_out) {
    return std::make_exception_ptr(WorkerLost(
        pid, index, sig, code,
        "worker " + std::to_string(pid) + " lost while running task " + std::to_string(index) +
            ": killed by signal 9 (SIGKILL) after exceeding task_timeout of " +
            std::to_string(timeout.count()) + " ms"));
  }
  // The worker is dead: its crash handler (if the signal was one it catches) has finished.
  return std::make_exception_ptr(WorkerLost(pid, index, sig, code, sys::symbolize(crash)));
}

}  // namespace

class Engine {
 public:
  Engine(const PoolOptions& options, unsigned n, bool per_call)
      : options_(options), launcher_(options_, per_call) {
    (void)sys::prepare_crash_stacks();  // once per process; workers' crash handlers need it
    const std::size_t slot = round_up(sizeof(WorkerShared), sys::page_size());
    const std::size_t head = round_up(sizeof(PoolShared), sys::page_size());
    const std::size_t per = slot + kTaskRing + kResultRing;
    map_ = launcher_.map_shared(head + per * n);
    ps_ = new (map_.data()) PoolShared();
    workers_.resize(n);
    for (unsigned i = 0; i < n; ++i) {
      std::byte* base = map_.bytes() + head + per * i;
      auto* sh = new (base) WorkerShared();
      sh->tasks.attach(base + slot, kTaskRing);
      sh->results.attach(base + slot + kTaskRing, kResultRing);
      workers_[i].sh = sh;
    }
    setup_.name = "mpp-pool-worker";
    setup_.has_nice = options_.nice.has_value();
    setup_.nice = options_.nice.value_or(0);
    setup_.has_ionice = options_.ionice.has_value();
    setup_.ionice = options_.ionice.value_or(0);
    setup_.memory_limit = options_.memory_limit.value_or(0);
    setup_.die_with_parent = true;
    setup_.parent = sys::self_pid();
    std::vector<WorkerShared*> slots;
    for (const auto& w : workers_) slots.push_back(w.sh);
    launcher_.prepare(ps_, std::move(slots), setup_);
    try {
      for (auto& w : workers_) spawn(w);
    } catch (...) {
      terminate();
      throw;
    }
    watch_.reserve(n);
    check_interval_ = kCheckInterval;
    if (options_.task_timeout) {
      check_interval_ =
          std::clamp<Clock::duration>(*options_.task_timeout / 4, 1ms, kCheckInterval);
    }
    next_check_ = Clock::now() + check_interval_;
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() { terminate(); }

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()); }
  StartMethod start_method() const noexcept { return launcher_.method(); }
  bool accepting() const noexcept {
    const Lock lk = lock_for_reading();
    return accepting_ && !broken_;
  }
  std::exception_ptr broken() const noexcept {
    const Lock lk = lock_for_reading();
    return broken_;
  }

  // The engine's mutex, for every member and for the handles (engine_lock). Throws
  // std::logic_error when this thread runs the engine's progress callback (it holds the mutex
  // already, in the middle of a pump).
  [[nodiscard]] Lock lock() const {
    if (t_in_callback == this) {
      throw std::logic_error(
          "mpp::Pool: a progress callback (PoolOptions::on_progress) cannot call into its own "
          "pool or wait on its results: it runs while the pool is being driven");
    }
    return Lock(gate_.mutex());
  }

  void submit(std::shared_ptr<LocalBatch> b) {
    Lock lk = lock();
    if (broken_) std::rethrow_exception(broken_);
    if (!accepting_) throw std::logic_error("pool is closed");
    b->progress.started = Clock::now();
    b->progress.last = b->progress.started;
    batches_.push_back(std::move(b));
    if (pump_once()) changed();
  }

  void close() noexcept {
    if (t_in_callback == this) {
      accepting_ = false;  // this thread holds the mutex already
      return;
    }
    const Lock lk(gate_.mutex());
    accepting_ = false;
  }

  bool wait(const std::function<bool()>& done, Clock::time_point deadline) {
    Lock lk = lock();
    return wait_locked(lk, done, deadline);
  }

  void poll() {
    const Lock lk = lock();
    bool progressed = pump_once();
    const auto now = Clock::now();
    if (now >= next_check_) {
      check_workers_now(now);
      progressed = pump_once() || true;
    }
    if (progressed) changed();
  }

  void join() {
    Lock lk = lock();
    if (joined_) return;
    if (accepting_) throw std::logic_error("join() called before close()");
    (void)wait_locked(
        lk, [&] { return idle(); }, Clock::time_point::max());
    if (joined_) return;  // another thread's join() (or a terminate()) finished meanwhile
    // Everything is done: ask each worker to exit, then reap it.
    for (auto& w : workers_) {
      if (!w.alive) continue;
      TaskHeader h{};
      h.magic = wire::kTaskMagic;
      h.kind = wire::kKindStop;
      const auto* p = reinterpret_cast<const std::byte*>(&h);
      std::size_t left = sizeof h;
      const auto deadline = Clock::now() + 5s;
      while (left > 0 && Clock::now() < deadline && !w.child.poll()) {
        const std::size_t k = w.sh->tasks.try_write(p, left);
        p += k;
        left -= k;
        w.sh->task_event.notify();
      }
    }
    for (auto& w : workers_) {
      if (!w.alive) continue;
      if (!w.child.wait_for(5s)) {
        w.child.signal(SIGKILL);
        w.child.wait();
      }
      w.alive = false;
    }
    launcher_.shutdown();
    // A lazily consumed imap still open has no workers left to run the rest of its input.
    abort_all("pool joined");
    joined_ = true;
    ended();
  }

  void terminate() noexcept {
    if (t_in_callback == this) {
      // Mid-pump in this thread: done by the pump's caller once the callback returned.
      accepting_ = false;
      terminate_pending_ = true;
      return;
    }
    const Lock lk(gate_.mutex());
    terminate_locked();
  }

  PoolStats stats() const {
    const Lock lk = lock_for_reading();
    return stats_locked();
  }

  std::vector<pid_t> pids() const {
    const Lock lk = lock_for_reading();
    std::vector<pid_t> out;
    for (const auto& w : workers_) {
      if (w.alive) out.push_back(w.child.pid());
    }
    return out;
  }

  // engine_cancel: `b` produces nothing more, its chunks that have not left the parent are
  // dropped, those in a worker's ring are skipped by the worker, and (with `stop_running`) a
  // worker running one of them is stopped. Every record of `b` is settled here, so `b` is
  // finished on return. Allocates nothing (cancel_call holds the error).
  void cancel(LocalBatch& b, bool stop_running) noexcept {
    const Lock lk = lock_for_reading();
    b.exhausted = true;
    for (auto it = resend_.begin(); it != resend_.end();) {
      if (it->batch.get() == &b) {
        settle_dropped(*it);
        it = resend_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& w : workers_) {
      if (w.alive) cancel_on(w, b, stop_running);
    }
    // Passengers waiting on `b` are done; a sleeping driver must look at a stopped worker sooner
    // than its sleep would end (next_check_ moved), so it is kicked whether or not it is done.
    (void)gate_.progressed();
    kick();
  }

 private:
  // For members that only read: also callable from the engine's own progress callback, whose
  // thread holds the mutex already (then the lock is empty).
  [[nodiscard]] Lock lock_for_reading() const noexcept {
    if (t_in_callback == this) return Lock();
    return Lock(gate_.mutex());
  }

  // The wait of wait() and join(): done() is true, the deadline passed, or this thread drove the
  // engine until one of those. `lk` is held on entry and on return.
  bool wait_locked(Lock& lk, const std::function<bool()>& done, Clock::time_point deadline) {
    if (done()) return true;
    if (!gate_.enter(lk, done, deadline)) return done();
    const DriverScope scope(gate_);
    for (;;) {
      if (done()) return true;
      const bool progressed = pump_once();
      if (progressed) changed();
      auto now = Clock::now();
      if (now >= next_check_) {
        check_workers_now(now);
        changed();
        continue;
      }
      if (progressed) continue;
      if (now >= deadline) return done();
      const auto until = std::min(deadline, next_check_);
      sleep_unlocked(lk, std::chrono::duration_cast<std::chrono::nanoseconds>(until - now));
    }
  }

  // The driver's sleep: until a worker reports progress (to_parent), another thread kicks it,
  // or `timeout`. The mutex is released meanwhile, so other threads submit and collect; what the
  // sleep watches is read without it: ring counters (atomics) of the workers alive now, and
  // kick_gen_.
  void sleep_unlocked(Lock& lk, std::chrono::nanoseconds timeout) {
    watch_.clear();
    for (const auto& w : workers_) {
      if (w.alive) watch_.push_back(Watch{w.sh, !w.stopping && w.nsent < w.held.size()});
    }
    const std::uint32_t gen = kick_gen_.load(std::memory_order_seq_cst);
    lk.unlock();
    ps()->to_parent.wait(
        [&] {
          if (kick_gen_.load(std::memory_order_seq_cst) != gen) return true;
          for (const Watch& v : watch_) {
            if (v.sh->results.readable() > 0) return true;
            if (v.has_bytes && v.sh->tasks.writable() > 0) return true;
          }
          return false;
        },
        kParentSpin, timeout);
    lk.lock();
  }

  // One pump, then a terminate() that the progress callback asked for.
  bool pump_once() {
    bool progressed = pump();
    if (terminate_pending_) {
      terminate_locked();
      progressed = true;
    }
    return progressed;
  }

  void check_workers_now(Clock::time_point now) {
    check_workers(now);
    next_check_ = now + current_check_interval();
    if (terminate_pending_) terminate_locked();
  }

  // The state changed (results delivered, items failed): wakes the passengers it satisfies, and
  // the driver if it sleeps and its own wait is now over.
  void changed() noexcept {
    if (gate_.progressed()) kick();
  }
  // Everything may have ended (join, terminate): every waiter re-checks.
  void ended() noexcept {
    gate_.wake_all();
    kick();
  }
  void kick() noexcept {
    kick_gen_.fetch_add(1, std::memory_order_seq_cst);
    ps()->to_parent.notify();
  }

  void terminate_locked() noexcept {
    terminate_pending_ = false;
    accepting_ = false;
    for (auto& w : workers_) {
      if (w.alive) w.child.signal(SIGKILL);
    }
    for (auto& w : workers_) {
      if (w.alive) {
        try {
          w.child.wait();
        } catch (...) {
        }
        w.alive = false;
      }
    }
    launcher_.shutdown();
    abort_all("pool terminated");
    joined_ = true;
    ended();
  }

  PoolStats stats_locked() const {
    PoolStats out;
    for (const auto& w : workers_) {
      PoolWorkerStats s = w.stats;
      s.busy += std::chrono::nanoseconds(w.sh->busy_ns.load(std::memory_order_relaxed));
      s.pid = w.alive ? w.child.pid() : 0;
      s.peak_rss = w.alive ? sys::peak_resident_bytes(s.pid) : 0;
      out.tasks_done += s.tasks_done;
      out.restarts += s.restarts;
      out.workers.push_back(s);
    }
    return out;
  }

  static std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }
  PoolShared* ps() const noexcept { return ps_; }

  // Nothing in flight, and no batch that could still produce work. An imap whose window is full
  // waits for its consumer, not for the workers: it counts as idle (join() then fails its rest).
  bool idle() const {
    if (!resend_.empty()) return false;
    for (const auto& w : workers_) {
      if (!w.held.empty()) return false;
    }
    for (const auto& b : batches_) {
      if (!b->finished() && !b->abandoned && (b->in_flight != 0 || b->may_produce())) return false;
    }
    return true;
  }

  void spawn(Worker& w) {
    WorkerShared* sh = w.sh;
    sh->task_event.reset();
    sh->space_event.reset();
    sh->parent_wants_space.store(0, std::memory_order_relaxed);
    sh->tasks.reset();
    sh->results.reset();
    sh->chunks_started.store(0, std::memory_order_relaxed);
    sh->current.store(-1, std::memory_order_relaxed);
    sh->crash.state.store(sys::CrashFrames::kNone, std::memory_order_relaxed);
    for (auto& d : sh->dropped) d.store(0, std::memory_order_relaxed);
    // The slot's busy time so far stays in its stats; the new process counts from zero.
    w.stats.busy += std::chrono::nanoseconds(sh->busy_ns.exchange(0, std::memory_order_relaxed));
    sh->state.store(wire::kStarting, std::memory_order_relaxed);
    sh->fail_type[0] = '\0';
    sh->fail_message[0] = '\0';
    w.held.clear();
    w.nsent = 0;
    w.sent_bytes = 0;
    w.received = 0;
    w.dispatched = 0;
    w.in_have = 0;
    w.in_need = sizeof(ResultHeader);
    w.seen_current = -2;
    w.stopping = false;
    w.stop_killed = false;
    w.child = launcher_.start(static_cast<unsigned>(&w - workers_.data()));
    w.alive = true;
  }

  bool pump() {
    bool progress = false;
    for (auto& w : workers_) {
      if (w.alive && read_from(w)) progress = true;
    }
    if (dispatch()) progress = true;
    for (auto& w : workers_) {
      if (w.alive && !w.stopping && write_to(w)) progress = true;
    }
    return progress;
  }

  bool read_from(Worker& w) {
    bool progress = false;
    auto& ring = w.sh->results;
    for (;;) {
      if (w.in.size() < w.in_need) w.in.resize(w.in_need);
      const std::size_t k = ring.try_read(w.in.data() + w.in_have, w.in_need - w.in_have);
      if (k == 0) break;
      progress = true;
      w.in_have += k;
      w.sh->space_event.notify();
      if (w.in_have < w.in_need) continue;
      ResultHeader h;
      std::memcpy(&h, w.in.data(), sizeof h);
      const std::size_t total = sizeof h + h.results_len + h.errors_len;
      if (w.in_need < total) {
        w.in_need = total;
        continue;
      }
      on_result(w, h);
      w.in_have = 0;
      w.in_need = sizeof(ResultHeader);
      if (!w.alive) break;
    }
    return progress;
  }

  void on_result(Worker& w, const ResultHeader& h) {
    if (w.held.empty() || h.magic != wire::kResultMagic || w.held.front().first != h.first_index) {
      // Cannot happen with a sane worker; treat it as lost rather than mis-deliver.
      w.child.signal(SIGKILL);
      return;
    }
    Record rec = std::move(w.held.front());
    w.held.pop_front();
    --w.nsent;
    ++w.received;
    LocalBatch& b = *rec.batch;
    if (!rec.dropped) w.stats.tasks_done += h.count;
    if (!b.abandoned && !rec.dropped) {
      ChunkReply r;
      r.first_index = h.first_index;
      r.count = h.count;
      r.results = std::span<const std::byte>(w.in.data() + sizeof h, h.results_len);
      r.records = std::span<const std::byte>(w.in.data() + sizeof h + h.results_len, h.errors_len);
      r.nerrors = h.nerrors;
      r.skipped = rec.skip;
      r.pid = w.child.pid();
      deliver_reply(b, r, failures_);
      MPP_FAILPOINT("pool.parent.after_deliver");
    }
    finish_record(rec);
    if (options_.maxtasksperchild != 0 && w.received >= options_.maxtasksperchild) {
      // It exits after this result by itself; reap it and start its replacement.
      w.child.wait_for(2s) || (w.child.signal(SIGKILL), w.child.wait(), true);
      w.alive = false;
      ++w.stats.recycled;
      requeue(w);
      respawn(w);
    }
  }

  void finish_record(Record& rec) {
    LocalBatch& b = *rec.batch;
    if (!rec.dropped) {  // else settled when its call was cancelled
      --b.in_flight;
      b.progress.items_done += rec.count;
      report_progress(b, false);
    }
    if (free_.size() < 64) {
      rec.msg.clear();
      free_.push_back(std::move(rec.msg));
    }
    if (rec.ends.capacity() != 0 && free_ends_.size() < 64) {
      rec.ends.clear();
      free_ends_.push_back(std::move(rec.ends));
    }
  }

  void report_progress(LocalBatch& b, bool force) {
    BatchProgress& bp = b.progress;
    if (!bp.show || b.abandoned || b.cancelled) return;
    if (!options_.progress && !options_.on_progress) return;
    const auto now = Clock::now();
    const bool last = b.finished();
    if (bp.final_made) return;
    if (!last && !force && now - bp.last < 100ms) return;
    bp.final_made = last;
    bp.last = now;
    PoolProgress p;
    p.done = bp.items_done;
    p.total = b.exhausted && b.total < 0 ? bp.items_done : b.total;
    p.elapsed = now - bp.started;
    p.finished = last;
    if (options_.progress) draw_progress(p);
    if (options_.on_progress) {
      const Engine* outer = std::exchange(t_in_callback, this);
      try {
        options_.on_progress(p);
      } catch (...) {
        // A failing progress callback must not break the pool's bookkeeping.
      }
      t_in_callback = outer;
    }
  }

  bool next_record(Record& r) {
    if (!resend_.empty()) {
      r = std::move(resend_.front());
      resend_.pop_front();
      return true;
    }
    for (auto it = batches_.begin(); it != batches_.end();) {
      LocalBatch& b = **it;
      if (b.abandoned) b.exhausted = true;
      if (b.exhausted) {
        if (b.in_flight == 0) {
          report_progress(b, true);
          it = batches_.erase(it);
        } else {
          ++it;
        }
        continue;
      }
      if (!b.may_produce()) {
        ++it;
        continue;
      }
      ByteBuffer msg;
      if (!free_.empty()) {
        msg = std::move(free_.back());
        free_.pop_back();
      }
      msg.resize(sizeof(TaskHeader));
      std::vector<std::uint64_t> ends;
      if (!free_ends_.empty()) {
        ends = std::move(free_ends_.back());
        free_ends_.pop_back();
      }
      std::int64_t first = 0;
      const std::uint32_t n = produce_chunk(b, msg, first, ends);
      if (n == 0) continue;  // exhausted: re-examined (and possibly erased) by the loop
      TaskHeader h{};
      h.magic = wire::kTaskMagic;
      h.kind = wire::kKindTask;
      launcher_.describe(b, h);
      h.first_index = first;
      h.count = n;
      h.nskip = 0;
      h.payload_len = msg.size() - sizeof h;
      h.seed = options_.seed;
      std::memcpy(msg.data(), &h, sizeof h);
      r.batch = *it;
      r.first = first;
      r.count = n;
      r.skip.clear();
      r.msg = std::move(msg);
      r.ends = std::move(ends);
      r.resends = 0;
      ++b.in_flight;
      return true;
    }
    return false;
  }

  bool dispatch() {
    bool progress = false;
    const auto usable = [&](const Worker& w) {
      return w.alive && !w.stopping && w.held.size() < kDepth &&
             (options_.maxtasksperchild == 0 || w.dispatched < options_.maxtasksperchild);
    };
    const auto load = [](const Worker& w) { return w.held.size(); };
    for (;;) {
      Worker* best = least_loaded(workers_.begin(), workers_.end(), usable, load);
      if (best == nullptr) break;
      Record r;
      if (!next_record(r)) break;
      best->held.push_back(std::move(r));
      ++best->dispatched;
      progress = true;
    }
    return progress;
  }

  bool write_to(Worker& w) {
    bool progress = false;
    while (w.nsent < w.held.size()) {
      Record& r = w.held[w.nsent];
      const std::size_t k =
          w.sh->tasks.try_write(r.msg.data() + w.sent_bytes, r.msg.size() - w.sent_bytes);
      if (k == 0) break;
      progress = true;
      w.sent_bytes += k;
      if (w.sent_bytes == r.msg.size()) {
        ++w.nsent;
        w.sent_bytes = 0;
      }
    }
    if (progress) w.sh->task_event.notify();
    if (w.nsent < w.held.size()) {
      // Bytes left over: ask the worker to wake us when it made room, then look once more in
      // case it already did (the flag and the ring are checked in opposite orders on each side).
      (void)w.sh->parent_wants_space.exchange(1, std::memory_order_acq_rel);
    }
    return progress;
  }

  void check_workers(Clock::time_point now) {
    for (auto& w : workers_) {
      if (!w.alive) continue;
      if (w.child.poll()) {
        on_death(w, false);
        continue;
      }
      if (w.stopping) {
        escalate_stop(w, now);
        continue;
      }
      if (!options_.task_timeout) continue;
      const std::uint64_t started = w.sh->chunks_started.load(std::memory_order_acquire);
      const std::int64_t cur = w.sh->current.load(std::memory_order_relaxed);
      if (started <= w.received || w.held.empty()) {
        w.seen_current = -2;
        continue;
      }
      if (started != w.seen_started || cur != w.seen_current) {
        w.seen_started = started;
        w.seen_current = cur;
        w.seen_at = now;
      } else if (now - w.seen_at > *options_.task_timeout) {
        w.child.signal(SIGKILL);
        w.child.wait();
        on_death(w, true);
      }
    }
  }

  // Puts everything the worker held back in line (front), in order; cancelled chunks are let go.
  void requeue(Worker& w) {
    for (auto it = w.held.rbegin(); it != w.held.rend(); ++it) {
      if (it->dropped) {
        finish_record(*it);
      } else {
        resend_.push_front(std::move(*it));
      }
    }
    w.held.clear();
    w.nsent = 0;
    w.sent_bytes = 0;
  }

  void on_death(Worker& w, bool timed_out) {
    const pid_t pid = w.child.pid();
    // Results it finished before dying are still in its ring: take them first.
    read_from(w);
    // Its last result may have been its maxtasksperchild-th: then on_result already reaped and
    // replaced it, and the slot now holds a new, live worker.
    if (w.child.pid() != pid) return;
    if (w.stopping) {
      on_stopped(w);
      return;
    }
    w.alive = false;
    if (w.sh->state.load(std::memory_order_acquire) == wire::kInitFailed) {
      broken_ = std::make_exception_ptr(
          RemoteError(w.sh->fail_type, w.sh->fail_message, pid, RemoteError::kNoTask));
      requeue(w);
      abort_all("pool broken");
      return;
    }
    const std::uint64_t started = w.sh->chunks_started.load(std::memory_order_acquire);
    const bool had_work = started > w.received;
    if (timed_out) {
      ++w.stats.timeouts;
    } else if (!had_work && w.child.exitcode().value_or(-1) == 0) {
      ++w.stats.recycled;  // left between chunks by itself (max_memory_per_child)
    } else {
      ++w.stats.crashes;
    }
    if (had_work && !w.held.empty() && !w.held.front().dropped) {
      // The front chunk was running: fail the item it was on, re-run the rest of it elsewhere.
      Record& r = w.held.front();
      const std::int64_t cur = w.sh->current.load(std::memory_order_relaxed);
      const bool in_chunk = cur >= r.first && cur < r.first + static_cast<std::int64_t>(r.count) &&
                            !std::binary_search(r.skip.begin(), r.skip.end(), cur);
      if (in_chunk) {
        // The worker stores the index before decoding the item, so `cur` is the item whose
        // decoding or run killed it: it fails alone, is never sent again, and the others of
        // its chunk (those done before it too: their results died with the worker) run again.
        r.batch->fail(cur, lost_error(pid, cur, w.child, w.sh->crash, timed_out,
                                      options_.task_timeout.value_or(0ms)));
        const bool cut = leave_out(r, cur);
        if (!cut || r.skip.size() == r.count) {
          // Nothing left to run, or the rest cannot be told apart from the dead item's bytes
          // (cannot happen: every batch gives sizes or ends): fail the rest, never re-run it.
          if (cut) {
            finish_record(r);
          } else {
            fail_record(r, lost_error(pid, -1, w.child, w.sh->crash, timed_out, 0ms));
          }
          w.held.pop_front();
          --w.nsent;
        }
      } else if (++r.resends > kMaxResends) {
        // It keeps killing workers before reaching any item: give up on the whole chunk.
        fail_record(r, lost_error(pid, -1, w.child, w.sh->crash, timed_out, 0ms));
        w.held.pop_front();
        --w.nsent;
      }
    }
    requeue(w);
    if (accepting_ || !idle()) respawn(w);
  }

  void respawn(Worker& w) {
    try {
      ++w.stats.restarts;
      spawn(w);
    } catch (...) {
      // No replacement possible (fork refused): the pool carries on with fewer workers; if
      // none is left, everything outstanding fails with this error.
      bool any = false;
      for (const auto& o : workers_) any = any || o.alive;
      if (!any) {
        broken_ = std::current_exception();
        abort_all("pool broken");
      }
    }
  }

  // Leaves item `idx` of the record out of its re-send: adds it to the skip list and cuts its bytes
  // from the payload, so that no worker decodes it again (its decoder may be what crashed; a
  // worker skips listed items without touching their bytes). False when its bytes cannot be
  // located; it is in the skip list either way.
  static bool leave_out(Record& r, std::int64_t idx) {
    r.skip.insert(std::upper_bound(r.skip.begin(), r.skip.end(), idx), idx);
    TaskHeader h;
    std::memcpy(&h, r.msg.data(), sizeof h);
    if (r.ends.empty() && r.batch->input_size != 0) {
      // Fixed-size inputs: this is the first cut, so the payload still holds every item.
      r.ends.resize(r.count);
      for (std::uint32_t j = 0; j < r.count; ++j) r.ends[j] = (j + 1) * r.batch->input_size;
    }
    const auto pos = static_cast<std::size_t>(idx - r.first);
    if (r.ends.size() != r.count || r.ends.back() != h.payload_len) return false;
    const std::uint64_t begin = pos == 0 ? 0 : r.ends[pos - 1];
    const std::uint64_t end = r.ends[pos];
    const std::byte* payload = r.msg.data() + sizeof h + h.nskip * sizeof(std::int64_t);
    ByteBuffer msg;
    h.nskip = static_cast<std::uint32_t>(r.skip.size());
    h.payload_len -= end - begin;
    msg.resize(sizeof h + r.skip.size() * sizeof(std::int64_t) + h.payload_len);
    std::byte* out = msg.data();
    std::memcpy(out, &h, sizeof h);
    out += sizeof h;
    std::memcpy(out, r.skip.data(), r.skip.size() * sizeof(std::int64_t));
    out += r.skip.size() * sizeof(std::int64_t);
    std::memcpy(out, payload, begin);
    std::memcpy(out + begin, payload + end, r.ends.back() - end);
    for (std::size_t j = pos; j < r.ends.size(); ++j) r.ends[j] -= end - begin;
    r.msg = std::move(msg);
    return true;
  }

  void fail_record(Record& r, const std::exception_ptr& e) {
    fail_items(*r.batch, r.first, r.count, r.skip, [&](std::int64_t) { return e; });
    finish_record(r);
  }

  // Fails every outstanding item and ends every batch (terminate, or a broken pool).
  void abort_all(const char* why) noexcept {
    try {
      auto error_for = [&](std::int64_t idx) {
        if (broken_) return broken_;
        return std::make_exception_ptr(
            WorkerLost(0, idx, SIGKILL, 0,
                       std::string(why) + " before task " + std::to_string(idx) + " finished"));
      };
      auto fail_all = [&](Record& r) {
        if (r.dropped) return;  // settled when its call was cancelled
        fail_items(*r.batch, r.first, r.count, r.skip, error_for);
        --r.batch->in_flight;
      };
      for (auto& w : workers_) {
        for (auto& r : w.held) fail_all(r);
        w.held.clear();
        w.nsent = 0;
        w.sent_bytes = 0;
      }
      for (auto& r : resend_) fail_all(r);
      resend_.clear();
      for (auto& b : batches_) {
        if (!b->exhausted && !b->batch_error) {
          b->batch_error =
              broken_ ? broken_
                      : std::make_exception_ptr(WorkerLost(
                            0, -1, SIGKILL, 0, std::string(why) + " before all tasks ran"));
        }
        b->exhausted = true;
      }
      batches_.clear();
    } catch (...) {
      // Out of memory while failing: the batches are still marked finished below.
      for (auto& b : batches_) b->exhausted = true;
      batches_.clear();
    }
  }

  // ---- cancel: dropping a call's chunks, stopping the workers that run them ----

  static void settle_dropped(Record& r) noexcept {
    --r.batch->in_flight;
    r.dropped = true;
  }

  void cancel_on(Worker& w, LocalBatch& b, bool stop_running) noexcept {
    // held[0, written) is (partly) in the worker's ring; the rest has not left the parent.
    const std::size_t written = w.nsent + (w.sent_bytes > 0 ? 1 : 0);
    for (std::size_t k = written; k < w.held.size();) {
      if (w.held[k].batch.get() == &b) {
        settle_dropped(w.held[k]);
        w.held.erase(w.held.begin() + static_cast<std::ptrdiff_t>(k));
        --w.dispatched;  // never sent: maxtasksperchild counts the chunks the worker gets
      } else {
        ++k;
      }
    }
    bool running = false;
    for (std::size_t k = 0; k < written; ++k) {
      Record& r = w.held[k];
      if (r.batch.get() != &b || r.dropped) continue;
      // Its place among the chunks this process was sent. Each side stores its word and then
      // loads the other's, both seq_cst, so at least one sees the other's store: the worker skips
      // the chunk, or we see that it started it (then it is stopped below, or its result is
      // discarded when it comes; a chunk both skipped and seen started only costs a restart).
      const std::uint64_t place = w.received + k + 1;
      w.sh->dropped[place % wire::kDropSlots].store(place, std::memory_order_seq_cst);
      if (w.sh->chunks_started.load(std::memory_order_seq_cst) >= place) running = true;
      settle_dropped(r);
    }
    if (running && stop_running) stop(w);
  }

  // SIGTERM now (a task's own handler may clean up), SIGKILL after kCancelGrace (escalate_stop).
  // The worker gets no more chunks; what it held for other calls is re-sent once it is dead
  // (on_stopped): until then it may still finish and return them, so nothing runs twice.
  void stop(Worker& w) noexcept {
    if (w.stopping) return;
    w.stopping = true;
    const auto now = Clock::now();
    w.stop_deadline = now + kCancelGrace;
    (void)w.child.signal(SIGTERM);
    next_check_ = std::min(next_check_, now + kStopCheck);
  }

  void escalate_stop(Worker& w, Clock::time_point now) noexcept {
    if (w.stop_killed || now < w.stop_deadline) return;
    (void)w.child.signal(SIGKILL);
    w.stop_killed = true;
  }

  // A worker stopped by cancel() ended: no item is blamed (the cancelled ones are settled), the
  // other calls' chunks it still held run elsewhere, and its slot gets a new process.
  void on_stopped(Worker& w) {
    w.alive = false;
    ++w.stats.cancels;
    requeue(w);
    if (accepting_ || !idle()) respawn(w);
  }

  Clock::duration current_check_interval() const noexcept {
    for (const auto& w : workers_) {
      if (w.alive && w.stopping) return std::min<Clock::duration>(check_interval_, kStopCheck);
    }
    return check_interval_;
  }

  // What the driver's sleep watches of one worker (see sleep_unlocked).
  struct Watch {
    WorkerShared* sh;
    bool has_bytes;  // task bytes wait to be written: room in its task ring is progress
  };

  mutable DriverGate gate_;                 // guards everything below (see the file comment)
  std::atomic<std::uint32_t> kick_gen_{0};  // bumped to wake the driver (read without the mutex)
  std::vector<Watch> watch_;                // the driver's, filled before each sleep
  bool terminate_pending_ = false;          // terminate() called from the progress callback
  PoolOptions options_;
  Launcher launcher_;  // after options_, which it reads
  sys::ChildSetup setup_;
  sys::Mapping map_;
  PoolShared* ps_ = nullptr;
  std::vector<Worker> workers_;
  std::deque<std::shared_ptr<LocalBatch>> batches_;
  std::deque<Record> resend_;
  std::vector<ByteBuffer> free_;
  std::vector<std::vector<std::uint64_t>> free_ends_;
  std::vector<std::pair<std::uint32_t, std::exception_ptr>> failures_;  // deliver_reply's scratch
  bool accepting_ = true;
  bool joined_ = false;
  std::exception_ptr broken_;
  Clock::duration check_interval_{};
  Clock::time_point next_check_{};
};

// ---- the functions of detail/pool_engine.hpp ---------------------------------------------

std::shared_ptr<Engine> make_engine(const PoolOptions& options, unsigned processes, bool per_call) {
  if (processes == 0) processes = sys::cpus_allowed();
  if (processes > kMaxProcesses) {
    throw std::invalid_argument("pool size must be between 1 and " + std::to_string(kMaxProcesses));
  }
  if (options.nice && (*options.nice < -40 || *options.nice > 40)) {
    throw std::invalid_argument("pool nice increment must be within [-40, 40]");
  }
  if (options.memory_limit && *options.memory_limit == 0) {
    throw std::invalid_argument("pool memory_limit must be positive");
  }
  if (options.max_memory_per_child && *options.max_memory_per_child == 0) {
    throw std::invalid_argument("pool max_memory_per_child must be positive");
  }
  if (options.ionice && (*options.ionice < 0 || *options.ionice > 7)) {
    throw std::invalid_argument("pool ionice level " + std::to_string(*options.ionice) +
                                " outside [0, 7]");
  }
  if (options.task_timeout && options.task_timeout->count() <= 0) {
    throw std::invalid_argument("pool task_timeout must be positive");
  }
  return std::make_shared<Engine>(options, processes, per_call);
}

void engine_check_stateful(const Engine& e, const char* type) {
  check_stateful_method(e.start_method(), type);
}

void engine_submit(Engine& e, std::shared_ptr<LocalBatch> batch) { e.submit(std::move(batch)); }
bool engine_wait(Engine& e, const std::function<bool()>& done, Clock::time_point deadline) {
  return e.wait(done, deadline);
}
void engine_poll(Engine& e) { e.poll(); }
std::unique_lock<std::mutex> engine_lock(Engine& e) { return e.lock(); }
unsigned engine_workers(const Engine& e) noexcept { return e.size(); }
bool engine_accepting(const Engine& e) noexcept { return e.accepting(); }
void engine_close(Engine& e) noexcept { e.close(); }
void engine_join(Engine& e) { e.join(); }
void engine_terminate(Engine& e) noexcept { e.terminate(); }
std::vector<pid_t> engine_pids(const Engine& e) { return e.pids(); }
PoolStats engine_stats(const Engine& e) { return e.stats(); }
std::exception_ptr engine_broken(const Engine& e) noexcept { return e.broken(); }
void engine_cancel(Engine& e, LocalBatch& b, const std::exception_ptr&,
                   bool stop_running) noexcept {
  e.cancel(b, stop_running);
}

}  // namespace mpp::detail
