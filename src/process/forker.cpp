// Forkers (see forker.hpp): the per-pool zygote and the program's forkserver, both sides of their
// channel, spawned processes, and the multi-thread fork warning.
#include "process/forker.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "sys/check.hpp"
#include "sys/fault.hpp"
#include "sys/poll.hpp"
#include "sys/socket.hpp"
#include "sys/terminal.hpp"

namespace mpp::detail {

namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kRequestMagic = 0x4d50464b;  // "MPFK"
constexpr std::uint32_t kHelloMagic = 0x4d504648;    // "MPFH"
// The forkserver is a fresh start of the program (an ASan build takes a while): how long the
// program waits for it to say hello, and for any forker to answer a request.
constexpr auto kStartTimeout = 60s;
constexpr auto kAnswerTimeout = 30s;
// Descriptor number of the channel in a forkserver or spawned process (what start.cpp reads).
constexpr int kChannelFd = 3;

struct RequestHeader {
  std::uint32_t magic;
  std::uint32_t kind;
  std::uint32_t length;
  std::uint32_t pad;
};

enum : std::uint32_t { kStarted = 1, kFailed = 2, kEnded = 3 };
struct StatusMessage {
  std::uint32_t type;
  std::int32_t pid;
  std::int32_t value;  // errno (kFailed), raw wait status (kEnded)
};

struct Hello {
  std::uint32_t magic;
  std::int32_t pid;
};

std::atomic<ForkEntry> g_entries[kEntryCount] = {};

// ---- the forkserver, as the program sees it -------------------------------------------------

// Not a function-local static (its guard could be caught half-way by a fork, issue 16).
std::mutex g_server_mutex;
std::shared_ptr<Forker>* g_server = new std::shared_ptr<Forker>;  // never destroyed

void write_text(const std::string& s) noexcept { sys::write_stderr(s.data(), s.size()); }

}  // namespace

void register_fork_entry(std::uint32_t kind, ForkEntry entry) noexcept {
  if (kind < kEntryCount) g_entries[kind].store(entry, std::memory_order_release);
}

void run_fork_entry(std::uint32_t kind, const void* payload, std::size_t n, sys::Fd* fds,
                    std::size_t nfds) noexcept {
  ForkEntry e = kind < kEntryCount ? g_entries[kind].load(std::memory_order_acquire) : nullptr;
  if (e == nullptr) sys::exit_immediately(70);
  e(payload, n, fds, nfds);
  sys::exit_immediately(70);  // entries never return
}

// ---- WorkerProcess ----------------------------------------------------------------------------

std::optional<int> WorkerProcess::exitcode() const noexcept {
  if (!remote_) return own_.exitcode();
  if (!status_) return std::nullopt;
  return sys::exitcode_from_status(*status_);
}

bool WorkerProcess::take_status(bool block) {
  if (status_) return true;
  if (!status_fd_) return false;
  StatusMessage m{};
  sys::Fd ignored[sys::kMaxPacketFds];
  std::size_t nfds = 0;
  const long r = sys::recv_packet(status_fd_.get(), &m, sizeof m, ignored, nfds, !block);
  if (r < 0) return false;  // nothing yet
  if (r == static_cast<long>(sizeof m) && m.type == kEnded) {
    status_ = m.value;
  } else {
    // The forker went away without reporting (it was killed): its children were killed with it
    // (parent-death signal). Report what happened to them.
    status_ = SIGKILL;
  }
  status_fd_.reset();
  pidfd_.reset();
  return true;
}

bool WorkerProcess::poll() { return remote_ ? take_status(false) : own_.poll(); }

void WorkerProcess::wait() {
  if (!remote_) return own_.wait();
  take_status(true);
}

bool WorkerProcess::wait_for(std::chrono::nanoseconds timeout) {
  if (!remote_) return own_.wait_for(timeout);
  if (take_status(false)) return true;
  if (!sys::poll_readable(status_fd_.get(), timeout)) return take_status(false);
  return take_status(true);
}

bool WorkerProcess::signal(int sig) noexcept {
  if (!remote_) return own_.signal(sig);
  if (status_) return false;
  return sys::signal_pidfd(pidfd_.get(), sig);
}

// ---- the forker's side ------------------------------------------------------------------------

