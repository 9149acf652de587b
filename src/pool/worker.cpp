// The worker side of mpp::Pool: the loop a forked worker runs (read a chunk from its task ring,
// run it through the chunk's trampoline, write the reply to its result ring).
#include "pool/worker.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "mpp/detail/exception_info.hpp"
#include "runtime/fork_hooks.hpp"
#include "sys/failpoint.hpp"
#include "sys/mem.hpp"
#include "sys/proc.hpp"

namespace mpp::detail {

namespace {

using namespace std::chrono_literals;
using wire::ResultHeader;
using wire::TaskHeader;

// No busy-waiting before sleeping on the futex (see kParentSpin in engine.cpp).
constexpr auto kWorkerSpin = 0us;
constexpr auto kParentCheck = 200ms;  // how often an idle worker checks its parent is alive

void copy_cstr(char* dst, std::size_t cap, const std::string& s) noexcept {
  const std::size_t n = std::min(cap - 1, s.size());
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

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
    if (h.magic != wire::kTaskMagic || h.kind != wire::kKindTask) leave_worker(0);
    skip.resize(h.nskip);
    worker_read(env, skip.data(), skip.size() * sizeof(std::int64_t));
    payload.resize(static_cast<std::size_t>(h.payload_len));
    worker_read(env, payload.data(), payload.size());
    env.sh->current.store(-1, std::memory_order_relaxed);
    const std::uint64_t place = env.sh->chunks_started.fetch_add(1, std::memory_order_seq_cst) + 1;
    MPP_FAILPOINT("pool.worker.after_take");
    if (env.sh->dropped[place % wire::kDropSlots].load(std::memory_order_seq_cst) == place) {
      // Cancelled while it waited in the ring: an empty reply, nothing run (still one chunk for
      // maxtasksperchild, as the parent counts it).
      const ResultHeader r{
          wire::kResultMagic, 0, h.first_index, h.count, wire::kDroppedChunk, 0, 0};
      worker_write(env, &r, sizeof r);
      if (options.maxtasksperchild != 0 && ++done >= options.maxtasksperchild) leave_worker(0);
      continue;
    }

    // One buffer, one write: [header][results][failures], so a reply costs one wake-up.
    out.resize(sizeof(ResultHeader));
    errors.clear();
    TaskCall call;
    call.in = std::span<const std::byte>(payload.data(), payload.size());
    call.first_index = h.first_index;
    call.count = h.count;
    call.skip = skip;
    call.fstate = h.fstate;
    call.context = static_cast<std::uintptr_t>(h.context);
    call.seed = h.seed;
    call.out = &out;
    call.errors = &errors;
    call.current = &env.sh->current;
    // The parent sent the address of a trampoline of this same program image. Past the chunk's
    // items it leaves `current` at -1: a death from there on (sending the result) is no item's
    // fault, and the parent re-runs the whole chunk instead of blaming its last item.
    const auto began = std::chrono::steady_clock::now();  // vDSO: no system call
    reinterpret_cast<TaskFn>(static_cast<std::uintptr_t>(h.fn))(call);
    // Only this process writes its busy time (the parent reads it, and resets it only while no
    // worker runs in the slot): a plain add, no locked instruction per chunk.
    const auto spent = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - began);
    env.sh->busy_ns.store(
        env.sh->busy_ns.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(spent.count()),
        std::memory_order_relaxed);

    const std::size_t results_len = out.size() - sizeof(ResultHeader);
    out.append(errors.data(), errors.size());
    const ResultHeader r{wire::kResultMagic, call.nerrors, h.first_index, h.count, 0,
                         results_len,        errors.size()};
    std::memcpy(out.data(), &r, sizeof r);
    MPP_FAILPOINT("pool.worker.before_result");
    worker_write(env, out.data(), out.size());
    ++done;
    // The parent counts too and sends no more than this; the result is already in the ring.
    if (options.maxtasksperchild != 0 && done >= options.maxtasksperchild) leave_worker(0);
    // Grown too much: leave between chunks (the parent takes our result first, then re-sends
    // the chunks we had not started and forks a replacement). One read of /proc/self/statm.
    if (options.max_memory_per_child) {
      sys::MemoryUse use;
      if (sys::memory_use(use) && use.resident > *options.max_memory_per_child) leave_worker(0);
    }
  }
}

}  // namespace

[[noreturn]] void worker_main(const WorkerEnv& env, const PoolOptions& options,
                              const sys::ChildSetup& setup) noexcept {
  // Until user code runs: only async-signal-safe steps (the parent may have other threads).
  if (sys::apply_child_setup(setup) != 0) {
    // No allocation here: copy fixed strings byte by byte.
    const char* what =
        "cannot set up pool worker (niceness, I/O priority, memory limit, name or parent death "
        "signal)";
    std::size_t i = 0;
    for (; what[i] != '\0' && i + 1 < sizeof env.sh->fail_message; ++i) {
      env.sh->fail_message[i] = what[i];
    }
    env.sh->fail_message[i] = '\0';
    const char* type = "std::system_error";
    for (i = 0; type[i] != '\0'; ++i) env.sh->fail_type[i] = type[i];
    env.sh->fail_type[i] = '\0';
    env.sh->state.store(wire::kInitFailed, std::memory_order_release);
    sys::exit_immediately(3);
  }
  // A crash in user code reports its stack through the slot (async-signal-safe set-up).
  sys::install_crash_handler(&env.sh->crash);
  // (The fork hooks have run already: fork() runs them through pthread_atfork.)
  MPP_FAILPOINT("pool.worker.before_init");  // forked, before user code
  try {
    if (options.initializer) options.initializer();
  } catch (...) {
    auto info = describe_current_exception();
    copy_cstr(env.sh->fail_type, sizeof env.sh->fail_type, info.type_name);
    copy_cstr(env.sh->fail_message, sizeof env.sh->fail_message,
              "pool initializer failed: " + info.message);
    env.sh->state.store(wire::kInitFailed, std::memory_order_release);
    leave_worker(3);
  }
  env.sh->state.store(wire::kRunning, std::memory_order_release);
  try {
    worker_loop(env, options);
  } catch (...) {
    // Out of memory in the transport: the parent sees a lost worker and recovers.
    leave_worker(4);
  }
}

}  // namespace mpp::detail
