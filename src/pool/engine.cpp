// The pool engine: worker processes, their shared-memory rings, dispatch, fault handling.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string>
#include <system_error>

#include "mpp/detail/exception_info.hpp"
#include "mpp/pool.hpp"
#include "mpp/process.hpp"
#include "pool/progress.hpp"
#include "runtime/fork_hooks.hpp"
#include "shm/pool_ring.hpp"
#include "sys/failpoint.hpp"
#include "sys/mem.hpp"
#include "sys/proc.hpp"
#include "sys/sched.hpp"

namespace mpp::detail {

thread_local std::uint64_t t_seed_base = 0;
thread_local std::int64_t t_task_index = -1;

namespace {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::uint32_t kTaskMagic = 0x4d505054;    // "MPPT"
constexpr std::uint32_t kResultMagic = 0x4d505052;  // "MPPR"
constexpr std::uint32_t kKindTask = 1;
constexpr std::uint32_t kKindStop = 2;

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
constexpr auto kWorkerSpin = 0us;
constexpr auto kCheckInterval = 10ms;  // how often a waiting parent looks for dead workers
constexpr auto kParentCheck = 200ms;   // how often an idle worker checks its parent is alive
constexpr unsigned kMaxProcesses = 1024;
constexpr std::uint32_t kMaxResends = 3;

struct TaskHeader {
  std::uint32_t magic;
  std::uint32_t kind;
  std::uint64_t fn;
  std::uint64_t context;
  std::int64_t first_index;
  std::uint32_t count;
  std::uint32_t nskip;
  std::uint64_t payload_len;
  std::uint64_t seed;
  unsigned char fstate[kMaxFunctionState];
};
static_assert(std::is_trivially_copyable_v<TaskHeader>, "headers are copied through the ring");

struct ResultHeader {
  std::uint32_t magic;
  std::uint32_t nerrors;
  std::int64_t first_index;
  std::uint32_t count;
  std::uint32_t pad;
  std::uint64_t results_len;
  std::uint64_t errors_len;
};
static_assert(std::is_trivially_copyable_v<ResultHeader>, "headers are copied through the ring");

enum WorkerState : std::uint32_t { kStarting = 0, kRunning = 1, kInitFailed = 2 };

// One worker's slot in the shared mapping. The parent resets it before forking a worker into it.
struct alignas(64) WorkerShared {
  // Separate wake-ups, so that a worker idle-waiting for its next task is not woken each time
  // the parent drains its results (and vice versa).
  shm::Event task_event;   // the parent wrote task bytes
  shm::Event space_event;  // the parent freed result space
  // Set by the parent when it has task bytes that did not fit: only then does a worker's read
  // need to wake it.
  alignas(64) std::atomic<std::uint32_t> parent_wants_space{0};
  shm::ByteRing tasks;
  shm::ByteRing results;
  alignas(64) std::atomic<std::uint64_t> chunks_started{0};
  std::atomic<std::int64_t> current{-1};  // input index being run
  std::atomic<std::uint32_t> state{kStarting};
  char fail_type[128];
  char fail_message[512];
};

struct alignas(64) PoolShared {
  shm::Event to_parent;  // a worker wrote results or freed task space
};

void copy_cstr(char* dst, std::size_t cap, const std::string& s) noexcept {
  const std::size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

// ---- worker side ---------------------------------------------------------------------------

struct WorkerEnv {
  WorkerShared* sh;
  PoolShared* ps;
  pid_t parent;
};

// Leaves the worker process. _exit runs no destructors: shared objects the worker still holds (a
// Queue inherited from the parent) detach first, see run_child_exit_hooks.
[[noreturn]] void leave_worker(int code) noexcept {
  run_child_exit_hooks();
  sys::exit_worker(code);
}

void worker_read(const WorkerEnv& env, void* dst, std::size_t n) {
  auto* p = static_cast<std::byte*>(dst);
  auto& ring = env.sh->tasks;
  while (n > 0) {
    const std::size_t k = ring.try_read(p, n);
    if (k > 0) {
      p += k;
      n -= k;
      // An exchange, not a load: pairing with the parent's exchange orders our tail store before
      // its next look at the ring (no lost wake-up, and no fence, which TSan cannot model).
      if (env.sh->parent_wants_space.exchange(0, std::memory_order_acq_rel) != 0) {
        env.ps->to_parent.notify();
      }
      continue;
    }
    if (!env.sh->task_event.wait([&] { return ring.readable() > 0; }, kWorkerSpin, kParentCheck)) {
      // Backstop for PDEATHSIG (which follows the forking thread, not the process).
      if (sys::parent_pid() != env.parent) leave_worker(0);
    }
  }
}

void worker_write(const WorkerEnv& env, const void* src, std::size_t n) {
  const auto* p = static_cast<const std::byte*>(src);
  auto& ring = env.sh->results;
  while (n > 0) {
    const std::size_t k = ring.try_write(p, n);
    if (k > 0) {
      p += k;
      n -= k;
      env.ps->to_parent.notify();
      if (n > 0) MPP_FAILPOINT("pool.worker.result_half_written");
      continue;
    }
    if (!env.sh->space_event.wait([&] { return ring.writable() > 0; }, kWorkerSpin, kParentCheck)) {
      if (sys::parent_pid() != env.parent) leave_worker(0);
    }
  }
}

[[noreturn]] void worker_loop(const WorkerEnv& env, const PoolOptions& options) {
  ByteBuffer payload, out, errors;
  std::vector<std::int64_t> skip;
  std::size_t done = 0;
  for (;;) {
    TaskHeader h;
    worker_read(env, &h, sizeof h);
    if (h.magic != kTaskMagic || h.kind != kKindTask) leave_worker(0);
    skip.resize(h.nskip);
    worker_read(env, skip.data(), skip.size() * sizeof(std::int64_t));
    payload.resize(static_cast<std::size_t>(h.payload_len));
    worker_read(env, payload.data(), payload.size());
    env.sh->current.store(-1, std::memory_order_relaxed);
    env.sh->chunks_started.fetch_add(1, std::memory_order_release);
    MPP_FAILPOINT("pool.worker.after_take");

    // One buffer, one write: [header][results][failures], so a reply costs one wake-up.
    out.resize(sizeof(ResultHeader));
    errors.clear();
    ChunkCall call;
    call.in = payload.data();
    call.in_len = payload.size();
    call.first_index = h.first_index;
    call.count = h.count;
    call.skip = skip.data();
    call.nskip = h.nskip;
    call.fstate = h.fstate;
    call.context = static_cast<std::uintptr_t>(h.context);
    call.seed = h.seed;
    call.out = &out;
    call.errors = &errors;
    call.current = &env.sh->current;
    // The parent sent the address of a trampoline of this same program image.
    reinterpret_cast<ChunkFn>(static_cast<std::uintptr_t>(h.fn))(call);
    // Past the chunk's items: a death from here on (sending the result) is no item's fault, and
    // the parent re-runs the whole chunk instead of blaming its last item.
    env.sh->current.store(-1, std::memory_order_relaxed);

    const std::size_t results_len = out.size() - sizeof(ResultHeader);
    out.append(errors.data(), errors.size());
    const ResultHeader r{kResultMagic, call.nerrors, h.first_index, h.count, 0,
                         results_len,  errors.size()};
    std::memcpy(out.data(), &r, sizeof r);
    MPP_FAILPOINT("pool.worker.before_result");
    worker_write(env, out.data(), out.size());
    ++done;
    // The parent counts too and sends no more than this; the result is already in the ring.
    if (options.maxtasksperchild != 0 && done >= options.maxtasksperchild) leave_worker(0);
  }
}

[[noreturn]] void worker_main(const WorkerEnv& env, const PoolOptions& options,
                              const sys::ChildSetup& setup) noexcept {
  // Until user code runs: only async-signal-safe steps (the parent may have other threads).
  if (sys::apply_child_setup(setup) != 0) {
    // No allocation here: copy fixed strings byte by byte.
    const char* what = "cannot set up pool worker (niceness, name or parent death signal)";
    std::size_t i = 0;
    for (; what[i] != '\0' && i + 1 < sizeof env.sh->fail_message; ++i) {
      env.sh->fail_message[i] = what[i];
    }
    env.sh->fail_message[i] = '\0';
    const char* type = "std::system_error";
    for (i = 0; type[i] != '\0'; ++i) env.sh->fail_type[i] = type[i];
    env.sh->fail_type[i] = '\0';
    env.sh->state.store(kInitFailed, std::memory_order_release);
    sys::exit_immediately(3);
  }
  // (The fork hooks have run already: fork() runs them through pthread_atfork.)
  MPP_FAILPOINT("pool.worker.before_init");  // forked, before user code
  try {
    if (options.initializer) options.initializer();
  } catch (...) {
    auto info = describe_current_exception();
    copy_cstr(env.sh->fail_type, sizeof env.sh->fail_type, info.type_name);
    copy_cstr(env.sh->fail_message, sizeof env.sh->fail_message,
              "pool initializer failed: " + info.message);
    env.sh->state.store(kInitFailed, std::memory_order_release);
    leave_worker(3);
  }
  env.sh->state.store(kRunning, std::memory_order_release);
  try {
    worker_loop(env, options);
  } catch (...) {
    // Out of memory in the transport: the parent sees a lost worker and recovers.
    leave_worker(4);
  }
}

// ---- parent side ---------------------------------------------------------------------------

struct Record {
  std::shared_ptr<Batch> batch;
  std::int64_t first = 0;
  std::uint32_t count = 0;
  std::vector<std::int64_t> skip;  // sorted; their bytes are not in the payload
  ByteBuffer msg;                  // header + skip list + payload, as sent
  // Where each item's bytes end in the payload (an item in `skip` takes none); empty while the
  // batch's inputs have a fixed size. See leave_out().
  std::vector<std::uint64_t> ends;
  std::uint32_t resends = 0;
};

struct Worker {
  WorkerShared* sh = nullptr;
  sys::Child child;
  bool alive = false;
  std::deque<Record> held;  // in the order sent; [0, nsent) fully written to the ring
  std::size_t nsent = 0;
  std::size_t sent_bytes = 0;  // of held[nsent]
  std::uint64_t received = 0;  // results of this incarnation
  std::uint64_t dispatched = 0;
  ByteBuffer in;  // result being assembled
  std::size_t in_have = 0;
  std::size_t in_need = sizeof(ResultHeader);
  // task_timeout sampling
  std::uint64_t seen_started = 0;
  std::int64_t seen_current = -2;
  Clock::time_point seen_at{};
};

std::exception_ptr lost_error(pid_t pid, std::int64_t index, const sys::Child& child,
                              bool timed_out, std::chrono::milliseconds timeout) {
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
  return std::make_exception_ptr(WorkerLost(pid, index, sig, code));
}

}  // namespace

class Engine {
 public:
  Engine(const PoolOptions& options, unsigned n) : options_(options) {
    const std::size_t slot = round_up(sizeof(WorkerShared), sys::page_size());
    const std::size_t head = round_up(sizeof(PoolShared), sys::page_size());
    const std::size_t per = slot + kTaskRing + kResultRing;
    map_ = sys::map_anonymous_shared(head + per * n);
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
    setup_.die_with_parent = true;
    setup_.parent = sys::self_pid();
    try {
      for (auto& w : workers_) spawn(w);
    } catch (...) {
      terminate();
      throw;
    }
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
  bool accepting() const noexcept { return accepting_ && !broken_; }
  std::exception_ptr broken() const noexcept { return broken_; }

  void submit(std::shared_ptr<Batch> b) {
    if (broken_) std::rethrow_exception(broken_);
    if (!accepting_) throw std::logic_error("pool is closed");
    b->started = Clock::now();
    b->last_progress = b->started;
    batches_.push_back(std::move(b));
    pump();
  }

  void close() noexcept { accepting_ = false; }

  bool wait(const std::function<bool()>& done, Clock::time_point deadline) {
    for (;;) {
      if (done()) return true;
      const bool progressed = pump();
      auto now = Clock::now();
      if (now >= next_check_) {
        check_workers(now);
        next_check_ = now + check_interval_;
        continue;
      }
      if (progressed) continue;
      if (now >= deadline) return done();
      const auto until = std::min(deadline, next_check_);
      ps()->to_parent.wait([&] { return done() || io_ready(); }, kParentSpin,
                           std::chrono::duration_cast<std::chrono::nanoseconds>(until - now));
    }
  }

  void poll() {
    pump();
    const auto now = Clock::now();
    if (now >= next_check_) {
      check_workers(now);
      next_check_ = now + check_interval_;
      pump();
    }
  }

  void join() {
    if (joined_) return;
    if (accepting_) throw std::logic_error("join() called before close()");
    wait([&] { return idle(); }, Clock::time_point::max());
    // Everything is done: ask each worker to exit, then reap it.
    for (auto& w : workers_) {
      if (!w.alive) continue;
      TaskHeader h{};
      h.magic = kTaskMagic;
      h.kind = kKindStop;
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
    // A lazily consumed imap still open has no workers left to run the rest of its input.
    abort_all("pool joined");
    joined_ = true;
  }

  void terminate() noexcept {
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
    abort_all("pool terminated");
    joined_ = true;
  }

  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const auto& w : workers_) {
      if (w.alive) out.push_back(w.child.pid());
    }
    return out;
  }

