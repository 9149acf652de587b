#include "mpp/process.hpp"

#include <stdio_ext.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <ext/stdio_sync_filebuf.h>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "mpp/detail/exception_info.hpp"
#include "mpp/detail/registry.hpp"
#include "process/forker.hpp"
#include "runtime/fork_hooks.hpp"
#include "sys/crash_stack.hpp"
#include "sys/demangle.hpp"
#include "sys/failpoint.hpp"
#include "sys/mem.hpp"
#include "sys/module.hpp"
#include "sys/proc.hpp"
#include "sys/sched.hpp"
#include "sys/terminal.hpp"

namespace mpp {
namespace detail {

// One shared page through which the child reports an exception that escaped its target. A page
// (rather than a pipe) never blocks the child and costs the parent nothing unless it reads it.
// The same page carries the frames of a crash (sys/crash_stack.hpp), written by the child's
// crash handler.
struct ErrorPage {
  std::atomic<std::uint32_t> has_error;
  std::uint32_t type_len;
  std::uint32_t message_len;
  std::uint32_t reserved;  // keeps `crash` 8-byte aligned
  sys::CrashFrames crash;
  char text[4096 - 4 * sizeof(std::uint32_t) - sizeof(sys::CrashFrames)];
};
static_assert(sizeof(ErrorPage) == 4096, "the error report must fit one page");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "the error flag is read across processes and must be lock-free");

// Error pages come from arenas of shared pages that are mapped once and recycled: an mmap/munmap
// pair (and a first-touch fault) per start() cost more than the rest of start+join together.
constexpr std::size_t kPagesPerArena = 64;
struct ErrorArena {
  sys::Mapping map;
  std::vector<std::uint32_t> free;
};
struct ErrorSlot {
  ErrorPage* page = nullptr;
  ErrorArena* arena = nullptr;
  std::uint32_t index = 0;
  pid_t owner = 0;
};

struct ProcessState {
  ProcessOptions options;
  std::unique_ptr<TargetBase> target;
  bool started = false;
  pid_t owner = 0;  // pid of the process that started it (registry entries are per process)
  // Our child (fork, spawn), or the forkserver's (forker.hpp).
  mutable WorkerProcess child;
  // forkserver and spawn: the error page is a memfd of its own the child maps too, and the
  // child's crash frames are in its address space, not ours (not named here).
  sys::Mapping fresh_page;
  bool fresh = false;
  mutable ErrorSlot error_slot;
  mutable std::optional<RemoteError> error;
  mutable bool error_read = false;

