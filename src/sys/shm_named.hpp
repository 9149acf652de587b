// Named POSIX shared memory (the files of /dev/shm), private to the user and cleaned up even when
// the creator is SIGKILLed.
//
// Names are single path components (no '/', no NUL; callers validate). Segments are created 0600,
// exclusively, fully reserved with fallocate (ENOSPC at creation, never SIGBUS later), and
// published atomically: they are built under a temporary "mpp-tmp-<random>" name and link()ed to
// the final name, so an opener never sees a half-made segment and an existing name fails EEXIST.
//
// Leak freedom: every created segment gets a guardian, a tiny double-forked process (not our
// child, so never a zombie of ours) in its own session, holding only the read end of a pipe whose
// write end stays in the creator (and, by fork inheritance, in every descendant forked later).
// When that write end is gone everywhere, i.e. the creator and all its later children ended
// (SIGKILL included), the guardian wakes on EOF and unlinks the name if it still names the same
// file (device and inode checked, so a newer segment that reuses the name is left alone). An
// explicit unlink writes one byte to the pipe, which dismisses the guardian.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "sys/fd.hpp"

namespace mpp::sys {

struct NamedSegment {
  Fd fd;
  std::size_t size = 0;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  Fd guardian;  // creator only: write end of the guardian's pipe
};

// Throws std::system_error: EEXIST (name taken), ENOSPC (no room), others from the OS.
[[nodiscard]] NamedSegment shm_create_exclusive(const std::string& name, std::size_t size);

// Opens an existing segment read-write. Throws std::system_error: ENOENT (no such name), EACCES
// (not ours: owned by another uid, or the mode denies us), EINVAL (empty or not a regular file).
[[nodiscard]] NamedSegment shm_open_owned(const std::string& name);

// Unlinks the name if it still refers to (dev, ino). Returns false if the name is gone or now
// names another file. Throws std::system_error on other errors.
bool shm_unlink_same(const std::string& name, std::uint64_t dev, std::uint64_t ino);

// Tells the guardian that the name was unlinked on purpose; it exits. Never throws.
void shm_dismiss_guardian(int guardian_fd) noexcept;

// True if /dev/shm/<name> exists (tests and diagnostics).
[[nodiscard]] bool shm_exists(const std::string& name) noexcept;

}  // namespace mpp::sys
