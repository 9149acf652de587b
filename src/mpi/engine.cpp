// The MPI engine behind mpp::mpi::Pool: rank 0 hands chunks out and assembles results, every
// other rank serves chunks until rank 0 finalizes.
//
// Messages (all on a private duplicate of MPI_COMM_WORLD, so the user's traffic never matches
// ours): a task is ONE message (header + encoded inputs), a result is ONE message (header +
// encoded results + encoded failures), so a round trip costs exactly one MPI message each way,
// like a raw ping-pong. Workers keep several chunks queued (they sit in MPI's unexpected-message
// queue at the worker), so a worker never waits for rank 0 between chunks.
//
// Waiting: both sides poll with MPI_Improbe, spinning briefly (a round trip is microseconds), then
// yielding, then sleeping with a growing pause. Blocking MPI_Recv would busy-poll at 100% CPU
// inside Open MPI, which on an oversubscribed machine steals the CPU from the ranks doing work.
//
// Threads (rank 0): the engine's state and every MPI call it makes are guarded by its DriverGate
// (src/pool/driver.hpp), so MPI_THREAD_SERIALIZED suffices: of the threads waiting, one polls
// (releasing the mutex while it pauses), the others sleep until it delivers their results. A
// program that initialized MPI itself at a lower level than SERIALIZED may use the pools from the
// thread that started the engine only (others get std::logic_error).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "mpp/codec.hpp"
#include "mpp/detail/mpi_core.hpp"
#include "mpp/detail/pool_core/buffer.hpp"
#include "mpp/detail/pool_core/task.hpp"
#include "mpp/errors.hpp"
#include "pool/core.hpp"
#include "pool/driver.hpp"
#include "runtime/registry.hpp"
#include "sys/proc.hpp"
#include "sys/sched.hpp"
#include "sys/signal.hpp"

namespace mpp::mpi::detail {

using mpp::detail::ByteBuffer;
using mpp::detail::registry_size;
using mpp::detail::resolve;
using mpp::detail::Resolved;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kTagTask = 7101;
constexpr int kTagResult = 7102;
constexpr int kTagStop = 7103;
constexpr int kTagStopAck = 7104;
constexpr std::uint32_t kMagic = 0x6d70706d;  // "mppm"

struct TaskHeader {
  std::uint64_t batch;
  std::int64_t first;
  std::uint32_t count;
  std::uint32_t reserved;
  std::uint64_t trampoline;
  std::uint64_t function;
  std::uint64_t seed;
};
static_assert(std::is_trivially_copyable_v<TaskHeader> && sizeof(TaskHeader) == 48,
              "the task header travels as raw bytes between ranks of one architecture");

struct ResultHeader {
  std::uint64_t batch;
  std::int64_t first;
  std::uint32_t count;
  std::uint32_t nerrors;
  std::uint64_t results_len;
};
static_assert(std::is_trivially_copyable_v<ResultHeader> && sizeof(ResultHeader) == 32,
              "the result header travels as raw bytes between ranks of one architecture");

struct Hello {
  std::uint32_t magic;
  std::uint32_t wire;
  std::uint64_t hash;
  std::uint64_t entries;
  std::int64_t pid;
  char host[64];
};
static_assert(std::is_trivially_copyable_v<Hello>,
              "the start-up handshake travels as raw bytes (MPI_BYTE)");

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw std::runtime_error(std::string("mpp::mpi: ") + what + ": " + std::string(text, len));
  }
}

// Spin, then yield, then sleep with a growing pause; reset whenever something happened.
class Backoff {
 public:
  Backoff(std::chrono::microseconds spin, std::chrono::microseconds yield, unsigned max_sleep_us)
      : spin_(spin), yield_(yield), max_sleep_us_(max_sleep_us) {}
  void reset() noexcept {
    idle_since_ = Clock::time_point{};
    polls_ = 0;
  }
  void pause(Clock::time_point deadline = Clock::time_point::max()) noexcept {
    // While spinning, poll again at once: reading the clock on every poll cost a sixth of the
    // round trip (measured), so it is read only every kPollsPerCheck polls.
    if (idle_since_ != Clock::time_point{} && ++polls_ < kPollsPerCheck &&
        deadline == Clock::time_point::max()) {
      return;
    }
    polls_ = 0;
    const auto now = Clock::now();
    if (idle_since_ == Clock::time_point{}) {
      idle_since_ = now;
      sleep_us_ = 20;
    }
    const auto idle = now - idle_since_;
    if (idle < spin_) return;
    if (idle < yield_) {
      sys::yield_cpu();
      return;
    }
    unsigned us = sleep_us_;
    if (deadline != Clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
      if (left.count() <= 0) return;
      us = static_cast<unsigned>(std::min<long long>(us, left.count()));
    }
    sys::sleep_us(us);
    sleep_us_ = std::min(sleep_us_ * 2, max_sleep_us_);
  }

