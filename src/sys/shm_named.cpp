// Named shared memory under /dev/shm: exclusive 0600 creation, owner-checked open, and the
// guardian process that unlinks a segment whose creator died (see shm_named.hpp).
#include "sys/shm_named.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "sys/check.hpp"
#include "sys/mem.hpp"
#include "sys/random.hpp"
#include "sys/socket.hpp"

namespace mpp::sys {

namespace {

// glibc's shm_open uses this directory too, so names interoperate with Python's SharedMemory and
// with shm_open() users ("/foo" there is "foo" here).
std::string path_of(const std::string& name) { return "/dev/shm/" + name; }

std::string random_hex(std::size_t bytes) {
  unsigned char buf[32];
  random_bytes(buf, bytes);
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < bytes; ++i) {
    s += kHex[buf[i] >> 4];
    s += kHex[buf[i] & 15];
  }
  return s;
}

void close_all_but(int keep) noexcept {
#ifdef SYS_close_range
  if (keep > 0) ::syscall(SYS_close_range, 0u, static_cast<unsigned>(keep - 1), 0u);
  if (::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u) == 0) return;
#endif
  for (int fd = 0; fd < 4096; ++fd)
    if (fd != keep) ::close(fd);
}

// Runs in the double-forked guardian: raw system calls only (async-signal-safe), no allocation.
[[noreturn]] void guardian_main(int rfd, const char* path1, const char* path2, std::uint64_t dev,
                                std::uint64_t ino) noexcept {
  ::setsid();  // out of the creator's process group: a group-wide kill must not take it along
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);  // only SIGKILL can end it early
  // Hold nothing but our pipe: a copy of someone else's pipe or socket end would keep their
  // peers from ever seeing EOF.
  close_all_but(rfd);
  ::fcntl(rfd, F_SETFL, 0);  // our end of the socket pair was created non-blocking
  ::prctl(PR_SET_NAME, "mpp-shm-guard", 0, 0, 0);
  char c;
  ssize_t n;
  do {
    n = ::read(rfd, &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    for (const char* p : {path1, path2}) {
      struct stat st {};
      if (::stat(p, &st) == 0 && static_cast<std::uint64_t>(st.st_dev) == dev &&
          static_cast<std::uint64_t>(st.st_ino) == ino)
        ::unlink(p);
    }
  }
  ::_exit(0);
}

Fd spawn_guardian(const std::string& path1, const std::string& path2, std::uint64_t dev,
                  std::uint64_t ino) {
  // A socket pair rather than a pipe: dismissing a guardian that was killed must be an EPIPE we
  // ignore (send with MSG_NOSIGNAL), not a SIGPIPE that kills the creator.
  SocketPairFds p = make_socket_pair();
  std::fflush(nullptr);  // no stdio buffer may be written twice by the children
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("cannot start shared memory guardian");
  if (pid == 0) {
    // Intermediate child: fork the guardian and leave at once, so the guardian is re-parented
    // away from us and can never become our zombie.
    pid_t g = ::fork();
    if (g == 0) guardian_main(p.b.get(), path1.c_str(), path2.c_str(), dev, ino);
    ::_exit(g < 0 ? 1 : 0);
  }
  p.b.reset();
  int st = 0;
  pid_t r = retry_eintr([&] { return ::waitpid(pid, &st, 0); });
  // ECHILD: someone else's waitpid(-1) reaped it; its guardian was started all the same unless
  // the second fork failed, which we then cannot know. Assume success rather than fail create().
  if (r == pid && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
    errno = EAGAIN;
    throw_errno("cannot start shared memory guardian");
  }
  return std::move(p.a);
}

NamedSegment describe(Fd fd) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot inspect shared memory");
  NamedSegment s;
  s.size = static_cast<std::size_t>(st.st_size);
  s.dev = static_cast<std::uint64_t>(st.st_dev);
  s.ino = static_cast<std::uint64_t>(st.st_ino);
  s.fd = std::move(fd);
  return s;
}

}  // namespace

NamedSegment shm_create_exclusive(const std::string& name, std::size_t size) {
  const std::string final_path = path_of(name);
  // The segment is built as an unnamed O_TMPFILE in /dev/shm and linked to its name only when it
  // is complete: a creator killed at any moment before that leaves nothing behind (the kernel frees
  // an unnamed file with its last fd). Where O_TMPFILE or /proc is missing we fall back to a
  // temporary name, which the guardian (spawned before publishing) removes if the creator dies.
  std::string tmp_path;
  Fd fd(retry_eintr(
      [&] { return ::open(path_of("").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600); }));
  if (!fd) {
    tmp_path = path_of("mpp-tmp-" + random_hex(16));
    fd.reset(retry_eintr([&] {
      return ::open(tmp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }));
  }
  if (!fd) throw_errno("cannot create shared memory");
  struct TmpGuard {
    const std::string& path;
    ~TmpGuard() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } tmp_guard{tmp_path};
  // The umask may only have removed bits; make the mode exactly owner read/write.
  if (::fchmod(fd.get(), 0600) != 0) throw_errno("cannot set shared memory mode");
  // Every page reserved now: a full /dev/shm fails here with ENOSPC, not with SIGBUS on a touch.
  size_and_reserve(fd.get(), size, /*allow_unsupported=*/false);
  const int raw_fd = fd.get();
  NamedSegment seg = describe(std::move(fd));
  seg.guardian = spawn_guardian(final_path, tmp_path, seg.dev, seg.ino);
  int rc;
  if (tmp_path.empty()) {
    const std::string self = "/proc/self/fd/" + std::to_string(raw_fd);
    rc = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW);
  } else {
    rc = ::link(tmp_path.c_str(), final_path.c_str());
  }
  if (rc != 0) {
    int err = errno;
    shm_dismiss_guardian(seg.guardian.get());
    throw_errno(
        err, err == EEXIST ? "shared memory name already exists" : "cannot publish shared memory");
  }
  return seg;  // tmp_guard unlinks the temporary name, if one was used
}

NamedSegment shm_open_owned(const std::string& name) {
  const std::string path = path_of(name);
  Fd fd(retry_eintr([&] { return ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC); }));
  if (!fd) throw_errno("cannot open shared memory");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot inspect shared memory");
  // Root can open anyone's 0600 file: the uid check is what keeps a segment planted by another
  // user (with the name we expected) from being trusted.
  if (st.st_uid != ::geteuid()) throw_errno(EACCES, "shared memory belongs to another user");
  if (!S_ISREG(st.st_mode) || st.st_size <= 0)
    throw_errno(EINVAL, "not a usable shared memory segment");
  return describe(std::move(fd));
}

bool shm_unlink_same(const std::string& name, std::uint64_t dev, std::uint64_t ino) {
  const std::string path = path_of(name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    throw_errno("cannot unlink shared memory");
  }
  if (static_cast<std::uint64_t>(st.st_dev) != dev || static_cast<std::uint64_t>(st.st_ino) != ino)
    return false;
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    throw_errno("cannot unlink shared memory");
  }
  return true;
}

void shm_dismiss_guardian(int guardian_fd) noexcept {
  if (guardian_fd < 0) return;
  const char c = 'u';
  try {
    (void)send_some(guardian_fd, &c, 1);
  } catch (...) {
    // Nothing to do: a guardian we cannot reach will find the name gone or replaced.
  }
}

bool shm_exists(const std::string& name) noexcept {
  struct stat st {};
  return ::stat(path_of(name).c_str(), &st) == 0;
}

}  // namespace mpp::sys