 private:
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
    sh->state.store(kStarting, std::memory_order_relaxed);
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
    const pid_t pid = sys::fork_or_throw("cannot fork worker");
    if (pid == 0) worker_main(WorkerEnv{sh, ps_, setup_.parent}, options_, setup_);
    w.child = sys::Child(pid);
    w.alive = true;
  }

  // Something to do for pump() right now? (cheap; the parent sleeps when not)
  bool io_ready() const noexcept {
    for (const auto& w : workers_) {
      if (!w.alive) continue;
      if (w.sh->results.readable() > 0) return true;
      if (w.nsent < w.held.size() && w.sh->tasks.writable() > 0) return true;
    }
    return false;
  }

  bool pump() {
    bool progress = false;
    for (auto& w : workers_) {
      if (w.alive && read_from(w)) progress = true;
    }
    if (dispatch()) progress = true;
    for (auto& w : workers_) {
      if (w.alive && write_to(w)) progress = true;
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
    if (w.held.empty() || h.magic != kResultMagic || w.held.front().first != h.first_index) {
      // Cannot happen with a sane worker; treat it as lost rather than mis-deliver.
      w.child.signal(SIGKILL);
      return;
    }
    Record rec = std::move(w.held.front());
    w.held.pop_front();
    --w.nsent;
    ++w.received;
    Batch& b = *rec.batch;
    if (!b.abandoned) {
      Delivery d;
      d.first_index = h.first_index;
      d.count = h.count;
      d.results = std::span<const std::byte>(w.in.data() + sizeof h, h.results_len);
      d.errors = std::span<const std::byte>(w.in.data() + sizeof h + h.results_len, h.errors_len);
      d.nerrors = h.nerrors;
      d.skipped = rec.skip;
      d.pid = w.child.pid();
      b.deliver(d);
      MPP_FAILPOINT("pool.parent.after_deliver");
    }
    finish_record(rec);
    if (options_.maxtasksperchild != 0 && w.received >= options_.maxtasksperchild) {
      // It exits after this result by itself; reap it and start its replacement.
      w.child.wait_for(2s) || (w.child.signal(SIGKILL), w.child.wait(), true);
      w.alive = false;
      requeue(w);
      respawn(w);
    }
  }

  void finish_record(Record& rec) {
    Batch& b = *rec.batch;
    --b.in_flight;
    b.items_done += rec.count;
    report_progress(b, false);
    if (free_.size() < 64) {
      rec.msg.clear();
      free_.push_back(std::move(rec.msg));
    }
    if (rec.ends.capacity() != 0 && free_ends_.size() < 64) {
      rec.ends.clear();
      free_ends_.push_back(std::move(rec.ends));
    }
  }

  void report_progress(Batch& b, bool force) {
    if (!b.show_progress || b.abandoned) return;
    if (!options_.progress && !options_.on_progress) return;
    const auto now = Clock::now();
    const bool last = b.finished();
    if (b.progress_final) return;
    if (!last && !force && now - b.last_progress < 100ms) return;
    b.progress_final = last;
    b.last_progress = now;
    PoolProgress p;
    p.done = b.items_done;
    p.total = b.exhausted && b.total < 0 ? b.items_done : b.total;
    p.elapsed = now - b.started;
    p.finished = last;
    if (options_.progress) draw_progress(p);
    if (options_.on_progress) {
      try {
        options_.on_progress(p);
      } catch (...) {
        // A failing progress callback must not break the pool's bookkeeping.
      }
    }
  }

  bool next_record(Record& r) {
    if (!resend_.empty()) {
      r = std::move(resend_.front());
      resend_.pop_front();
      return true;
    }
    for (auto it = batches_.begin(); it != batches_.end();) {
      Batch& b = **it;
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
      std::uint32_t n = 0;
      try {
        n = b.produce(msg, first, ends);
      } catch (...) {
        b.batch_error = std::current_exception();
        n = 0;
      }
      if (n == 0) {
        b.exhausted = true;
        continue;  // re-examined (and possibly erased) by the loop
      }
      TaskHeader h{};
      h.magic = kTaskMagic;
      h.kind = kKindTask;
      h.fn = reinterpret_cast<std::uintptr_t>(b.fn);
      h.context = b.context;
      h.first_index = first;
      h.count = n;
      h.nskip = 0;
      h.payload_len = msg.size() - sizeof h;
      h.seed = options_.seed;
      std::memcpy(h.fstate, b.fstate, sizeof h.fstate);
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
    for (;;) {
      Worker* best = nullptr;
      for (auto& w : workers_) {
        if (!w.alive || w.held.size() >= kDepth) continue;
        if (options_.maxtasksperchild != 0 && w.dispatched >= options_.maxtasksperchild) continue;
        if (best == nullptr || w.held.size() < best->held.size()) best = &w;
      }
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

  // Puts everything the worker held back in line (front), in order.
  void requeue(Worker& w) {
    for (auto it = w.held.rbegin(); it != w.held.rend(); ++it) resend_.push_front(std::move(*it));
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
    w.alive = false;
    if (w.sh->state.load(std::memory_order_acquire) == kInitFailed) {
      broken_ = std::make_exception_ptr(
          RemoteError(w.sh->fail_type, w.sh->fail_message, pid, RemoteError::kNoTask));
      requeue(w);
      abort_all("pool broken");
      return;
    }
    const std::uint64_t started = w.sh->chunks_started.load(std::memory_order_acquire);
    if (started > w.received && !w.held.empty()) {
      // The front chunk was running: fail the item it was on, re-run the rest of it elsewhere.
      Record& r = w.held.front();
      const std::int64_t cur = w.sh->current.load(std::memory_order_relaxed);
      const bool in_chunk = cur >= r.first && cur < r.first + static_cast<std::int64_t>(r.count) &&
                            !std::binary_search(r.skip.begin(), r.skip.end(), cur);
      if (in_chunk) {
        // The worker stores the index before decoding the item, so `cur` is the item whose
        // decoding or run killed it: it fails alone, is never sent again, and the others of
        // its chunk (those done before it too: their results died with the worker) run again.
        r.batch->fail(
            cur, lost_error(pid, cur, w.child, timed_out, options_.task_timeout.value_or(0ms)));
        const bool cut = leave_out(r, cur);
        if (!cut || r.skip.size() == r.count) {
          // Nothing left to run, or the rest cannot be told apart from the dead item's bytes
          // (cannot happen: every batch gives sizes or ends): fail the rest, never re-run it.
          if (cut) {
            finish_record(r);
          } else {
            fail_record(r, lost_error(pid, -1, w.child, timed_out, 0ms));
          }
          w.held.pop_front();
          --w.nsent;
        }
      } else if (++r.resends > kMaxResends) {
        // It keeps killing workers before reaching any item: give up on the whole chunk.
        fail_record(r, lost_error(pid, -1, w.child, timed_out, 0ms));
        w.held.pop_front();
        --w.nsent;
      }
    }
    requeue(w);
    if (accepting_ || !idle()) respawn(w);
  }

  void respawn(Worker& w) {
    try {
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
    for (std::uint32_t i = 0; i < r.count; ++i) {
      const std::int64_t idx = r.first + static_cast<std::int64_t>(i);
      if (!std::binary_search(r.skip.begin(), r.skip.end(), idx)) r.batch->fail(idx, e);
    }
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
        for (std::uint32_t i = 0; i < r.count; ++i) {
          const std::int64_t idx = r.first + static_cast<std::int64_t>(i);
          if (!std::binary_search(r.skip.begin(), r.skip.end(), idx)) {
            r.batch->fail(idx, error_for(idx));
          }
        }
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

  PoolOptions options_;
  sys::ChildSetup setup_;
  sys::Mapping map_;
  PoolShared* ps_ = nullptr;
  std::vector<Worker> workers_;
  std::deque<std::shared_ptr<Batch>> batches_;
  std::deque<Record> resend_;
  std::vector<ByteBuffer> free_;
  std::vector<std::vector<std::uint64_t>> free_ends_;
  bool accepting_ = true;
  bool joined_ = false;
  std::exception_ptr broken_;
  Clock::duration check_interval_{};
  Clock::time_point next_check_{};
};

// ---- free functions of pool_engine.hpp -----------------------------------------------------

std::uint64_t mix_seed(std::uint64_t base, std::int64_t index) noexcept {
  return splitmix64(base ^ splitmix64(static_cast<std::uint64_t>(index)));
}

ExceptionInfo describe_task_failure() noexcept {
  ExceptionInfo info = describe_current_exception();
  try {
    throw;
  } catch (const SystemExit& e) {
    try {
      info.message = "exit code " + std::to_string(e.code);
    } catch (...) {
    }
  } catch (...) {
  }
  return info;
}

void record_failure(ChunkCall& call, std::uint32_t pos) noexcept {
  try {
    auto info = describe_task_failure();
    auto put = [&](const void* p, std::size_t n) {
      const auto* b = static_cast<const std::byte*>(p);
      call.errors->append(b, n);
    };
    const auto tl = static_cast<std::uint32_t>(info.type_name.size());
    const auto ml = static_cast<std::uint32_t>(info.message.size());
    put(&pos, sizeof pos);
    put(&tl, sizeof tl);
    put(info.type_name.data(), tl);
    put(&ml, sizeof ml);
    put(info.message.data(), ml);
    ++call.nerrors;
  } catch (...) {
    // No memory to describe it: the parent reports the item as lost instead.
  }
}

std::vector<RemoteFailure> decode_failures(const Delivery& d) {
  std::vector<RemoteFailure> out;
  out.reserve(d.nerrors);
  std::span<const std::byte> in = d.errors;
  auto take = [&](void* p, std::size_t n) {
    if (in.size() < n) throw SerializationError("truncated pool error record");
    std::memcpy(p, in.data(), n);
    in = in.subspan(n);
  };
  for (std::uint32_t i = 0; i < d.nerrors; ++i) {
    RemoteFailure f;
    std::uint32_t n = 0;
    take(&f.pos, sizeof f.pos);
    take(&n, sizeof n);
    f.type_name.resize(n);
    take(f.type_name.data(), n);
    take(&n, sizeof n);
    f.message.resize(n);
    take(f.message.data(), n);
    out.push_back(std::move(f));
  }
  return out;
}

std::shared_ptr<Engine> make_engine(const PoolOptions& options, unsigned processes) {
  if (processes == 0) processes = sys::cpus_allowed();
  if (processes > kMaxProcesses) {
    throw std::invalid_argument("pool size must be between 1 and " + std::to_string(kMaxProcesses));
  }
  if (options.nice && (*options.nice < -40 || *options.nice > 40)) {
    throw std::invalid_argument("pool nice increment must be within [-40, 40]");
  }
  if (options.task_timeout && options.task_timeout->count() <= 0) {
    throw std::invalid_argument("pool task_timeout must be positive");
  }
  return std::make_shared<Engine>(options, processes);
}

void engine_submit(Engine& e, std::shared_ptr<Batch> batch) { e.submit(std::move(batch)); }
bool engine_wait(Engine& e, const std::function<bool()>& done, Clock::time_point deadline) {
  return e.wait(done, deadline);
}
void engine_poll(Engine& e) { e.poll(); }
unsigned engine_workers(const Engine& e) noexcept { return e.size(); }
bool engine_accepting(const Engine& e) noexcept { return e.accepting(); }
void engine_close(Engine& e) noexcept { e.close(); }
void engine_join(Engine& e) { e.join(); }
void engine_terminate(Engine& e) noexcept { e.terminate(); }
std::vector<pid_t> engine_pids(const Engine& e) { return e.pids(); }
std::exception_ptr engine_broken(const Engine& e) noexcept { return e.broken(); }

std::uint32_t auto_chunksize(std::int64_t items, unsigned workers) noexcept {
  if (items < 0) return 256;  // unknown length: amortize the per-chunk cost, keep some balance
  // 16 chunks per worker (Python uses 4): per-chunk cost is a few microseconds, and on a machine
  // shared with other work, finer chunks measured 0.82 -> 0.93 parallel efficiency for 1 ms tasks
  // while map(x + 1) stayed at ~3-4 ns per item.
  const std::int64_t per = static_cast<std::int64_t>(std::max(workers, 1u)) * 16;
  const std::int64_t c = (items + per - 1) / per;
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(c, 1, 1 << 24));
}

void check_chunksize(std::size_t chunksize) {
  if (chunksize > (std::size_t{1} << 30)) {
    throw std::invalid_argument("pool chunksize is absurd (more than 2^30 items)");
  }
}

}  // namespace mpp::detail

namespace mpp {

Pool::Pool() : Pool(PoolOptions{}) {}
Pool::Pool(unsigned processes)
    : Pool([&] {
        PoolOptions o;
        o.processes = processes;
        return o;
      }()) {}
Pool::Pool(PoolOptions options)
    : options_(std::make_shared<PoolOptions>(std::move(options))),
      engine_(detail::make_engine(*options_, options_->processes)) {}

Pool::~Pool() {
  if (engine_ && !joined_) engine_->terminate();
}

void Pool::close() noexcept {
  if (engine_) engine_->close();
}

void Pool::join() {
  if (!engine_) throw std::logic_error("pool was moved from");
  engine_->join();
  joined_ = true;
}

void Pool::terminate() noexcept {
  if (engine_) engine_->terminate();
}

unsigned Pool::processes() const noexcept { return engine_ ? engine_->size() : 0; }

std::vector<pid_t> Pool::worker_pids() const {
  return engine_ ? engine_->pids() : std::vector<pid_t>{};
}

void Pool::require_open() const {
  if (!engine_) throw std::logic_error("pool was moved from");
  if (auto b = engine_->broken()) std::rethrow_exception(b);
  if (!engine_->accepting()) throw std::logic_error("pool is closed (close() or terminate() ran)");
}

}  // namespace mpp