namespace {

struct Kid {
  sys::Child child;
  sys::Fd status;
};

void send_status(int fd, std::uint32_t type, pid_t pid, int value, int pass_fd = -1) noexcept {
  const StatusMessage m{type, static_cast<std::int32_t>(pid), value};
  try {
    (void)sys::send_packet(fd, &m, sizeof m, pass_fd >= 0 ? &pass_fd : nullptr,
                           pass_fd >= 0 ? 1 : 0);
  } catch (...) {
    // The program closed its end: nobody to tell.
  }
}

[[noreturn]] void forker_exit(std::vector<Kid>& kids) noexcept {
  for (auto& k : kids) k.child.signal(SIGKILL);
  for (auto& k : kids) {
    try {
      k.child.wait();
    } catch (...) {
    }
    send_status(k.status.get(), kEnded, k.child.pid(), k.child.status().value_or(SIGKILL));
  }
  sys::exit_immediately(0);
}

}  // namespace

void forker_loop(int channel, pid_t owner, ZygoteEntry zygote, void* context) noexcept {
  sys::Fd owner_fd = sys::open_pidfd(owner);
  // Started by `owner`, which may have died before we opened its pidfd.
  if (sys::parent_pid() != owner) sys::exit_immediately(0);
  std::vector<Kid> kids;
  std::vector<int> fds;
  std::vector<char> ready_flags;
  alignas(std::max_align_t) unsigned char buf[sizeof(RequestHeader) + kMaxRequestPayload];
  for (;;) {
    fds.assign({channel, owner_fd.get()});
    for (const auto& k : kids) fds.push_back(k.child.pidfd());
    ready_flags.assign(fds.size(), 0);
    auto* ready = reinterpret_cast<bool*>(ready_flags.data());
    try {
      // A kernel without pidfds: look at the children every 50 ms instead.
      (void)sys::poll_readable_many(fds.data(), ready, fds.size(),
                                    owner_fd ? std::chrono::nanoseconds(-1) : 50ms);
    } catch (...) {
      forker_exit(kids);
    }
    if (ready[1] || (!owner_fd && sys::parent_pid() != owner)) forker_exit(kids);
    for (std::size_t i = kids.size(); i-- > 0;) {
      if (!kids[i].child.poll()) continue;
      send_status(kids[i].status.get(), kEnded, kids[i].child.pid(),
                  kids[i].child.status().value_or(0));
      kids.erase(kids.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (!ready[0]) continue;
    sys::Fd got[sys::kMaxPacketFds];
    std::size_t ngot = 0;
    long r = 0;
    try {
      r = sys::recv_packet(channel, buf, sizeof buf, got, ngot, true);
    } catch (...) {
      r = 0;
    }
    if (r == -1) continue;
    if (r == 0) forker_exit(kids);  // the program closed its end
    RequestHeader h;
    std::memcpy(&h, buf, sizeof h);
    if (static_cast<std::size_t>(r) < sizeof h || h.magic != kRequestMagic || ngot == 0 ||
        h.length > static_cast<std::size_t>(r) - sizeof h) {
      continue;  // malformed: no status socket to answer on, or garbage
    }
    sys::Fd status = std::move(got[0]);
    pid_t pid = -1;
    try {
      pid = sys::fork_or_throw("cannot fork worker");
    } catch (const std::system_error& e) {
      send_status(status.get(), kFailed, 0, e.code().value());
      continue;
    }
    if (pid == 0) {
      // The child: drop the forker's descriptors, keep the request's.
      ::mpp::sys::Fd(channel).reset();
      owner_fd.reset();
      status.reset();
      for (auto& k : kids) k.status.reset();
      const unsigned char* payload = buf + sizeof h;
      if (zygote != nullptr) zygote(context, payload, h.length, got + 1, ngot - 1);
      run_fork_entry(h.kind, payload, h.length, got + 1, ngot - 1);
    }
    Kid k{sys::Child(pid), std::move(status)};
    send_status(k.status.get(), kStarted, pid, 0, k.child.pidfd());
    kids.push_back(std::move(k));
  }
}

// ---- the program's side -----------------------------------------------------------------------

std::unique_ptr<Forker> Forker::make_zygote(ZygoteEntry entry, void* context) {
  auto pair = sys::make_packet_pair();
  const pid_t owner = sys::self_pid();
  const pid_t pid = sys::fork_or_throw("cannot fork worker");
  if (pid == 0) {
    pair.a.reset();
    // Its forks are asked for by the program, which applies the test seam of a refused fork
    // itself (src/pool/launch.cpp): this copy must not fire a second time.
    sys::fault::clear();
    sys::ChildSetup setup;
    setup.name = "mpp-zygote";
    (void)sys::apply_child_setup(setup);
    forker_loop(pair.b.get(), owner, entry, context);
  }
  pair.b.reset();
  return std::unique_ptr<Forker>(new Forker(std::move(pair.a), sys::Child(pid), owner));
}

std::shared_ptr<Forker> Forker::server() {
  std::lock_guard lock(g_server_mutex);
  auto& s = *g_server;
  const pid_t self = sys::self_pid();
  if (s && s->owner_ == self && s->alive()) return s;
  // Inherited through a fork, or dead: a fork's copy belongs to our parent (~Forker closes only
  // our copies of its descriptors).
  s.reset();
  require_init("mpp: StartMethod::forkserver");
  auto pair = sys::make_packet_pair();
  const std::string env = "MPP_FORKSERVER=" + std::to_string(kChannelFd) + ":" +
                          std::to_string(static_cast<long>(self));
  const pid_t pid = sys::spawn_self(saved_argv(), env.c_str(), pair.b.get(),
                                    pair.b.get() == kChannelFd ? kChannelFd + 1 : kChannelFd,
                                    "cannot start the mpp forkserver");
  pair.b.reset();
  std::shared_ptr<Forker> f(new Forker(std::move(pair.a), sys::Child(pid), self));
  // It says hello once mpp::init diverted it (its static initialisers ran: its registry is full).
  Hello hello{};
  sys::Fd none[sys::kMaxPacketFds];
  std::size_t nfds = 0;
  long r = -1;
  if (sys::poll_readable(f->channel_.get(), kStartTimeout)) {
    r = sys::recv_packet(f->channel_.get(), &hello, sizeof hello, none, nfds, true);
  }
  if (r != static_cast<long>(sizeof hello) || hello.magic != kHelloMagic) {
    f->proc_.signal(SIGKILL);
    f->proc_.wait();
    throw std::system_error(ECHILD, std::generic_category(),
                            "cannot start the mpp forkserver (the program's main must begin "
                            "with mpp::init(argc, argv))");
  }
  s = f;
  return f;
}

void Forker::stop_server() noexcept {
  std::shared_ptr<Forker> s;
  {
    std::lock_guard lock(g_server_mutex);
    s = std::move(*g_server);
    g_server->reset();
  }
  // The last reference closes the channel and reaps it (~Forker); pools still using it keep it.
}

pid_t Forker::server_pid() noexcept {
  std::lock_guard lock(g_server_mutex);
  const auto& s = *g_server;
  return s && s->owner_ == sys::self_pid() ? s->pid() : 0;
}

Forker::~Forker() {
  if (owner_ != sys::self_pid()) {
    // A copy inherited by a fork: the forker is our parent's. Closing our copy of the channel
    // leaves it open in the parent.
    return;
  }
  channel_.reset();
  try {
    if (!proc_.wait_for(5s)) {
      proc_.signal(SIGKILL);
      proc_.wait();
    }
  } catch (...) {
  }
}

bool Forker::alive() { return !gone_ && !proc_.poll(); }

WorkerProcess Forker::start(std::uint32_t kind, const void* payload, std::size_t n, const int* fds,
                            std::size_t nfds) {
  if (n > kMaxRequestPayload || nfds + 1 > sys::kMaxPacketFds) {
    throw std::invalid_argument("mpp: forker request too large");
  }
  auto pair = sys::make_packet_pair();
  unsigned char buf[sizeof(RequestHeader) + kMaxRequestPayload];
  const RequestHeader h{kRequestMagic, kind, static_cast<std::uint32_t>(n), 0};
  std::memcpy(buf, &h, sizeof h);
  if (n > 0) std::memcpy(buf + sizeof h, payload, n);
  int pass[sys::kMaxPacketFds];
  pass[0] = pair.b.get();
  for (std::size_t i = 0; i < nfds; ++i) pass[i + 1] = fds[i];
  {
    std::lock_guard lock(mutex_);
    if (!sys::send_packet(channel_.get(), buf, sizeof h + n, pass, nfds + 1)) {
      gone_ = true;
      throw std::system_error(ECHILD, std::generic_category(),
                              "cannot fork worker (the mpp forker is gone)");
    }
  }
  pair.b.reset();
  StatusMessage m{};
  sys::Fd got[sys::kMaxPacketFds];
  std::size_t ngot = 0;
  long r = 0;
  if (sys::poll_readable(pair.a.get(), kAnswerTimeout)) {
    r = sys::recv_packet(pair.a.get(), &m, sizeof m, got, ngot, true);
  }
  if (r == static_cast<long>(sizeof m) && m.type == kFailed) {
    throw std::system_error(m.value, std::generic_category(), "cannot fork worker");
  }
  if (r != static_cast<long>(sizeof m) || m.type != kStarted) {
    throw std::system_error(ECHILD, std::generic_category(),
                            "cannot fork worker (the mpp forker did not answer)");
  }
  return WorkerProcess(static_cast<pid_t>(m.pid), std::move(pair.a),
                       ngot > 0 ? std::move(got[0]) : sys::Fd());
}

// ---- spawn ------------------------------------------------------------------------------------

WorkerProcess spawn_process(std::uint32_t kind, const void* payload, std::size_t n, const int* fds,
                            std::size_t nfds) {
  require_init("mpp: StartMethod::spawn");
  if (n > kMaxRequestPayload || nfds > sys::kMaxPacketFds) {
    throw std::invalid_argument("mpp: spawn request too large");
  }
  auto pair = sys::make_packet_pair();
  const std::string env = "MPP_SPAWN_WORKER=" + std::to_string(kChannelFd) + ":" +
                          std::to_string(static_cast<long>(sys::self_pid()));
  const pid_t pid = sys::spawn_self(saved_argv(), env.c_str(), pair.b.get(),
                                    pair.b.get() == kChannelFd ? kChannelFd + 1 : kChannelFd,
                                    "cannot start worker");
  pair.b.reset();
  sys::Child child(pid);
  unsigned char buf[sizeof(RequestHeader) + kMaxRequestPayload];
  const RequestHeader h{kRequestMagic, kind, static_cast<std::uint32_t>(n), 0};
  std::memcpy(buf, &h, sizeof h);
  if (n > 0) std::memcpy(buf + sizeof h, payload, n);
  // The message waits in the socket until the new program reads it; if it died first, the pool
  // sees a lost worker.
  (void)sys::send_packet(pair.a.get(), buf, sizeof h + n, fds, nfds);
  return WorkerProcess(std::move(child));
}

void spawned_main(int channel) noexcept {
  alignas(std::max_align_t) unsigned char buf[sizeof(RequestHeader) + kMaxRequestPayload];
  sys::Fd got[sys::kMaxPacketFds];
  std::size_t ngot = 0;
  long r = 0;
  try {
    r = sys::recv_packet(channel, buf, sizeof buf, got, ngot);
  } catch (...) {
    r = 0;
  }
  ::mpp::sys::Fd(channel).reset();
  RequestHeader h{};
  if (r >= static_cast<long>(sizeof h)) std::memcpy(&h, buf, sizeof h);
  if (h.magic != kRequestMagic || h.length > static_cast<std::size_t>(r) - sizeof h) {
    sys::exit_immediately(70);
  }
  run_fork_entry(h.kind, buf + sizeof h, h.length, got, ngot);
}

// ---- the forkserver's hello (start.cpp calls it before forker_loop) ---------------------------

void forkserver_hello(int channel) noexcept {
  const Hello hello{kHelloMagic, static_cast<std::int32_t>(sys::self_pid())};
  try {
    (void)sys::send_packet(channel, &hello, sizeof hello);
  } catch (...) {
  }
}

// ---- the warning ------------------------------------------------------------------------------

namespace {
std::atomic<pid_t> g_warned_in{0};  // the process that printed it (a forked child prints its own)
}  // namespace

void warn_threaded_fork(unsigned threads) noexcept {
  const pid_t self = sys::self_pid();
  if (g_warned_in.exchange(self, std::memory_order_relaxed) == self) return;
  const char* quiet = std::getenv("MPP_NO_FORK_WARNING");
  if (quiet != nullptr && quiet[0] != '\0' && std::strcmp(quiet, "0") != 0) return;
  try {
    write_text("mpp: warning: forking a worker from a process that runs " +
               std::to_string(threads) +
               " threads: a lock another thread holds stays locked in the worker, which can "
               "hang it; use mpp::StartMethod::forkserver (mpp::set_start_method or "
               "PoolOptions::start_method), or set MPP_NO_FORK_WARNING=1 to silence this\n");
  } catch (...) {
  }
}

bool check_threaded_fork() noexcept {
  if (g_warned_in.load(std::memory_order_relaxed) == sys::self_pid()) return true;
  const unsigned n = sys::thread_count();
  if (n <= 1) return false;
  warn_threaded_fork(n);
  return true;
}

}  // namespace mpp::detail