 private:
  std::chrono::microseconds spin_;
  std::chrono::microseconds yield_;
  unsigned max_sleep_us_;
  static constexpr unsigned kPollsPerCheck = 32;
  unsigned sleep_us_ = 20;
  unsigned polls_ = 0;
  Clock::time_point idle_since_{};
};

// Runs one chunk in this process and appends its encoded results to `out`, its failures to
// `errors`. Never throws except std::bad_alloc.
std::uint32_t run_chunk(const TaskHeader& h, std::span<const std::byte> payload, ByteBuffer& out,
                        ByteBuffer& errors) {
  Resolved r = resolve(h.trampoline, h.function);
  TaskCall call;
  call.in = payload;
  call.first_index = h.first;
  call.count = h.count;
  call.fn = r.fn;
  call.seed = h.seed;
  call.out = &out;
  call.errors = &errors;
  call.current = &sys::crash_context().task;  // what a crash report names
  if (r.trampoline == nullptr) {
    for (std::uint32_t i = 0; i < h.count; ++i) {
      try {
        throw std::logic_error("mpp::mpi: " + r.error);
      } catch (...) {
        mpp::detail::record_failure(call, i);
      }
    }
    return call.nerrors;
  }
  sys::crash_context().function.store(r.name, std::memory_order_relaxed);
  r.trampoline(call);
  return call.nerrors;
}

bool mpi_initialized() {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}
bool mpi_finalized() {
  int flag = 0;
  MPI_Finalized(&flag);
  return flag != 0;
}

void finalize_at_exit() {
  if (mpi_initialized() && !mpi_finalized()) MPI_Finalize();
}

// MPI_Init once, by whoever needs MPI first; mpp then owns finalization.
void ensure_mpi() {
  if (mpi_initialized()) return;
  if (mpi_finalized()) throw std::logic_error("mpp::mpi: MPI was already finalized");
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "cannot start MPI");
  std::atexit(finalize_at_exit);
}

}  // namespace

struct Chunk {
  std::shared_ptr<Batch> batch;
  std::int64_t first = 0;
  std::uint32_t count = 0;
  ByteBuffer msg;  // TaskHeader + encoded inputs
  MPI_Request req = MPI_REQUEST_NULL;
  Clock::time_point sent{};
  bool orphan = false;  // its batch was cancelled: the result is dropped
};

struct WorkerRank {
  int rank = 0;
  pid_t pid = 0;
  std::string host;
  bool lost = false;   // given up on after task_timeout
  bool acked = false;  // answered the stop message
  std::deque<Chunk> out;
  Clock::time_point last_result{};
};

class Engine {
 public:
  // Guards everything below and the batches (see "Threads" above).
  mpp::detail::DriverGate gate;
  // MPI's thread level is below SERIALIZED: only this thread may call in.
  bool one_thread = false;
  std::thread::id owner;
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  bool stopped = false;
  pid_t pid = 0;
  std::string host;
  // workers[i].rank == i + 1. A deque: a WorkerRank (its deque of chunks) never moves.
  std::deque<WorkerRank> workers;
  std::unique_ptr<sys::RankActivity[]> activity;  // what workers[i] runs, for the kill report
  std::vector<std::shared_ptr<Batch>> active;
  std::deque<Chunk> retry;      // chunks of a rank given up on, to run elsewhere
  std::vector<Chunk> dangling;  // sends to ranks given up on: buffers live until they complete
  std::uint64_t next_id = 1;
  std::chrono::milliseconds longest_timeout{0};
  std::vector<std::byte> rbuf;
  std::vector<std::uint64_t> ends;  // produce()'s, unused here (no input is ever left out)
  std::vector<std::pair<std::uint32_t, std::exception_ptr>> failures;  // deliver_reply's scratch

