// runtime/fork_hooks.hpp: internal hooks run in every child right after fork.
//
// Components that keep per-process state in shared memory (a Queue's table of attached processes,
// for instance) register a hook here; every fork of the program (mpp's own Process/Pool forks and
// plain fork() calls, through pthread_atfork) runs the hooks in the child before any user code.
// Hooks must only touch memory (no locks, no allocation): they run in a child that may have been
// forked from a multi-threaded parent.
#pragma once

#include <cstddef>

namespace mpp::detail {

using ForkChildHook = void (*)(void* context) noexcept;

// Registers hook(context), and optionally on_exit(context); returns a handle for unregister, or
// throws std::length_error when the fixed table (kMaxForkHooks) is full. Thread-safe.
inline constexpr std::size_t kMaxForkHooks = 1024;
[[nodiscard]] std::size_t register_fork_child_hook(ForkChildHook hook, void* context,
                                                   ForkChildHook on_exit = nullptr);
void unregister_fork_child_hook(std::size_t handle) noexcept;

// Runs every registered hook; called in the child after fork (automatically, via pthread_atfork).
void run_fork_child_hooks() noexcept;

// Runs every registered on_exit hook. mpp's children (a Process whose target returned or threw,
// a Pool worker that leaves) call it right before _exit, which skips destructors: it lets shared
// objects the child still holds say goodbye (a Queue detaches the process and gives its lane
// back) instead of leaving that to liveness probes later. Same rules as the fork hooks.
void run_child_exit_hooks() noexcept;

}  // namespace mpp::detail