  bool ended() const {
    if (!started || !child.poll()) return false;
    collect_error();
    return true;
  }
  // Once the child has ended, its error page is read (a crash stack printed on stderr) and the
  // page recycled.
  void collect_error() const;
  void report_crash(const sys::CrashFrames& crash) const;
};

namespace {
std::mutex g_arena_mutex;
// Never destroyed: the arenas stay reachable (no leak report) and usable until the very end.
// Owned arenas, forgotten (not freed) in forked children. The vector itself is never destroyed, so
// the arenas stay reachable for the leak checker and usable until the very end of the process.
std::vector<ErrorArena*>& g_arenas = *new std::vector<ErrorArena*>;
pid_t g_arena_owner = 0;  // the process whose free lists g_arenas describes

ErrorSlot acquire_error_slot() {
  std::lock_guard lock(g_arena_mutex);
  // In a forked child the arenas are shared with the parent, whose free lists we cannot see: start
  // over with fresh ones (the inherited ones stay mapped, unused). Checked here rather than in an
  // atfork handler so that the child of every fork writes nothing (each write is a copy-on-write
  // fault, and those dominate the cost of a short-lived child).
  const pid_t self = sys::self_pid();
  if (g_arena_owner != self) {
    g_arenas.clear();
    g_arena_owner = self;
  }
  ErrorArena* arena = nullptr;
  for (auto* a : g_arenas)
    if (!a->free.empty()) arena = a;
  if (arena == nullptr) {
    auto fresh = std::make_unique<ErrorArena>();
    fresh->map = sys::map_anonymous_shared(kPagesPerArena * sizeof(ErrorPage));
    for (std::uint32_t i = kPagesPerArena; i-- > 0;) fresh->free.push_back(i);
    g_arenas.push_back(fresh.get());
    arena = fresh.release();
  }
  ErrorSlot slot;
  slot.arena = arena;
  slot.index = arena->free.back();
  arena->free.pop_back();
  slot.page = static_cast<ErrorPage*>(arena->map.data()) + slot.index;
  slot.page->has_error.store(0, std::memory_order_relaxed);
  slot.owner = self;
  return slot;
}

void release_error_slot(ErrorSlot& slot) noexcept {
  if (slot.page == nullptr) return;
  if (slot.arena == nullptr) {  // a fresh child's own page (ProcessState::fresh_page)
    slot.page = nullptr;
    return;
  }
  std::lock_guard lock(g_arena_mutex);
  if (slot.owner == g_arena_owner) slot.arena->free.push_back(slot.index);
  slot.page = nullptr;
}

std::mutex g_registry_mutex;
std::vector<ProcessState*> g_registry;  // started, not yet known to have ended
std::atomic<unsigned> g_process_counter{0};

// A fork while another thread holds one of these mutexes would leave the child with a mutex no
// thread of it will release (and the vector behind it half-updated): a child that starts a
// Process of its own would then wait forever. So every fork() takes both first, and both sides
// release them after it, as glibc does for malloc's arenas.
void lock_for_fork() {
  g_registry_mutex.lock();
  g_arena_mutex.lock();
}
void unlock_after_fork() {
  g_arena_mutex.unlock();
  g_registry_mutex.unlock();
}
std::atomic<int> g_atfork{0};
[[maybe_unused]] const bool g_atfork_at_start =
    sys::register_atfork_once(g_atfork, &lock_for_fork, &unlock_after_fork, &unlock_after_fork);

void registry_add(ProcessState* s) {
  std::lock_guard lock(g_registry_mutex);
  g_registry.push_back(s);
}
void registry_remove(ProcessState* s) noexcept {
  std::lock_guard lock(g_registry_mutex);
  std::erase(g_registry, s);
}

void write_error(ErrorPage* page, const ExceptionInfo& info) noexcept {
  const std::size_t cap = sizeof(page->text);
  std::size_t tl = std::min(info.type_name.size(), cap / 4);
  std::size_t ml = std::min(info.message.size(), cap - tl);
  std::memcpy(page->text, info.type_name.data(), tl);
  std::memcpy(page->text + tl, info.message.data(), ml);
  page->type_len = static_cast<std::uint32_t>(tl);
  page->message_len = static_cast<std::uint32_t>(ml);
  page->has_error.store(1, std::memory_order_release);
}

// Flushes what the target printed to stdout/stderr (and std::cout/std::cerr), touching nothing when
// nothing is pending: in a just-forked child every first write to a page is a copy-on-write fault
// (10-20 us here), and an unconditional fflush(nullptr) writes to the stream locks and the stream
// list, which made start+join of a short child 40% slower than a bare fork. Only reads decide.
void flush_standard_streams() noexcept {
  if (::__fpending(stdout) > 0) std::fflush(stdout);
  if (::__fpending(stderr) > 0) std::fflush(stderr);
  // std::cout shares stdout's buffer unless the program called sync_with_stdio(false); then it
  // has its own buffer, which only flush() can reach.
  try {
    const std::streambuf* buf = std::cout.rdbuf();
    if (buf != nullptr && typeid(*buf) != typeid(__gnu_cxx::stdio_sync_filebuf<char>)) {
      std::cout.flush();
    }
  } catch (...) {
  }
}

// The end of every child: runs the target, turns what escaped it into the exit code (and the
// error page), flushes the standard streams, lets shared objects detach, and leaves.
template <class Run>
[[noreturn]] void run_target_and_exit(ErrorPage* page, Run&& run) noexcept {
  int code = 0;
  MPP_FAILPOINT("process.child.before_target");
  try {
    run();
  } catch (const SystemExit& e) {
    code = e.code;
  } catch (...) {
    write_error(page, describe_current_exception());
    code = 1;
  }
  flush_standard_streams();
  // Shared objects the target still holds (a Queue captured by value) detach now: _exit runs no
  // destructors.
  detail::run_child_exit_hooks();
  // Leave without running the parent's atexit handlers and static destructors a second time.
  ::_exit(code);
}

// Runs in the child; never returns, never throws.
[[noreturn]] void child_main(ProcessState& s, const sys::ChildSetup& setup) noexcept {
  auto* page = s.error_slot.page;
  if (int step = sys::apply_child_setup(setup); step != 0) {
    // Report which step failed the way an exception in the target would be reported.
    int err = errno;
    const char* what = step == -5   ? "cannot set I/O priority"
                       : step == -2 ? "cannot change niceness"
                       : step == -3 ? "cannot set cpu affinity"
                       : step == -1 ? "cannot set process name"
                                    : "cannot set parent-death signal";
    char msg[256];
    std::snprintf(msg, sizeof msg, "%s: %s", what, std::strerror(err));
    std::size_t tl = std::strlen("std::system_error"), ml = std::strlen(msg);
    std::memcpy(page->text, "std::system_error", tl);
    std::memcpy(page->text + tl, msg, ml);
    page->type_len = static_cast<std::uint32_t>(tl);
    page->message_len = static_cast<std::uint32_t>(ml);
    page->has_error.store(1, std::memory_order_release);
    ::_exit(1);
  }
  // After the default dispositions were restored: a crash in the target reports its stack.
  sys::install_crash_handler(&page->crash);
  run_target_and_exit(page, [&] { s.target->run(); });
}

}  // namespace

void ProcessState::collect_error() const {
  if (error_read || error_slot.page == nullptr) return;
  error_read = true;
  const ErrorPage* page = error_slot.page;
  if (page->has_error.load(std::memory_order_acquire) != 0) {
    // Lengths come from another process: clamp them before use.
    std::size_t tl = std::min<std::size_t>(page->type_len, sizeof(page->text));
    std::size_t ml = std::min<std::size_t>(page->message_len, sizeof(page->text) - tl);
    error.emplace(std::string(page->text, tl), std::string(page->text + tl, ml), child.pid());
  }
  report_crash(page->crash);
  release_error_slot(error_slot);
}

// A child killed by a crash signal had its frames recorded by its handler (sys/crash_stack.hpp).
// They are named here, in the parent, which has the same code at the same addresses, and printed
// on stderr: the child's stderr too, unless it redirected its own.
void ProcessState::report_crash(const sys::CrashFrames& crash) const {
  if (fresh) return;  // its frames are addresses of another execution
  const std::optional<int> code = child.exitcode();
  if (!code || *code >= 0) return;
  std::vector<std::string> frames;
  try {
    frames = sys::symbolize(crash);
  } catch (...) {
    return;  // out of memory: the exit code still says which signal
  }
  if (frames.empty()) return;
  std::string text = "mpp: process '" + options.name + "' (pid " + std::to_string(child.pid()) +
                     ") killed by signal " + std::to_string(-*code) + " (" + signal_name(-*code) +
                     "); its stack, innermost first:\n";
  for (std::size_t i = 0; i < frames.size(); ++i) {
    text += "  #" + std::to_string(i) + " " + frames[i] + "\n";
  }
  flush_standard_streams();
  sys::write_stderr(text.data(), text.size());
}
}  // namespace detail