  void submit(std::shared_ptr<Batch> b);
  bool pump(bool may_block = true);
  void send_now() {
    if (stopped) throw std::logic_error("mpp::mpi::Pool used after MPI was finalized");
    (void)dispatch(false);
  }
  void cancel(Batch& b, const std::exception_ptr& error) noexcept;
  void shutdown() noexcept;
  [[nodiscard]] unsigned live_workers() const noexcept;

 private:
  bool receive();
  bool check_timeouts();
  bool dispatch(bool may_block);
  bool run_locally(Batch& b);
  WorkerRank* pick(const Batch& b);
  [[nodiscard]] bool any_live(const Batch& b) const noexcept;
  [[nodiscard]] unsigned limit(const Batch& b) const noexcept;
  void send(WorkerRank& w, Chunk&& c);
  void handle_result(WorkerRank& w, std::span<const std::byte> bytes);
  void deliver(Batch& b, const ResultHeader& h, std::span<const std::byte> results,
               std::span<const std::byte> errors, int from, pid_t from_pid,
               const std::string& from_host) noexcept;
  void give_up(WorkerRank& w, Clock::time_point now);
  void note_head(const WorkerRank& w) noexcept;
  void fail_chunk(Chunk& c, const std::exception_ptr& e) noexcept;
};

namespace {

Engine* g_engine = nullptr;  // leaked on purpose: used from MPI_Finalize, after main returned
// Guards g_engine's creation (two threads constructing the first Pools at once).
std::mutex g_start_mutex;

int on_finalize(MPI_Comm, int, void*, void*) {
  if (g_engine != nullptr) {
    const std::lock_guard lk(g_engine->gate.mutex());
    g_engine->shutdown();
  }
  return MPI_SUCCESS;
}

// The engine's mutex, for a caller that may be any thread.
std::unique_lock<std::mutex> locked(Engine& e) {
  if (e.one_thread && std::this_thread::get_id() != e.owner) {
    throw std::logic_error(
        "mpp::mpi::Pool used from another thread, but MPI was initialized (by the program) "
        "below MPI_THREAD_SERIALIZED: use it from the thread that created the first Pool");
  }
  return std::unique_lock<std::mutex>(e.gate.mutex());
}

std::string rank_label(int r, pid_t pid, const std::string& host) {
  return "MPI rank " + std::to_string(r) + " (host " + host + ", pid " + std::to_string(pid) + ")";
}

std::string range_label(std::int64_t first, std::uint32_t count) {
  if (count <= 1) return "task " + std::to_string(first);
  return "tasks " + std::to_string(first) + ".." +
         std::to_string(first + static_cast<std::int64_t>(count) - 1);
}

void serve(Engine& e) {
  std::string prefix = "mpp::mpi: " + rank_label(e.rank, e.pid, e.host);
  sys::install_crash_report(prefix);
  std::vector<std::byte> in;
  ByteBuffer out;
  ByteBuffer errors;
  Backoff backoff(std::chrono::microseconds(300), std::chrono::microseconds(3000), 1000);
  for (;;) {
    int flag = 0;
    MPI_Message m;
    MPI_Status st;
    check(MPI_Improbe(0, MPI_ANY_TAG, e.comm, &flag, &m, &st), "probe failed");
    if (flag == 0) {
      backoff.pause();
      continue;
    }
    backoff.reset();
    int n = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    in.resize(static_cast<std::size_t>(n));
    check(MPI_Mrecv(in.data(), n, MPI_BYTE, &m, &st), "receive failed");
    if (st.MPI_TAG == kTagStop) {
      check(MPI_Send(nullptr, 0, MPI_BYTE, 0, kTagStopAck, e.comm), "send failed");
      return;
    }
    if (st.MPI_TAG != kTagTask || in.size() < sizeof(TaskHeader)) continue;
    TaskHeader h;
    std::memcpy(&h, in.data(), sizeof h);
    out.resize(sizeof(ResultHeader));
    errors.clear();
    const std::uint32_t nerrors =
        run_chunk(h, std::span<const std::byte>(in).subspan(sizeof h), out, errors);
    ResultHeader rh{h.batch, h.first, h.count, nerrors, out.size() - sizeof(ResultHeader)};
    std::memcpy(out.data(), &rh, sizeof rh);
    out.append(errors.data(), errors.size());
    if (out.size() > static_cast<std::size_t>(INT_MAX)) {
      // Too big for one message: report every item as failed rather than send garbage.
      out.resize(sizeof(ResultHeader));
      errors.clear();
      TaskCall call;
      call.errors = &errors;
      for (std::uint32_t i = 0; i < h.count; ++i) {
        try {
          throw SerializationError(
              "mpp::mpi: a chunk's results exceed 2 GiB; use a smaller chunksize");
        } catch (...) {
          mpp::detail::record_failure(call, i);
        }
      }
      rh = ResultHeader{h.batch, h.first, h.count, call.nerrors, 0};
      std::memcpy(out.data(), &rh, sizeof rh);
      out.append(errors.data(), errors.size());
    }
    check(MPI_Send(out.data(), static_cast<int>(out.size()), MPI_BYTE, 0, kTagResult, e.comm),
          "send failed");
  }
}

}  // namespace

