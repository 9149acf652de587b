// How mpp::Pool starts its workers and names their code (see launch.hpp).
#include "pool/launch.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "pool/worker.hpp"
#include "sys/check.hpp"
#include "sys/demangle.hpp"
#include "sys/failpoint.hpp"
#include "sys/fault.hpp"

namespace mpp::detail {

namespace {

StartMethod method_of(const PoolOptions& o, bool per_call) {
  if (per_call) return StartMethod::fork;  // a call with state: the engine checked it is a fork
  return o.start_method.value_or(get_start_method());
}

std::string stateful_message(StartMethod m, const std::string& what) {
  return "mpp::Pool: " + what + " has state, which cannot reach workers started by " +
         "StartMethod::" + to_string(m) +
         " (they are fresh executions of the program): use a function, a function pointer, a "
         "captureless lambda or an empty functor and pass the data as arguments, or use "
         "StartMethod::fork";
}

}  // namespace

Launcher::Launcher(const PoolOptions& options, bool per_call)
    : options_(options), method_(method_of(options, per_call)), per_call_(per_call) {
  if (method_ == StartMethod::fork) return;
  require_init(method_ == StartMethod::forkserver ? "mpp::Pool with StartMethod::forkserver"
                                                  : "mpp::Pool with StartMethod::spawn");
  const PoolInitializer& init = options_.initializer;
  if (init && init.stateless_id() == 0) {
    throw std::invalid_argument(stateful_message(method_, "the initializer"));
  }
  boot_.magic = wire::kBootMagic;
  boot_.has_nice = options_.nice.has_value() ? 1 : 0;
  boot_.nice = options_.nice.value_or(0);
  boot_.has_ionice = options_.ionice.has_value() ? 1 : 0;
  boot_.ionice = options_.ionice.value_or(0);
  boot_.memory_limit = options_.memory_limit.value_or(0);
  boot_.maxtasksperchild = options_.maxtasksperchild;
  boot_.max_memory_per_child = options_.max_memory_per_child.value_or(0);
  boot_.init_id = init.stateless_id();
  if (init.function() != nullptr &&
      !sys::code_ref_of(reinterpret_cast<const void*>(init.function()), boot_.init_fn)) {
    throw std::invalid_argument("mpp::Pool: the initializer function is in no loaded module");
  }
}

Launcher::~Launcher() = default;

sys::Mapping Launcher::map_shared(std::size_t size) {
  if (method_ == StartMethod::fork) return sys::map_anonymous_shared(size);
  memfd_ = sys::memfd_create_sized("mpp-pool", size);
  map_size_ = size;
  return sys::map_fd_shared(memfd_.get(), size);
}

void Launcher::prepare(wire::PoolShared* ps, std::vector<wire::WorkerShared*> slots,
                       const sys::ChildSetup& setup) {
  ps_ = ps;
  slots_ = std::move(slots);
  setup_ = &setup;
  boot_.map_size = map_size_;
  switch (method_) {
    case StartMethod::fork:
      // Forking from a program that runs other threads: warn (once per process); the pool's
      // replacements then come from the zygote, which runs none of them.
      (void)check_threaded_fork();
      if (!per_call_) zygote_ = Forker::make_zygote(&Launcher::zygote_entry, this);
      break;
    case StartMethod::forkserver:
      server_ = Forker::server();
      break;
    case StartMethod::spawn:
      break;
  }
}

void Launcher::zygote_entry(void* context, const void* payload, std::size_t n, sys::Fd*,
                            std::size_t) noexcept {
  // In a child of the zygote: the zygote's memory is the program's at the pool's creation, so
  // the launcher (and the engine's options and set-up it points to) is where it was.
  auto* self = static_cast<Launcher*>(context);
  std::uint32_t req[2] = {};  // slot, and 1 for a replacement
  if (n != sizeof req) sys::exit_immediately(70);
  std::memcpy(req, payload, sizeof req);
  const std::uint32_t slot = req[0];
  if (slot >= self->slots_.size()) sys::exit_immediately(70);
  // The fail points armed in the program when the pool was built are the zygote's too; like the
  // fault seam, they belong to the forks of that moment only (the pool's first workers), as
  // they did when every replacement was a fork of the program made later.
  if (req[1] != 0) failpoint::disarm();
  sys::ChildSetup setup = *self->setup_;
  setup.parent = sys::parent_pid();  // the zygote
  worker_main(WorkerEnv{self->slots_[slot], self->ps_, setup.parent}, self->options_, setup);
}

WorkerProcess Launcher::start(unsigned slot) {
  // The test seam of a refused fork covers the forks a forker makes for us too (its own copy of
  // the seam is disarmed: see Forker::make_zygote).
  const bool forked_here =
      method_ == StartMethod::spawn || (method_ == StartMethod::fork && !zygote_);
  if (!forked_here) {
    if (int e = sys::fault::take(sys::fault::Op::fork)) sys::throw_errno(e, "cannot fork worker");
  }
  switch (method_) {
    case StartMethod::fork: {
      if (zygote_) {
        const std::uint32_t s[2] = {slot, started_ >= slots_.size() ? 1u : 0u};
        ++started_;
        if (zygote_->alive()) {
          try {
            return zygote_->start(0, s, sizeof s);
          } catch (const std::system_error&) {
            if (zygote_->alive()) throw;  // its fork failed: the OS refused
          }
        }
        // The zygote was killed (its workers died with it): a new one, forked from the program
        // now, which may run threads by then (the warning says so). Its copy of the pool's
        // options and memory is the program's current one.
        zygote_.reset();
        (void)check_threaded_fork();
        zygote_ = Forker::make_zygote(&Launcher::zygote_entry, this);
        return zygote_->start(0, s, sizeof s);
      }
      (void)check_threaded_fork();
      const pid_t pid = sys::fork_or_throw("cannot fork worker");
      if (pid == 0) {
        worker_main(WorkerEnv{slots_[slot], ps_, setup_->parent}, options_, *setup_);
      }
      return WorkerProcess(sys::Child(pid));
    }
    case StartMethod::forkserver:
    case StartMethod::spawn: {
      wire::WorkerBoot b = boot_;
      b.slot = slot;
      b.slot_offset = static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(slots_[slot]) -
                                                 reinterpret_cast<std::byte*>(ps_));
      const int fd = memfd_.get();
      if (method_ == StartMethod::spawn)
        return spawn_process(kEntryPoolWorker, &b, sizeof b, &fd, 1);
      if (!server_->alive()) server_ = Forker::server();  // it died: start another
      return server_->start(kEntryPoolWorker, &b, sizeof b, &fd, 1);
    }
  }
  throw std::logic_error("mpp::Pool: unknown start method");
}

