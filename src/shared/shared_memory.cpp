// mpp::SharedMemory: anonymous mappings, and named /dev/shm segments through sys/shm_named.
#include <stdexcept>
#include <string>

#include "mpp/shared.hpp"
#include "sys/mem.hpp"
#include "sys/proc.hpp"
#include "sys/random.hpp"
#include "sys/shm_named.hpp"

namespace mpp {

struct SharedMemory::Impl {
  sys::Mapping mapping;
  std::string name;  // empty: anonymous
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  pid_t creator = 0;  // pid of the creating process; 0 when opened
  sys::Fd guardian;
  bool unlinked = false;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    // RAII unlink only by the creating process: children forked from the creator inherit this
    // object as a copy of its memory, and their exit must not take the name from the creator.
    if (creator != 0 && !unlinked && creator == sys::self_pid()) {
      try {
        if (sys::shm_unlink_same(name, dev, ino)) sys::shm_dismiss_guardian(guardian.get());
      } catch (...) {
        // A destructor cannot report; the guardian still unlinks once we are gone.
      }
    }
  }
};

namespace {

std::string checked_name(const std::string& name) {
  std::string n = (!name.empty() && name[0] == '/') ? name.substr(1) : name;
  if (n.empty() || n == "." || n == "..")
    throw std::invalid_argument("shared memory name must not be empty, \".\" or \"..\"");
  if (n.find('\0') != std::string::npos)
    throw std::invalid_argument("shared memory name contains a NUL byte");
  if (n.find('/') != std::string::npos)
    throw std::invalid_argument("shared memory name may not contain '/' after the first byte");
  if (n.size() > 255) throw std::invalid_argument("shared memory name longer than 255 bytes");
  return n;
}

}  // namespace

SharedMemory::SharedMemory(std::shared_ptr<Impl> impl) noexcept
    : impl_(std::move(impl)), data_(impl_->mapping.bytes()), size_(0) {}

SharedMemory::SharedMemory(std::size_t size) {
  if (size == 0) throw std::invalid_argument("shared memory size must be positive");
  auto impl = std::make_shared<Impl>();
  impl->mapping = sys::map_anonymous_shared(size);
  impl_ = std::move(impl);
  data_ = impl_->mapping.bytes();
  size_ = size;
}

SharedMemory SharedMemory::create(const std::string& name, std::size_t size) {
  if (size == 0) throw std::invalid_argument("shared memory size must be positive");
  std::string n = checked_name(name);
  auto seg = sys::shm_create_exclusive(n, size);
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(n);
  impl->dev = seg.dev;
  impl->ino = seg.ino;
  impl->creator = sys::self_pid();
  impl->guardian = std::move(seg.guardian);
  // If mapping fails, ~Impl unlinks the name again: a failed create leaves nothing behind.
  impl->mapping = sys::map_fd_shared(seg.fd.get(), size);
  SharedMemory shm(std::move(impl));
  shm.size_ = size;
  return shm;
}

SharedMemory SharedMemory::create(std::size_t size) {
  unsigned char r[16];
  sys::random_bytes(r, sizeof r);
  static const char kHex[] = "0123456789abcdef";
  std::string name = "mpp-";
  for (unsigned char c : r) {
    name += kHex[c >> 4];
    name += kHex[c & 15];
  }
  return create(name, size);
}

SharedMemory SharedMemory::open(const std::string& name) {
  std::string n = checked_name(name);
  auto seg = sys::shm_open_owned(n);
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(n);
  impl->dev = seg.dev;
  impl->ino = seg.ino;
  impl->mapping = sys::map_fd_shared(seg.fd.get(), seg.size);
  SharedMemory shm(std::move(impl));
  shm.size_ = seg.size;
  return shm;
}

const std::string& SharedMemory::name() const noexcept { return impl_->name; }

bool SharedMemory::is_named() const noexcept { return !impl_->name.empty(); }

void SharedMemory::unlink() {
  if (impl_->name.empty()) throw std::logic_error("anonymous shared memory has no name to unlink");
  if (impl_->unlinked || !sys::shm_unlink_same(impl_->name, impl_->dev, impl_->ino)) {
    impl_->unlinked = true;
    throw std::system_error(ENOENT, std::generic_category(),
                            "shared memory name is already unlinked");
  }
  impl_->unlinked = true;
  sys::shm_dismiss_guardian(impl_->guardian.get());
}

}  // namespace mpp