// ---- rank 0 ----

unsigned Engine::live_workers() const noexcept {
  unsigned n = 0;
  for (const auto& w : workers) n += w.lost ? 0 : 1;
  return n;
}

unsigned Engine::limit(const Batch& b) const noexcept {
  const auto n = static_cast<unsigned>(workers.size());
  return b.max_ranks == 0 ? n : std::min(b.max_ranks, n);
}

bool Engine::any_live(const Batch& b) const noexcept {
  for (unsigned i = 0; i < limit(b); ++i) {
    if (!workers[i].lost) return true;
  }
  return false;
}

WorkerRank* Engine::pick(const Batch& b) {
  return mpp::detail::least_loaded(
      workers.begin(), workers.begin() + limit(b),
      [&](const WorkerRank& w) { return !w.lost && w.out.size() < b.per_rank; },
      [](const WorkerRank& w) { return w.out.size(); });
}

void Engine::submit(std::shared_ptr<Batch> b) {
  if (stopped) throw std::logic_error("mpp::mpi::Pool used after MPI was finalized");
  b->id = next_id++;
  b->name = resolve(b->trampoline, b->function).name;
  longest_timeout = std::max(longest_timeout, b->timeout);
  active.push_back(std::move(b));
}

void Engine::send(WorkerRank& w, Chunk&& c) {
  if (c.batch->timeout.count() > 0) c.sent = Clock::now();  // only timeouts need it
  check(MPI_Isend(c.msg.data(), static_cast<int>(c.msg.size()), MPI_BYTE, w.rank, kTagTask, comm,
                  &c.req),
        "send failed");
  w.out.push_back(std::move(c));
  if (w.out.size() == 1) note_head(w);
}

void Engine::note_head(const WorkerRank& w) noexcept {
  sys::RankActivity& a = activity[static_cast<std::size_t>(w.rank - 1)];
  if (w.out.empty() || w.lost) {
    a.first.store(-1, std::memory_order_relaxed);
    return;
  }
  const Chunk& c = w.out.front();
  a.count.store(c.count, std::memory_order_relaxed);
  a.function.store(c.batch->name, std::memory_order_relaxed);
  a.first.store(c.first, std::memory_order_relaxed);
}

void Engine::fail_chunk(Chunk& c, const std::exception_ptr& e) noexcept {
  if (c.orphan) return;
  mpp::detail::fail_items(*c.batch, c.first, c.count, {}, [&](std::int64_t) { return e; });
  --c.batch->in_flight;
  c.orphan = true;
}

