// The worker side of mpp::Pool: the loop a worker runs (read a chunk from its task ring, run it
// through the chunk's trampoline, write the reply to its result ring), and the entry of a worker
// that is not a fork of the program (StartMethod::forkserver, spawn: launch.hpp).
#include "pool/worker.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpp/detail/exception_info.hpp"
#include "mpp/detail/registry.hpp"
#include "process/forker.hpp"
#include "runtime/fork_hooks.hpp"
#include "sys/failpoint.hpp"
#include "sys/mem.hpp"
#include "sys/module.hpp"
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

// Fails every item of the chunk (but those it skips) with `why`.
void fail_chunk(TaskCall& call, const std::string& why) noexcept {
  std::size_t s = 0;
  for (std::uint32_t i = 0; i < call.count; ++i) {
    const std::int64_t idx = call.first_index + static_cast<std::int64_t>(i);
    while (s < call.skip.size() && call.skip[s] < idx) ++s;
    if (s < call.skip.size() && call.skip[s] == idx) continue;
    try {
      throw std::runtime_error(why);
    } catch (...) {
      record_failure(call, i);
    }
  }
}

// The function a CodeRef names here, or nullptr (and `why`). The last one is remembered.
const void* resolve_code(const sys::CodeRef& ref, const char** why) noexcept {
  static thread_local sys::CodeRef last{};
  static thread_local const void* last_at = nullptr;
  if (last_at != nullptr && last.module == ref.module && last.offset == ref.offset &&
      last.fingerprint == ref.fingerprint) {
    return last_at;
  }
  const void* at = sys::code_at(ref, why);
  if (at != nullptr) {
    last = ref;
    last_at = at;
  }
  return at;
}

// A chunk whose code is named by ids (see wire::TaskHeader): looks them up, never jumps to a
// number it received; a name it does not know fails the chunk's items with RemoteError.
void run_by_id(const TaskHeader& h, TaskCall& call) noexcept {
  const TaskFn t = find_trampoline(h.fn);
  if (t == nullptr) {
    fail_chunk(call,
               "mpp::Pool: this worker does not know the callable's id (a different build "
               "of the program?)");
    return;
  }
  sys::CodeRef ref;
  std::memcpy(&ref.module, h.fstate, sizeof ref.module);
  std::memcpy(&ref.fingerprint, h.fstate + sizeof ref.module, sizeof ref.fingerprint);
  ref.offset = h.context;
  if (ref.module != 0 || ref.offset != 0) {
    const char* why = "the function could not be named";
    const void* at = ref.module != 0 ? resolve_code(ref, &why) : nullptr;
    if (at == nullptr) {
      fail_chunk(call,
                 std::string("mpp::Pool: this worker cannot find the task's function: ") + why);
      return;
    }
    call.fn = reinterpret_cast<AnyFn>(const_cast<void*>(at));
  }
  call.fstate = nullptr;
  call.context = 0;
  t(call);
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
    // Under fork, the parent sent the address of a trampoline of this same program image (a
    // fork); otherwise its registry id (run_by_id). Past the chunk's
    // items it leaves `current` at -1: a death from there on (sending the result) is no item's
    // fault, and the parent re-runs the whole chunk instead of blaming its last item.
    const auto began = std::chrono::steady_clock::now();  // vDSO: no system call
    if (env.by_id) {
      run_by_id(h, call);
    } else {
      reinterpret_cast<TaskFn>(static_cast<std::uintptr_t>(h.fn))(call);
    }
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

// The initializer of a forkserver or spawned worker, by id (PoolInitializer).
void run_initializer(std::uint64_t id, const sys::CodeRef& ref) {
  const TaskFn t = find_trampoline(id);
  if (t == nullptr) {
    throw std::runtime_error("mpp::Pool: this worker does not know the initializer's id");
  }
  TaskCall c;
  if (ref.module != 0) {
    const char* why = "";
    const void* at = sys::code_at(ref, &why);
    if (at == nullptr) {
      throw std::runtime_error(std::string("mpp::Pool: this worker cannot find the initializer: ") +
                               why);
    }
    c.fn = reinterpret_cast<AnyFn>(const_cast<void*>(at));
  }
  std::exception_ptr error;
  c.context = reinterpret_cast<std::uintptr_t>(&error);
  t(c);
  if (error) std::rethrow_exception(error);
}

// What a forkserver child or a spawned process of kind kEntryPoolWorker runs: the WorkerBoot and
// the memfd of the pool's mapping (launch.hpp). It is a fresh process of its own (a fork of the
// single-threaded forkserver, or a new execution): it may allocate before user code runs.
void pool_worker_entry(const void* payload, std::size_t n, sys::Fd* fds,
                       std::size_t nfds) noexcept {
  wire::WorkerBoot b{};
  if (n != sizeof b || nfds < 1) sys::exit_immediately(70);
  std::memcpy(&b, payload, sizeof b);
  if (b.magic != wire::kBootMagic || b.slot_offset + sizeof(wire::WorkerShared) > b.map_size) {
    sys::exit_immediately(70);
  }
  try {
    // Mapped for the rest of this process (it leaves with _exit).
    auto* map = new sys::Mapping(sys::map_fd_shared(fds[0].get(), b.map_size));
    fds[0].reset();
    auto* ps = static_cast<wire::PoolShared*>(map->data());
    auto* sh = reinterpret_cast<wire::WorkerShared*>(map->bytes() + b.slot_offset);
    auto* options = new PoolOptions;
    options->maxtasksperchild = b.maxtasksperchild;
    if (b.max_memory_per_child != 0) options->max_memory_per_child = b.max_memory_per_child;
    if (b.init_id != 0) {
      const std::uint64_t id = b.init_id;
      const sys::CodeRef ref = b.init_fn;
      options->initializer = [id, ref] { run_initializer(id, ref); };
    }
    auto* setup = new sys::ChildSetup;
    setup->name = "mpp-pool-worker";
    setup->has_nice = b.has_nice != 0;
    setup->nice = b.nice;
    setup->has_ionice = b.has_ionice != 0;
    setup->ionice = b.ionice;
    setup->memory_limit = b.memory_limit;
    setup->die_with_parent = true;
    setup->parent = sys::parent_pid();
    // No crash stacks: the parent could not name addresses of this execution (crash_stack.hpp
    // symbolizes in the parent), so without prepare_crash_stacks() here the handler stays off
    // and WorkerLost says the signal only.
    worker_main(WorkerEnv{sh, ps, setup->parent, true}, *options, *setup);
  } catch (...) {
    sys::exit_immediately(71);
  }
}

[[maybe_unused]] const bool g_entry_registered =
    (register_fork_entry(kEntryPoolWorker, &pool_worker_entry), true);

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
