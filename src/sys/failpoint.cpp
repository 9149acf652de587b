// Fail points (see failpoint.hpp). Compiled into every build so that tests can
// link it; the macro only calls it in MPP_FAILPOINTS builds.
#include "sys/failpoint.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace mpp::detail::failpoint {
namespace {

constexpr std::size_t kNameMax = 96;
struct Armed {
  char name[kNameMax] = {};
  int nth = 0;
  Action action = Action::none;
};
Armed g_armed;
std::atomic<int> g_passes{0};
std::atomic<pid_t> g_counter_pid{0};  // the process g_passes counts for
std::atomic<bool> g_env_read{false};

void read_env_once() noexcept {
  if (g_env_read.exchange(true)) return;
  const char* spec = std::getenv("MPP_FAILPOINT");
  if (spec == nullptr) return;
  // NAME:N:ACTION
  const char* c1 = std::strchr(spec, ':');
  if (c1 == nullptr || static_cast<std::size_t>(c1 - spec) >= kNameMax) return;
  const char* c2 = std::strchr(c1 + 1, ':');
  if (c2 == nullptr) return;
  std::memcpy(g_armed.name, spec, static_cast<std::size_t>(c1 - spec));
  g_armed.name[c1 - spec] = '\0';
  g_armed.nth = std::atoi(c1 + 1);
  g_armed.action = std::strcmp(c2 + 1, "exit") == 0 ? Action::exit : Action::kill;
}

// Counters restart in every process: compare the pid the counter belongs to.
int count_pass() noexcept {
  const pid_t self = ::getpid();
  if (g_counter_pid.load(std::memory_order_relaxed) != self) {
    g_counter_pid.store(self, std::memory_order_relaxed);
    g_passes.store(0, std::memory_order_relaxed);
  }
  return g_passes.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace

void arm(const char* name, int nth, Action action) noexcept {
  g_env_read.store(true);
  std::strncpy(g_armed.name, name, kNameMax - 1);
  g_armed.nth = nth;
  g_armed.action = action;
  g_counter_pid.store(0);
}

void disarm() noexcept {
  g_armed.action = Action::none;
  g_armed.name[0] = '\0';
}

void hit(const char* name) noexcept {
  read_env_once();
  if (g_armed.action == Action::none || std::strcmp(name, g_armed.name) != 0) return;
  if (count_pass() != g_armed.nth) return;
  if (g_armed.action == Action::exit) ::_exit(77);
  ::raise(SIGKILL);
}

int passes(const char* name) noexcept {
  if (std::strcmp(name, g_armed.name) != 0) return 0;
  return g_counter_pid.load() == ::getpid() ? g_passes.load() : 0;
}

}  // namespace mpp::detail::failpoint