Process::Process(ProcessOptions options, std::unique_ptr<detail::TargetBase> target)
    : state_(std::make_unique<detail::ProcessState>()) {
  state_->options = std::move(options);
  state_->target = std::move(target);
  if (state_->options.name.empty()) {
    state_->options.name = "Process-" + std::to_string(++detail::g_process_counter);
  }
}

Process::Process(Process&&) noexcept = default;

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));  // joins or kills our previous child as it goes out of scope
    state_ = std::move(other.state_);
  }
  return *this;
}

Process::~Process() {
  if (!state_ || !state_->started) return;
  auto& s = *state_;
  try {
    if (!s.child.poll()) {
      if (s.options.daemon) s.child.signal(SIGKILL);
      s.child.wait();
    }
    s.collect_error();
  } catch (...) {
    // poll/wait only throw on impossible errno values; the child is reaped by waitpid regardless.
  }
  detail::registry_remove(state_.get());
}

namespace {
[[noreturn]] void moved_from(const char* fn) {
  throw std::logic_error(std::string("mpp::Process::") + fn + ": use of a moved-from Process");
}
}  // namespace

void Process::start() {
  if (!state_) moved_from("start");
  auto& s = *state_;
  if (s.started) throw std::logic_error("mpp::Process::start: process already started");
  if (s.options.nice && (*s.options.nice > 39 || *s.options.nice < -39)) {
    throw std::invalid_argument("mpp::Process: nice increment " + std::to_string(*s.options.nice) +
                                " outside [-39, 39]");
  }
  if (s.options.ionice && (*s.options.ionice < 0 || *s.options.ionice > 7)) {
    throw std::invalid_argument("mpp::Process: ionice level " + std::to_string(*s.options.ionice) +
                                " outside [0, 7]");
  }
  for (int c : s.options.cpus) {
    if (c < 0) throw std::invalid_argument("mpp::Process: negative cpu number in cpus");
  }
  const StartMethod method = s.options.start_method.value_or(get_start_method());
  if (method != StartMethod::fork) return start_fresh(method);
  if (s.error_slot.page == nullptr) s.error_slot = detail::acquire_error_slot();
  (void)sys::prepare_crash_stacks();  // once per process: the child's handler needs it

  // Everything the child needs is prepared before fork, so the child allocates nothing.
  char name[16] = {};
  std::strncpy(name, s.options.name.c_str(), sizeof name - 1);
  sys::ChildSetup setup;
  setup.name = name;
  setup.has_nice = s.options.nice.has_value();
  setup.nice = s.options.nice.value_or(0);
  setup.has_ionice = s.options.ionice.has_value();
  setup.ionice = s.options.ionice.value_or(0);
  setup.cpus = s.options.cpus.empty() ? nullptr : s.options.cpus.data();
  setup.ncpus = s.options.cpus.size();
  setup.die_with_parent = s.options.daemon;
  setup.parent = sys::self_pid();

  // Bookkeeping is written before fork: after it, every page the parent writes first takes a
  // copy-on-write fault while the child still shares it, and those faults dominate a short child.
  s.owner = setup.parent;
  detail::registry_add(state_.get());
  pid_t pid;
  try {
    pid = sys::fork_or_throw("cannot fork process");
  } catch (...) {
    detail::registry_remove(state_.get());
    throw;
  }
  if (pid == 0) detail::child_main(s, setup);
  s.child = detail::WorkerProcess(sys::Child(pid, sys::Child::LazyPidfd{}));
  s.started = true;
}

