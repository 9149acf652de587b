// Shared memory mappings. Anonymous MAP_SHARED memory is inherited by children forked afterwards
// and vanishes with its last mapping: nothing is ever left in /dev/shm.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

#include "sys/fd.hpp"

namespace mpp::sys {

class Mapping {
 public:
  Mapping() noexcept = default;
  Mapping(void* addr, std::size_t size) noexcept : addr_(addr), size_(size) {}
  Mapping(Mapping&& o) noexcept
      : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { reset(); }

  [[nodiscard]] void* data() const noexcept { return addr_; }
  [[nodiscard]] std::byte* bytes() const noexcept { return static_cast<std::byte*>(addr_); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return addr_ != nullptr; }
  void reset() noexcept;

 private:
  void* addr_ = nullptr;
  std::size_t size_ = 0;
};

// Anonymous shared memory, zero-filled, size rounded up to whole pages. `prefault` touches every
// page now (MAP_POPULATE) so the hot path never takes a first-touch fault. Throws system_error
// ("cannot map shared memory").
[[nodiscard]] Mapping map_anonymous_shared(std::size_t size, bool prefault = false);
// Anonymous shared memory reserved as address space only (MAP_NORESERVE): pages are allocated
// when first touched, and no swap is accounted up front, so large mostly untouched regions (a
// queue's producer lanes) cost nothing. Touching a page when memory has run out kills with
// SIGBUS, as for any shmem; callers keep what they touch small. Throws like the above.
[[nodiscard]] Mapping map_anonymous_shared_sparse(std::size_t size);
// The process's address-space limit (RLIMIT_AS soft limit) in bytes, or 0 when unlimited. Never
// throws.
[[nodiscard]] std::size_t address_space_limit() noexcept;

// Maps `size` bytes of `fd` shared, read-write.
[[nodiscard]] Mapping map_fd_shared(int fd, std::size_t size, bool prefault = false);

// A memfd (anonymous file, O_CLOEXEC) of the given size; space is reserved with fallocate so that
// running out of memory shows as ENOSPC here instead of SIGBUS later.
[[nodiscard]] Fd memfd_create_sized(const char* name, std::size_t size);

// Sizes the file `fd` to `size` bytes (ftruncate) and reserves every page (posix_fallocate), so
// that a full tmpfs shows as ENOSPC now rather than SIGBUS on a later touch. Where the filesystem
// has no fallocate (EOPNOTSUPP) the file stays unreserved if `allow_unsupported`, else that is an
// error. Throws std::system_error ("cannot size shared memory", "cannot reserve shared memory").
void size_and_reserve(int fd, std::size_t size, bool allow_unsupported);

[[nodiscard]] std::size_t page_size() noexcept;

// This process's memory as /proc/self/statm counts it, in bytes: `resident` (RSS) and `data`
// (private writable mappings plus the stack: what RLIMIT_DATA limits). False if unreadable.
// Async-signal-safe (open, read, close).
struct MemoryUse {
  std::size_t resident = 0;
  std::size_t data = 0;
};
bool memory_use(MemoryUse& out) noexcept;
// Lets this process map at most `bytes` more private writable memory than it has now
// (setrlimit(RLIMIT_DATA) at its current data size + bytes): malloc and operator new then fail
// (std::bad_alloc) instead of the machine running out. Shared mappings are not counted. Returns 0,
// or -1 with errno. Async-signal-safe.
int limit_private_memory(std::size_t bytes) noexcept;

}  // namespace mpp::sys
