#include "mpp/detail/fork_hooks.hpp"

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <stdexcept>

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
std::mutex g_register_mutex;

void atfork_child() { run_fork_child_hooks(); }

void install_once() {
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(nullptr, nullptr, &atfork_child); });
}

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