namespace detail {
namespace {

// What a forkserver child or a spawned process of kind kEntryProcess gets (with two memfds: the
// encoded arguments, and its error page).
constexpr std::uint32_t kProcessBootMagic = 0x4d505050;  // "MPPP"
constexpr std::size_t kMaxFreshCpus = 64;
struct ProcessBoot {
  std::uint32_t magic;
  std::uint32_t ncpus;
  std::uint64_t id;
  sys::CodeRef fn;
  std::uint64_t args_len;
  std::int32_t has_nice, nice, has_ionice, ionice;
  char name[16];
  std::int32_t cpus[kMaxFreshCpus];
};

// Leaves a fresh child that could not run its target, reporting `what` as the target's error.
[[noreturn]] void fresh_fail(ErrorPage* page, const char* type, const std::string& what) noexcept {
  ExceptionInfo info;
  try {
    info.type_name = type;
    info.message = what;
  } catch (...) {
  }
  write_error(page, info);
  ::_exit(1);
}

// The child: set up like a forked one, then the target by its ids (never an address it was sent).
void process_entry(const void* payload, std::size_t n, sys::Fd* fds, std::size_t nfds) noexcept {
  ProcessBoot b{};
  if (n != sizeof b || nfds < 2) ::_exit(70);
  std::memcpy(&b, payload, sizeof b);
  if (b.magic != kProcessBootMagic || b.ncpus > kMaxFreshCpus) ::_exit(70);
  ErrorPage* page = nullptr;
  std::span<const std::byte> args;
  try {
    auto* pm = new sys::Mapping(sys::map_fd_shared(fds[1].get(), sizeof(ErrorPage)));
    page = static_cast<ErrorPage*>(pm->data());
    if (b.args_len > 0) {
      auto* am = new sys::Mapping(sys::map_fd_shared(fds[0].get(), b.args_len));
      args = std::span<const std::byte>(am->bytes(), b.args_len);
    }
  } catch (...) {
    ::_exit(70);
  }
  fds[0].reset();
  fds[1].reset();
  sys::ChildSetup setup;
  b.name[sizeof b.name - 1] = '\0';
  setup.name = b.name;
  setup.has_nice = b.has_nice != 0;
  setup.nice = b.nice;
  setup.has_ionice = b.has_ionice != 0;
  setup.ionice = b.ionice;
  setup.cpus = b.ncpus > 0 ? b.cpus : nullptr;
  setup.ncpus = b.ncpus;
  setup.die_with_parent = true;  // the forkserver (or the program, spawned): never outlives it
  setup.parent = sys::parent_pid();
  if (sys::apply_child_setup(setup) != 0) {
    fresh_fail(page, "std::system_error",
               std::string("cannot set up process: ") + std::strerror(errno));
  }
  // No crash handler: the parent could not name this execution's addresses (report_crash).
  const TaskFn t = find_trampoline(b.id);
  if (t == nullptr) {
    fresh_fail(page, "std::runtime_error",
               "mpp::Process: this process does not know the target's id (a different build?)");
  }
  TaskCall c;
  c.in = args;
  if (b.fn.module != 0) {
    const char* why = "";
    const void* at = sys::code_at(b.fn, &why);
    if (at == nullptr) {
      fresh_fail(page, "std::runtime_error",
                 std::string("mpp::Process: this process cannot find the target: ") + why);
    }
    c.fn = reinterpret_cast<AnyFn>(const_cast<void*>(at));
  }
  std::exception_ptr error;
  c.context = reinterpret_cast<std::uintptr_t>(&error);
  run_target_and_exit(page, [&] {
    t(c);
    if (error) std::rethrow_exception(error);
  });
}

[[maybe_unused]] const bool g_process_entry =
    (register_fork_entry(kEntryProcess, &process_entry), true);

}  // namespace
}  // namespace detail

