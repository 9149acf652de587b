// Threads: the kernel id of the calling thread, and a per-thread cache of it with its start time.
#pragma once

#include <cstdint>

namespace mpp::sys {

// Kernel thread id of the calling thread (a system call; callers keep it off hot paths).
[[nodiscard]] std::int32_t current_tid() noexcept;

// The same, cached per thread, with the thread's start time (process_start_time of the thread
// id, /proc/TID/stat): the lock word of mpp::Lock holds both (shm::OwnerLock::id_for), so they are
// read on every acquire. The cache is cleared in the child after fork() by a pthread_atfork
// handler, because a forked child's thread has a new id but inherits the forking thread's
// thread-local memory.
namespace tid_cache {
extern __thread std::int32_t t_tid;     // __thread: no dynamic init, so no TLS wrapper call
extern __thread std::uint32_t t_start;  // valid when t_tid != 0
std::int32_t fill() noexcept;
}  // namespace tid_cache
// The calling thread's id and start time (as sys::process_start_time; 0 when unknown).
struct ThreadIdentity {
  std::int32_t tid;
  std::uint32_t start;
};
[[nodiscard]] inline ThreadIdentity cached_thread() noexcept {
  std::int32_t t = tid_cache::t_tid;
  if (t == 0) [[unlikely]]
    t = tid_cache::fill();
  return {t, tid_cache::t_start};
}

}  // namespace mpp::sys