bool Engine::run_locally(Batch& b) {
  ByteBuffer payload;
  payload.resize(sizeof(TaskHeader));
  std::int64_t first = 0;
  ends.clear();
  const std::uint32_t n = mpp::detail::produce_chunk(b, payload, first, ends);
  if (n == 0) return true;
  TaskHeader h{b.id, first, n, 0, b.trampoline, b.function, b.seed};
  ByteBuffer out;
  ByteBuffer errors;
  ++b.in_flight;
  const std::uint32_t nerrors =
      run_chunk(h, std::span<const std::byte>(payload.data() + sizeof h, payload.size() - sizeof h),
                out, errors);
  ResultHeader rh{b.id, first, n, nerrors, out.size()};
  deliver(b, rh, {out.data(), out.size()}, {errors.data(), errors.size()}, 0, pid, host);
  --b.in_flight;
  return true;
}

bool Engine::dispatch(bool may_block) {
  bool any = false;
  for (auto it = retry.begin(); it != retry.end();) {
    if (it->orphan) {
      it = retry.erase(it);
      continue;
    }
    if (WorkerRank* w = pick(*it->batch)) {
      send(*w, std::move(*it));
      it = retry.erase(it);
      any = true;
    } else if (!any_live(*it->batch)) {
      fail_chunk(*it,
                 std::make_exception_ptr(WorkerLost(
                     0, it->first, 0, 0,
                     "mpp::mpi: no worker rank left to run " + range_label(it->first, it->count) +
                         ": every rank this pool may use was given up on")));
      it = retry.erase(it);
      any = true;
    } else {
      ++it;
    }
  }
  for (bool again = true; again;) {
    again = false;
    for (std::size_t i = 0; i < active.size(); ++i) {
      Batch& b = *active[i];
      if (b.abandoned) b.exhausted = true;
      if (b.exhausted) continue;
      if (!b.may_produce()) continue;
      try {
        if (workers.empty()) {
          // A job of one rank: run one chunk here, then let the caller look at its results.
          // Never from ready()/poll, which must not block.
          if (!may_block) return any;
          run_locally(b);
          return true;
        }
        WorkerRank* w = pick(b);
        const bool doomed = w == nullptr && !any_live(b);
        if (w == nullptr && !doomed) continue;
        Chunk c;
        c.msg.resize(sizeof(TaskHeader));
        ends.clear();
        const std::uint32_t n = mpp::detail::produce_chunk(b, c.msg, c.first, ends);
        if (n == 0) {
          any |= b.batch_error != nullptr;  // the input range threw
          continue;
        }
        if (c.msg.size() > static_cast<std::size_t>(INT_MAX)) {
          throw SerializationError(
              "mpp::mpi: a chunk's inputs exceed 2 GiB; use a smaller chunksize");
        }
        TaskHeader h{b.id, c.first, n, 0, b.trampoline, b.function, b.seed};
        std::memcpy(c.msg.data(), &h, sizeof h);
        c.count = n;
        c.batch = active[i];
        ++b.in_flight;
        any = again = true;
        if (doomed) {
          fail_chunk(c, std::make_exception_ptr(WorkerLost(
                            0, c.first, 0, 0,
                            "mpp::mpi: no worker rank left to run " + range_label(c.first, n) +
                                ": every rank this pool may use was given up on")));
          continue;
        }
        send(*w, std::move(c));
      } catch (...) {
        b.batch_error = std::current_exception();
        b.exhausted = true;
        any = true;
      }
    }
  }
  std::erase_if(active, [](const std::shared_ptr<Batch>& b) { return b->exhausted; });
  return any;
}

void Engine::deliver(Batch& b, const ResultHeader& h, std::span<const std::byte> results,
                     std::span<const std::byte> errors, int from, pid_t from_pid,
                     const std::string& from_host) noexcept {
  std::string where;
  if (h.nerrors != 0) {
    try {
      where = " [on MPI rank " + std::to_string(from) + ", host " + from_host + "]";
    } catch (...) {
      // No memory for the suffix: the errors still name the pid.
    }
  }
  mpp::detail::ChunkReply r;
  r.first_index = h.first;
  r.count = h.count;
  r.results = results;
  r.records = errors;
  r.nerrors = h.nerrors;
  r.pid = from_pid;
  r.where = where;
  mpp::detail::deliver_reply(b, r, failures);
}