void Process::start_fresh(StartMethod method) {
  auto& s = *state_;
  const char* how = method == StartMethod::forkserver ? "forkserver" : "spawn";
  detail::FreshTarget t;
  if (!s.target->fresh(t)) {
    throw std::invalid_argument(
        std::string("mpp::Process: the target (") + sys::demangle(t.type) +
        ") has state, or an argument that cannot travel through the codec, so it cannot run in "
        "a process started by StartMethod::" +
        how +
        " (a fresh execution of the program): use a function, a function pointer or a "
        "captureless lambda with codable arguments, or StartMethod::fork");
  }
  detail::require_init(method == StartMethod::forkserver
                           ? "mpp::Process with StartMethod::forkserver"
                           : "mpp::Process with StartMethod::spawn");
  if (s.options.cpus.size() > detail::kMaxFreshCpus) {
    throw std::invalid_argument("mpp::Process: more than 64 cpus in cpus under " +
                                std::string(how));
  }
  detail::ProcessBoot b{};
  b.magic = detail::kProcessBootMagic;
  b.id = t.id;
  if (t.fn != nullptr && !sys::code_ref_of(reinterpret_cast<const void*>(t.fn), b.fn)) {
    throw std::invalid_argument("mpp::Process: the target function is in no loaded module");
  }
  b.args_len = t.args.size();
  b.has_nice = s.options.nice.has_value() ? 1 : 0;
  b.nice = s.options.nice.value_or(0);
  b.has_ionice = s.options.ionice.has_value() ? 1 : 0;
  b.ionice = s.options.ionice.value_or(0);
  std::strncpy(b.name, s.options.name.c_str(), sizeof b.name - 1);
  b.ncpus = static_cast<std::uint32_t>(s.options.cpus.size());
  for (std::size_t i = 0; i < s.options.cpus.size(); ++i) b.cpus[i] = s.options.cpus[i];
  sys::Fd args =
      sys::memfd_create_sized("mpp-process-args", std::max<std::size_t>(t.args.size(), 1));
  {
    sys::Mapping m = sys::map_fd_shared(args.get(), std::max<std::size_t>(t.args.size(), 1));
    if (!t.args.empty()) std::memcpy(m.data(), t.args.data(), t.args.size());
  }
  sys::Fd page = sys::memfd_create_sized("mpp-process-error", sizeof(detail::ErrorPage));
  s.fresh_page = sys::map_fd_shared(page.get(), sizeof(detail::ErrorPage));
  s.fresh = true;
  s.error_slot = detail::ErrorSlot{};
  s.error_slot.page = static_cast<detail::ErrorPage*>(s.fresh_page.data());
  s.error_slot.owner = sys::self_pid();
  s.owner = sys::self_pid();
  const int fds[2] = {args.get(), page.get()};
  detail::registry_add(state_.get());
  try {
    s.child = method == StartMethod::forkserver
                  ? detail::Forker::server()->start(detail::kEntryProcess, &b, sizeof b, fds, 2)
                  : detail::spawn_process(detail::kEntryProcess, &b, sizeof b, fds, 2);
  } catch (...) {
    detail::registry_remove(state_.get());
    throw;
  }
  s.started = true;
}

