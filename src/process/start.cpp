// Start methods and mpp::init (mpp/start_method.hpp): the process-wide default, the argv that
// fresh executions get, and the diversion of a fresh execution that mpp started (the forkserver,
// a spawned worker) before the rest of main runs.
//
// How mpp recognises its own fresh executions: the program that starts one puts
// MPP_FORKSERVER=<fd>:<pid> or MPP_SPAWN_WORKER=<fd>:<pid> in its environment, <fd> being the
// inherited end of a socket pair and <pid> the starting program. init() believes the variable
// only if <fd> is an open AF_UNIX socket and <pid> is its parent, removes it from the environment
// (what the worker's own children see), and serves on that socket. A program that starts no
// workers never has either variable.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpp/start_method.hpp"
#include "process/forker.hpp"
#include "sys/proc.hpp"

namespace mpp {

namespace {

std::atomic<int> g_method{static_cast<int>(StartMethod::fork)};
std::atomic<bool> g_init{false};
char g_default_name[] = "mpp";
char* g_default_argv[] = {g_default_name, nullptr};
std::atomic<char* const*> g_argv{g_default_argv};
std::atomic<std::vector<char*>*> g_argv_copy{nullptr};  // owns g_argv's array: never freed

// "<fd>:<pid>" -> fd, pid; false if malformed.
bool parse_channel(const char* v, int& fd, long& pid) {
  char* end = nullptr;
  fd = static_cast<int>(std::strtol(v, &end, 10));
  if (end == v || *end != ':') return false;
  const char* p = end + 1;
  pid = std::strtol(p, &end, 10);
  return end != p && *end == '\0' && fd >= 0 && pid > 0;
}

// The channel named by environment variable `name`, or -1 when there is none. A process started
// with the variable is never the program: if the channel is unusable (its starter died already)
// it leaves at once rather than run main.
int take_channel(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return -1;
  int fd = -1;
  long pid = 0;
  if (!parse_channel(v, fd, pid) || pid != sys::parent_pid()) sys::exit_immediately(70);
  ::unsetenv(name);
  return fd;
}

}  // namespace

void init(int argc, char** argv) noexcept {
  try {
    if (argc > 0 && argv != nullptr && g_argv_copy.load(std::memory_order_acquire) == nullptr) {
      // Kept for the life of the program: fresh executions get the same arguments.
      auto* copy = new std::vector<char*>;  // NOLINT(cppcoreguidelines-owning-memory)
      for (int i = 0; i < argc && argv[i] != nullptr; ++i) copy->push_back(::strdup(argv[i]));
      copy->push_back(nullptr);
      g_argv_copy.store(copy, std::memory_order_release);  // the first init's arguments stay
      g_argv.store(copy->data(), std::memory_order_release);
    }
  } catch (...) {
    // Out of memory: fresh executions get the default argv.
  }
  g_init.store(true, std::memory_order_release);
  try {
    if (const int fd = take_channel("MPP_FORKSERVER"); fd >= 0) {
      detail::forkserver_hello(fd);
      detail::forker_loop(fd, sys::parent_pid(), nullptr, nullptr);
    }
    if (const int fd = take_channel("MPP_SPAWN_WORKER"); fd >= 0) detail::spawned_main(fd);
  } catch (...) {
    sys::exit_immediately(70);
  }
}

void set_start_method(StartMethod method) noexcept {
  g_method.store(static_cast<int>(method), std::memory_order_relaxed);
}

StartMethod get_start_method() noexcept {
  return static_cast<StartMethod>(g_method.load(std::memory_order_relaxed));
}

const char* to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::fork:
      return "fork";
    case StartMethod::forkserver:
      return "forkserver";
    case StartMethod::spawn:
      return "spawn";
  }
  return "unknown";
}

namespace detail {

void require_init(const char* who) {
  if (!g_init.load(std::memory_order_acquire)) {
    throw std::logic_error(std::string(who) +
                           " needs mpp::init(argc, argv) as the first statement of main()");
  }
  if (std::getenv("MPP_FORKSERVER") != nullptr || std::getenv("MPP_SPAWN_WORKER") != nullptr) {
    // A fresh execution that init did not divert: its main does not begin with mpp::init.
    throw std::logic_error(std::string(who) +
                           ": this process was started by mpp as a worker but main() did not "
                           "begin with mpp::init(argc, argv)");
  }
}

char* const* saved_argv() noexcept { return g_argv.load(std::memory_order_acquire); }

}  // namespace detail

}  // namespace mpp
