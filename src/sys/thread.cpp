// Thread ids and their per-thread cache (see thread.hpp).
#include "sys/thread.hpp"

#include <unistd.h>

#include <atomic>

#include "sys/proc.hpp"

namespace mpp::sys {

std::int32_t current_tid() noexcept { return static_cast<std::int32_t>(::gettid()); }

namespace tid_cache {
__thread std::int32_t t_tid = 0;
__thread std::uint32_t t_start = 0;

namespace {
void forget_in_child() { t_tid = 0; }
// Not a function-local static: a fork could catch its guard half-way (see register_atfork_once).
std::atomic<int> g_atfork{0};
// Registered during static initialisation, before main and any thread, so that the first lock of
// a program does not register it while another thread forks.
[[maybe_unused]] const bool g_registered_at_start =
    register_atfork_once(g_atfork, nullptr, nullptr, &forget_in_child);
}  // namespace

std::int32_t fill() noexcept {
  const std::int32_t tid = current_tid();
  // One read of /proc/TID/stat per thread (and per fork child): a few microseconds, once.
  t_start = process_start_time(tid);
  // Cached only once the handler that clears the cache in a fork child is in place (before that,
  // e.g. called from another file's static initialiser, every call asks the kernel).
  if (register_atfork_once(g_atfork, nullptr, nullptr, &forget_in_child)) t_tid = tid;
  return tid;
}
}  // namespace tid_cache

}  // namespace mpp::sys
