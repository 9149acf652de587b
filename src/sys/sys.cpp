// Small system-call wrappers: errors, fds, pipes, futexes, mappings. The only file family that
// talks to the kernel (with proc.cpp).
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <ctime>

#include "sys/check.hpp"
#include "sys/fault.hpp"
#include "sys/fd.hpp"
#include "sys/futex.hpp"
#include "sys/mem.hpp"

namespace mpp::sys {

void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}
void throw_errno(const char* what) { throw_errno(errno, what); }

void Fd::reset(int fd) noexcept {
  // close() is never retried on EINTR: on Linux the fd is released regardless.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

PipeFds make_pipe(bool nonblocking) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0)) != 0)
    throw_errno("cannot create pipe");
  return {Fd(fds[0]), Fd(fds[1])};
}

bool read_full(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = retry_eintr([&] { return ::read(fd, p, n); });
    if (r == 0) return false;
    if (r < 0) throw_errno("cannot read");
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool write_full(int fd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t r = retry_eintr([&] { return ::write(fd, p, n); });
    if (r < 0) {
      if (errno == EPIPE) return false;
      throw_errno("cannot write");
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// ---- fault seam ------------------------------------------------------------------------------
namespace fault {
namespace {
struct Slot {
  std::atomic<int> err{0};
  std::atomic<int> times{0};
  std::atomic<int> skip{0};
};
Slot g_slots[static_cast<int>(Op::count_)];
std::atomic<bool> g_armed{false};
}  // namespace

void inject(Op op, int err, int times, int skip) noexcept {
  auto& s = g_slots[static_cast<int>(op)];
  s.err.store(err);
  s.skip.store(skip);
  s.times.store(times);
  g_armed.store(true);
}
void clear() noexcept {
  for (auto& s : g_slots) s.times.store(0);
  g_armed.store(false);
}
int take(Op op) noexcept {
  if (!g_armed.load(std::memory_order_relaxed)) return 0;
  auto& s = g_slots[static_cast<int>(op)];
  if (s.skip.load() > 0) {
    s.skip.fetch_sub(1);
    return 0;
  }
  int t = s.times.load();
  while (t > 0) {
    if (s.times.compare_exchange_weak(t, t - 1)) return s.err.load();
  }
  return 0;
}
}  // namespace fault

// ---- futex -----------------------------------------------------------------------------------
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "futex words must be plain 32-bit integers in shared memory");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be lock-free to be shared between processes");

WaitResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                      std::chrono::nanoseconds timeout) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout != std::chrono::nanoseconds::max()) {
    if (timeout.count() <= 0) return WaitResult::timed_out;
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  // Shared futex (no FUTEX_PRIVATE_FLAG): the key is the physical page, so waiters in other
  // processes that map the same memory are found.
  long r = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAIT, expected,
                     tsp, nullptr, 0);
  if (r == -1 && errno == ETIMEDOUT) return WaitResult::timed_out;
  return WaitResult::woken;  // woken, EAGAIN (value changed) or EINTR: the caller re-checks
}

namespace {
long membarrier_call(int cmd) noexcept { return ::syscall(SYS_membarrier, cmd, 0, 0); }
// -1 unknown, 0 no, 1 yes: whether this kernel offers GLOBAL_EXPEDITED (asked once).
std::atomic<int> g_membarrier_supported{-1};
bool membarrier_supported() noexcept {
  int s = g_membarrier_supported.load(std::memory_order_relaxed);
  if (s < 0) {
    const long q = membarrier_call(MEMBARRIER_CMD_QUERY);
    const bool ok = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
                    (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;
    s = ok ? 1 : 0;
    g_membarrier_supported.store(s, std::memory_order_relaxed);
  }
  return s == 1;
}
}  // namespace

bool membarrier_register() noexcept {
  return membarrier_supported() && membarrier_call(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
}

bool membarrier_global() noexcept {
  // Unsupported: no process can have registered, so there is nobody whose fence is missing.
  return !membarrier_supported() || membarrier_call(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

int futex_wake(const std::atomic<std::uint32_t>* word, int n) noexcept {
  long r = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAKE, n,
                     nullptr, nullptr, 0);
  return r < 0 ? 0 : static_cast<int>(r);
}

// ---- mappings --------------------------------------------------------------------------------
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
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    throw_errno("cannot size shared memory");
  // Reserve the pages now: a tmpfs that is full fails here with ENOSPC instead of SIGBUS on touch.
  int e;
  do {
    e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
  } while (e == EINTR);
  if (e != 0 && e != EOPNOTSUPP) throw_errno(e, "cannot reserve shared memory");
  return fd;
}

}  // namespace mpp::sys
