// Shared mappings and memfds (see mem.hpp).
#include "sys/mem.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "sys/check.hpp"
#include "sys/fault.hpp"

namespace mpp::sys {

std::size_t page_size() noexcept {
  // A constant-initialized atomic, not a function-local static: a fork could catch a static's
  // guard half-way in another thread and leave the child waiting on it (issue 16).
  static std::atomic<std::size_t> cached{0};
  std::size_t ps = cached.load(std::memory_order_relaxed);
  if (ps == 0) {
    ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    cached.store(ps, std::memory_order_relaxed);
  }
  return ps;
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    reset();
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void Mapping::reset() noexcept {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

namespace {
std::size_t round_to_pages(std::size_t size) {
  const std::size_t ps = page_size();
  if (size == 0) size = 1;
  return (size + ps - 1) / ps * ps;
}
}  // namespace

Mapping map_anonymous_shared(std::size_t size, bool prefault) {
  size = round_to_pages(size);
  if (int e = fault::take(fault::Op::mmap)) throw_errno(e, "cannot map shared memory");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | (prefault ? MAP_POPULATE : 0), -1, 0);
  if (p == MAP_FAILED) throw_errno("cannot map shared memory");
  return Mapping(p, size);
}

Mapping map_anonymous_shared_sparse(std::size_t size) {
  size = round_to_pages(size);
  if (int e = fault::take(fault::Op::mmap)) throw_errno(e, "cannot map shared memory");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw_errno("cannot map shared memory");
  return Mapping(p, size);
}

std::size_t address_space_limit() noexcept {
  rlimit r{};
  if (::getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<std::size_t>(r.rlim_cur);
}

Mapping map_fd_shared(int fd, std::size_t size, bool prefault) {
  size = round_to_pages(size);
  if (int e = fault::take(fault::Op::mmap)) throw_errno(e, "cannot map shared memory");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | (prefault ? MAP_POPULATE : 0), fd, 0);
  if (p == MAP_FAILED) throw_errno("cannot map shared memory");
  return Mapping(p, size);
}

Fd memfd_create_sized(const char* name, std::size_t size) {
  if (int e = fault::take(fault::Op::memfd)) throw_errno(e, "cannot create shared memory file");
  Fd fd(::memfd_create(name, MFD_CLOEXEC));
  if (!fd) throw_errno("cannot create shared memory file");
  // A memfd's filesystem may not implement fallocate; the file is still usable (unreserved).
  size_and_reserve(fd.get(), size, /*allow_unsupported=*/true);
  return fd;
}

void size_and_reserve(int fd, std::size_t size, bool allow_unsupported) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) throw_errno("cannot size shared memory");
  // Reserve the pages now: a tmpfs that is full fails here with ENOSPC instead of SIGBUS on touch.
  int e;
  do {
    e = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  } while (e == EINTR);
  if (e != 0 && !(allow_unsupported && e == EOPNOTSUPP))
    throw_errno(e, "cannot reserve shared memory");
}

bool memory_use(MemoryUse& out) noexcept {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[128];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "size resident shared text lib data dt", in pages.
  std::size_t field[7] = {};
  int k = 0;
  for (const char* p = buf; *p != '\0' && k < 7; ++k) {
    while (*p == ' ') ++p;
    std::size_t v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<std::size_t>(*p++ - '0');
    field[k] = v;
  }
  if (k < 6) return false;
  const std::size_t page = page_size();
  out.resident = field[1] * page;
  out.data = field[5] * page;
  return true;
}

int limit_private_memory(std::size_t bytes) noexcept {
  MemoryUse now;
  if (!memory_use(now)) return -1;
  rlimit r{};
  r.rlim_cur = now.data + bytes;
  r.rlim_max = now.data + bytes;
  return ::setrlimit(RLIMIT_DATA, &r);
}

}  // namespace mpp::sys