void Engine::handle_result(WorkerRank& w, std::span<const std::byte> bytes) {
  if (w.lost || w.out.empty() || bytes.size() < sizeof(ResultHeader)) return;  // late or stray
  ResultHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  Chunk c = std::move(w.out.front());
  w.out.pop_front();
  note_head(w);
  if (longest_timeout.count() > 0) w.last_result = Clock::now();
  MPI_Wait(&c.req, MPI_STATUS_IGNORE);  // the worker has the task: the send is complete
  if (c.orphan) return;
  const std::size_t body = bytes.size() - sizeof h;
  if (h.batch != c.batch->id || h.first != c.first || h.count != c.count || h.results_len > body) {
    fail_chunk(c,
               std::make_exception_ptr(SerializationError(
                   "mpp::mpi: malformed result message from MPI rank " + std::to_string(w.rank))));
    return;
  }
  const auto results = bytes.subspan(sizeof h, h.results_len);
  const auto errors = bytes.subspan(sizeof h + h.results_len);
  deliver(*c.batch, h, results, errors, w.rank, w.pid, w.host);
  --c.batch->in_flight;
}

// One message at most: the caller looks at its condition after each, so a wait that just got its
// result returns without another probe (which, oversubscribed, would yield the CPU first).
bool Engine::receive() {
  int flag = 0;
  MPI_Message m;
  MPI_Status st;
  check(MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &m, &st), "probe failed");
  if (flag == 0) return false;
  int n = 0;
  MPI_Get_count(&st, MPI_BYTE, &n);
  rbuf.resize(static_cast<std::size_t>(n));
  check(MPI_Mrecv(rbuf.data(), n, MPI_BYTE, &m, &st), "receive failed");
  const int src = st.MPI_SOURCE;
  if (src < 1 || static_cast<std::size_t>(src) > workers.size()) return true;
  WorkerRank& w = workers[static_cast<std::size_t>(src - 1)];
  if (st.MPI_TAG == kTagResult) handle_result(w, rbuf);
  if (st.MPI_TAG == kTagStopAck) w.acked = true;
  return true;
}

void Engine::give_up(WorkerRank& w, Clock::time_point now) {
  (void)now;
  w.lost = true;
  bool head = true;
  while (!w.out.empty()) {
    Chunk c = std::move(w.out.front());
    w.out.pop_front();
    if (head && !c.orphan) {
      const Resolved r = resolve(c.batch->trampoline, c.batch->function);
      const std::string what =
          "mpp::mpi: " + rank_label(w.rank, w.pid, w.host) + " exceeded task_timeout (" +
          std::to_string(c.batch->timeout.count()) + " ms per item) running " +
          range_label(c.first, c.count) + " of " + (r.name != nullptr ? r.name : "?") +
          ": a hung task or a network partition; the rank gets no more work";
      mpp::detail::fail_items(*c.batch, c.first, c.count, {}, [&](std::int64_t idx) {
        return std::make_exception_ptr(WorkerLost(w.pid, idx, 0, 0, what));
      });
      --c.batch->in_flight;
      c.orphan = true;
    } else if (!c.orphan) {
      // Queued behind the hung task: it never started, so it runs elsewhere.
      Chunk again;
      again.batch = c.batch;
      again.first = c.first;
      again.count = c.count;
      again.msg.append(c.msg.data(), c.msg.size());
      retry.push_back(std::move(again));
    }
    head = false;
    dangling.push_back(std::move(c));
  }
  note_head(w);
}

bool Engine::check_timeouts() {
  if (longest_timeout.count() <= 0 && dangling.empty()) return false;  // no clock read needed
  bool any = false;
  const auto now = Clock::now();
  for (auto& w : workers) {
    if (w.lost || w.out.empty()) continue;
    const Chunk& c = w.out.front();
    if (c.batch->timeout.count() <= 0) continue;
    const auto started = std::max(c.sent, w.last_result);
    if (now - started > c.batch->timeout * std::max<std::uint32_t>(c.count, 1)) {
      give_up(w, now);
      any = true;
    }
  }
  if (!dangling.empty()) {
    std::erase_if(dangling, [](Chunk& c) {
      int done = 0;
      MPI_Test(&c.req, &done, MPI_STATUS_IGNORE);
      return done != 0;
    });
  }
  return any;
}