void Launcher::shutdown() noexcept { zygote_.reset(); }

void Launcher::describe(const Batch<LocalTransport>& b, wire::TaskHeader& h) {
  if (!by_id()) {
    h.fn = reinterpret_cast<std::uintptr_t>(b.fn);
    h.context = b.context;
    std::memcpy(h.fstate, b.fstate, sizeof h.fstate);
    return;
  }
  h.fn = b.fn_id;
  h.context = 0;
  std::memset(h.fstate, 0, sizeof h.fstate);
  if (b.fn_ptr == nullptr) return;
  if (b.fn_ptr != last_fn_) {
    sys::CodeRef ref;
    // A function outside every module cannot be named: the worker then refuses module 0.
    if (!sys::code_ref_of(reinterpret_cast<const void*>(b.fn_ptr), ref)) ref = sys::CodeRef{};
    last_fn_ = b.fn_ptr;
    last_ref_ = ref;
  }
  h.context = last_ref_.offset;
  static_assert(sizeof h.fstate >= 2 * sizeof(std::uint64_t), "fstate holds a module and a hash");
  std::memcpy(h.fstate, &last_ref_.module, sizeof(std::uint64_t));
  std::memcpy(h.fstate + sizeof(std::uint64_t), &last_ref_.fingerprint, sizeof(std::uint64_t));
  if (last_ref_.module == 0) h.context = ~std::uint64_t{0};  // "unnamed": refused by the worker
}

void check_stateful_method(StartMethod m, const char* type) {
  if (m == StartMethod::fork) return;
  throw std::invalid_argument(stateful_message(m, "this callable (" + sys::demangle(type) + ")"));
}

}  // namespace mpp::detail