void Process::join() {
  if (!state_) moved_from("join");
  if (!state_->started) throw std::logic_error("mpp::Process::join: process not started");
  state_->child.wait();
  state_->collect_error();
  detail::registry_remove(state_.get());
}

bool Process::join_for(std::chrono::nanoseconds timeout) {
  if (!state_) moved_from("join");
  if (!state_->started) throw std::logic_error("mpp::Process::join: process not started");
  if (timeout.count() < 0) timeout = std::chrono::nanoseconds::zero();
  bool done = state_->child.wait_for(timeout);
  if (done) {
    state_->collect_error();
    detail::registry_remove(state_.get());
  }
  return done;
}

bool Process::is_alive() const { return state_ && state_->started && !state_->child.poll(); }

std::optional<int> Process::exitcode() const {
  if (!state_ || !state_->ended()) return std::nullopt;
  return state_->child.exitcode();
}

pid_t Process::pid() const noexcept { return state_ && state_->started ? state_->child.pid() : 0; }

namespace {
// At namespace scope: a function-local static would have a guard a fork could catch half-way.
const std::string g_no_name;
}  // namespace

const std::string& Process::name() const noexcept {
  return state_ ? state_->options.name : g_no_name;
}

bool Process::daemon() const noexcept { return state_ && state_->options.daemon; }

void Process::terminate() {
  if (!state_) moved_from("terminate");
  if (!state_->started) throw std::logic_error("mpp::Process::terminate: process not started");
  if (!state_->child.poll()) state_->child.signal(SIGTERM);
}

void Process::kill() {
  if (!state_) moved_from("kill");
  if (!state_->started) throw std::logic_error("mpp::Process::kill: process not started");
  if (!state_->child.poll()) state_->child.signal(SIGKILL);
}

std::optional<RemoteError> Process::error() const {
  if (!state_ || !state_->ended()) return std::nullopt;
  return state_->error;
}

int nice(int increment) {
  if (increment > 39 || increment < -39) {
    throw std::invalid_argument("mpp::nice: increment " + std::to_string(increment) +
                                " outside [-39, 39]");
  }
  return sys::nice_increment(increment);
}

unsigned cpu_count() { return sys::cpus_allowed(); }

std::vector<pid_t> active_children() {
  std::lock_guard lock(detail::g_registry_mutex);
  std::vector<pid_t> out;
  const pid_t self = sys::self_pid();
  for (auto* s : detail::g_registry) {
    // Entries inherited through fork belong to the parent, not to us.
    if (s->owner != self || !s->started) continue;
    if (!s->child.poll()) out.push_back(s->child.pid());
  }
  return out;
}

}  // namespace mpp