bool Engine::pump(bool may_block) {
  if (stopped) throw std::logic_error("mpp::mpi::Pool used after MPI was finalized");
  bool any = false;
  if (!workers.empty()) {
    any |= receive();
    any |= check_timeouts();
  }
  any |= dispatch(may_block);
  return any;
}

void Engine::cancel(Batch& b, const std::exception_ptr& error) noexcept {
  auto drop = [&](Chunk& c) {
    if (c.batch.get() == &b) fail_chunk(c, error);
  };
  for (auto& w : workers) {
    for (auto& c : w.out) drop(c);
  }
  for (auto& c : retry) drop(c);
  // Items never produced have no index to fail: the call as a whole fails with `error`.
  if (!b.exhausted && !b.batch_error) b.batch_error = error;
  b.exhausted = true;
}

void Engine::shutdown() noexcept {
  if (stopped) return;
  stopped = true;
  try {
    std::vector<MPI_Request> stops(workers.size(), MPI_REQUEST_NULL);
    for (std::size_t i = 0; i < workers.size(); ++i) {
      MPI_Isend(nullptr, 0, MPI_BYTE, workers[i].rank, kTagStop, comm, &stops[i]);
    }
    const auto grace = std::max<Clock::duration>(std::chrono::seconds(5), longest_timeout);
    const auto deadline = Clock::now() + grace;
    Backoff backoff(std::chrono::microseconds(50), std::chrono::microseconds(1000), 2000);
    for (;;) {
      if (receive()) backoff.reset();
      bool waiting = false;
      bool waiting_live = false;
      for (auto& w : workers) {
        waiting |= !w.acked;
        waiting_live |= !w.acked && !w.lost;
      }
      if (!waiting) break;
      if (!waiting_live && Clock::now() > deadline) {
        for (auto& w : workers) {
          if (w.acked) continue;
          std::fprintf(stderr,
                       "mpp::mpi: %s did not come back after it was given up on (task_timeout); "
                       "aborting the job instead of hanging in MPI_Finalize\n",
                       rank_label(w.rank, w.pid, w.host).c_str());
        }
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      backoff.pause();
    }
    MPI_Waitall(static_cast<int>(stops.size()), stops.data(), MPI_STATUSES_IGNORE);
    for (auto& w : workers) {
      for (auto& c : w.out) MPI_Wait(&c.req, MPI_STATUS_IGNORE);
      w.out.clear();
    }
    for (auto& c : dangling) MPI_Wait(&c.req, MPI_STATUS_IGNORE);
    dangling.clear();
    retry.clear();
    active.clear();
    MPI_Comm_free(&comm);
  } catch (...) {
    // Nothing sensible is left to do while MPI finalizes; the job's exit status tells.
  }
}

// ---- interface ----

std::shared_ptr<Engine> engine_start() {
  const std::lock_guard start(g_start_mutex);
  if (g_engine != nullptr) {
    if (g_engine->stopped) throw std::logic_error("mpp::mpi::Pool created after MPI was finalized");
    return std::shared_ptr<Engine>(g_engine, [](Engine*) {});
  }
  ensure_mpi();
  auto e = std::make_unique<Engine>();
  check(MPI_Comm_dup(MPI_COMM_WORLD, &e->comm), "cannot duplicate MPI_COMM_WORLD");
  int size = 1;
  MPI_Comm_rank(e->comm, &e->rank);
  MPI_Comm_size(e->comm, &size);
  e->pid = sys::self_pid();
  e->host = sys::host_name();

  Hello me{};
  me.magic = kMagic;
  me.wire = codec::kWireVersion;
  me.hash = registry_hash();
  me.entries = registry_size();
  me.pid = e->pid;
  std::snprintf(me.host, sizeof me.host, "%s", e->host.c_str());
  std::vector<Hello> all(static_cast<std::size_t>(size));
  check(MPI_Allgather(&me, sizeof me, MPI_BYTE, all.data(), sizeof me, MPI_BYTE, e->comm),
        "start-up handshake failed");
  std::string mismatch;
  for (int r = 1; r < size; ++r) {
    const Hello& h = all[static_cast<std::size_t>(r)];
    if (h.magic != kMagic || h.wire != all[0].wire || h.hash != all[0].hash) {
      mismatch += "\n  rank " + std::to_string(r) + " on " +
                  std::string(h.host, strnlen(h.host, 64)) + ": " + std::to_string(h.entries) +
                  " callables, registry hash " + std::to_string(h.hash);
    }
  }
  if (!mismatch.empty()) {
    mismatch =
        "mpp::mpi: the ranks do not run the same program (their function registries "
        "differ); rank 0 has " +
        std::to_string(all[0].entries) + " callables, hash " + std::to_string(all[0].hash) +
        "; differing:" + mismatch;
  }
  for (int r = 1; r < size; ++r) {
    const Hello& h = all[static_cast<std::size_t>(r)];
    WorkerRank w;
    w.rank = r;
    w.pid = static_cast<pid_t>(h.pid);
    w.host.assign(h.host, strnlen(h.host, sizeof h.host));
    e->workers.push_back(std::move(w));
  }

  if (e->rank != 0) {
    Engine& self = *e.release();  // serves until the end of the process
    if (!mismatch.empty()) {
      std::fprintf(stderr, "%s\n", mismatch.c_str());
      std::fflush(stderr);
      MPI_Finalize();
      std::exit(1);
    }
    try {
      serve(self);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "mpp::mpi: rank %d: %s\n", self.rank, ex.what());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    std::fflush(nullptr);
    MPI_Finalize();
    std::exit(0);
  }
  if (!mismatch.empty()) throw std::logic_error(mismatch);
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  e->one_thread = level < MPI_THREAD_SERIALIZED;
  e->owner = std::this_thread::get_id();
  e->activity = std::make_unique<sys::RankActivity[]>(e->workers.size());
  sys::install_job_report(e->activity.get(), static_cast<int>(e->workers.size()));
  int keyval = MPI_KEYVAL_INVALID;
  check(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, on_finalize, &keyval, nullptr),
        "cannot hook MPI_Finalize");
  check(MPI_Comm_set_attr(MPI_COMM_SELF, keyval, nullptr), "cannot hook MPI_Finalize");
  g_engine = e.release();
  return std::shared_ptr<Engine>(g_engine, [](Engine*) {});
}

