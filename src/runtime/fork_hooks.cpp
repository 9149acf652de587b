// Fork hooks (see fork_hooks.hpp): a fixed table walked in the child by one pthread_atfork handler.
#include "runtime/fork_hooks.hpp"

#include <atomic>
#include <mutex>
#include <stdexcept>

#include "sys/proc.hpp"

namespace mpp::detail {
namespace {

struct Slot {
  std::atomic<ForkChildHook> hook{nullptr};
  std::atomic<ForkChildHook> on_exit{nullptr};
  std::atomic<void*> context{nullptr};
};
// A fixed table of atomics (not a std::vector under a mutex): the child of a multi-threaded parent
// must be able to walk it even if another thread was registering at the moment of fork.
Slot g_slots[kMaxForkHooks];
// Held across every fork() (prepare/parent/child below), so that a child never inherits it held
// by a thread it does not have: a child that registers a hook (creates a Queue, say) would wait
// forever.
std::mutex g_register_mutex;

void atfork_prepare() { g_register_mutex.lock(); }
void atfork_parent() { g_register_mutex.unlock(); }
void atfork_child() {
  g_register_mutex.unlock();
  run_fork_child_hooks();
}

// Not std::call_once: a fork could catch its flag half-way (see sys::register_atfork_once).
std::atomic<int> g_atfork{0};
void install_once() noexcept {
  (void)sys::register_atfork_once(g_atfork, &atfork_prepare, &atfork_parent, &atfork_child);
}
// During static initialisation, before main and before any thread.
[[maybe_unused]] const bool g_installed_at_start = (install_once(), true);

}  // namespace

std::size_t register_fork_child_hook(ForkChildHook hook, void* context, ForkChildHook on_exit) {
  install_once();
  std::lock_guard lock(g_register_mutex);
  for (std::size_t i = 0; i < kMaxForkHooks; ++i) {
    if (g_slots[i].hook.load(std::memory_order_relaxed) == nullptr) {
      g_slots[i].context.store(context, std::memory_order_relaxed);
      g_slots[i].on_exit.store(on_exit, std::memory_order_relaxed);
      g_slots[i].hook.store(hook, std::memory_order_release);
      return i;
    }
  }
  throw std::length_error("mpp: too many live shared objects with fork hooks");
}

void unregister_fork_child_hook(std::size_t handle) noexcept {
  if (handle >= kMaxForkHooks) return;
  std::lock_guard lock(g_register_mutex);
  g_slots[handle].hook.store(nullptr, std::memory_order_release);
}

void run_fork_child_hooks() noexcept {
  for (auto& s : g_slots) {
    if (auto h = s.hook.load(std::memory_order_acquire))
      h(s.context.load(std::memory_order_relaxed));
  }
}

void run_child_exit_hooks() noexcept {
  for (auto& s : g_slots) {
    // `hook` is the slot's published flag (registration stores it last, with release).
    if (s.hook.load(std::memory_order_acquire) == nullptr) continue;
    if (auto h = s.on_exit.load(std::memory_order_relaxed))
      h(s.context.load(std::memory_order_relaxed));
  }
}

}  // namespace mpp::detail