void engine_submit(Engine& e, std::shared_ptr<Batch> batch) {
  const auto lk = locked(e);
  e.submit(std::move(batch));
  // Hand the first chunks out now, like Python's apply_async: the work starts while the caller
  // goes on, not at its first wait. Only sends: a probe that finds nothing makes Open MPI yield
  // the CPU when the machine is oversubscribed, which would delay the task by a time slice.
  e.send_now();
}

bool engine_wait(Engine& e, const std::function<bool()>& done, Clock::time_point deadline) {
  auto lk = locked(e);
  if (done()) return true;
  // Another thread polls: sleep until it delivers ours, or hands over.
  if (!e.gate.enter(lk, done, deadline)) return done();
  const mpp::detail::DriverScope scope(e.gate);
  Backoff backoff(std::chrono::microseconds(100), std::chrono::microseconds(1000), 1000);
  for (;;) {
    const bool any = e.pump();
    if (any) (void)e.gate.progressed();
    if (done()) return true;
    if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return false;
    if (any) {
      backoff.reset();
    } else {
      // Without the mutex: other threads submit (their chunks go out at once) meanwhile.
      lk.unlock();
      backoff.pause(deadline);
      lk.lock();
    }
  }
}

void engine_poll(Engine& e) {
  const auto lk = locked(e);
  // Everything that is there now, but never wait for more.
  bool any = false;
  for (int i = 0; i < 100000 && e.pump(false); ++i) any = true;
  if (any) (void)e.gate.progressed();
}

void engine_cancel(Engine& e, Batch& b, const std::exception_ptr& error, bool) noexcept {
  const std::lock_guard lk(e.gate.mutex());
  e.cancel(b, error);
  e.gate.wake_all();
}

std::unique_lock<std::mutex> engine_lock(Engine& e) { return locked(e); }

unsigned engine_workers(const Engine& e) noexcept {
  const std::lock_guard lk(const_cast<Engine&>(e).gate.mutex());
  return e.live_workers();
}

int world_rank() {
  ensure_mpi();
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  ensure_mpi();
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

}  // namespace mpp::mpi::detail
