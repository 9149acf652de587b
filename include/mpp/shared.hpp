// mpp/shared.hpp: memory shared between processes, like Python's multiprocessing.Value, Array and
// multiprocessing.shared_memory.SharedMemory. Includes <mpp/sync.hpp> (their locks).
//
// What: Value<T> is one T, Array<T> a fixed-length run of T, each paired with its own robust Lock;
// SharedMemory is raw bytes, anonymous or named.
//
// Lifetime: every object is a HANDLE; copies refer to the same memory, which stays mapped in a
// process while a handle to it exists there. Value, Array and anonymous SharedMemory live in
// anonymous MAP_SHARED memory: they are shared with every child forked after they were created
// (capture them, pass them, or use a global) and vanish with the last process that maps them.
// Nothing is ever left in /dev/shm by them.
//
// Named SharedMemory lives in /dev/shm: create() makes it (mode 0600, exclusive), open() attaches
// to it by name from any process of the same user. The creator unlinks the name when its last
// handle in the creating process goes away (RAII), or earlier with unlink(). If the creator is
// killed (SIGKILL included), a guardian process unlinks the name as soon as the creator and every
// child it forked after create() have ended; mappings already made stay valid. So no /dev/shm entry
// of ours outlives its last user. A name mpp generates is "mpp-" + 128 random bits in hex.
//
// Fork: children see the memory itself, not a copy; writes are visible both ways at once.
// Memory ordering: plain memory. Use get_lock() (or another mpp lock, or std::atomic_ref on
// suitably aligned lock-free types) to order accesses between processes.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "mpp/detail/export.hpp"
#include "mpp/detail/sync_block.hpp"
#include "mpp/sync.hpp"

namespace mpp {

namespace detail {
// Byte offset of the payload after the lock state, aligned for T (and at least `min_align`).
[[nodiscard]] inline std::size_t payload_offset(std::size_t align, std::size_t min_align) {
  const std::size_t a = std::max(align, min_align);
  return (lock_state_size() + a - 1) / a * a;
}
}  // namespace detail

// One T in shared memory with its own robust Lock (Python's multiprocessing.Value).
//
// get(), set() and the read-modify-write operations each hold get_lock() for their duration, so
// each is atomic with respect to every other operation and to compound updates done under
// get_lock(). Inside such a compound update (the calling thread already holds get_lock()) they
// use the caller's hold instead of locking again, so
//     std::lock_guard g(v.get_lock()); v.set(v.get() + 1);
// is a correct, non-deadlocking increment. All of them may block on the lock (if its holder died,
// they take it over as Lock::acquire() would; check get_lock().owner_died() inside your own
// critical sections when a dead holder may have left a compound update half-done). None throws.
template <class T>
class Value {
  static_assert(std::is_trivially_copyable_v<T>,
                "mpp::Value<T> needs a trivially copyable T: it lives in raw shared memory");
  static_assert(alignof(T) <= 4096, "mpp::Value<T>: T may not be over-aligned beyond a page");

 public:
  // Throws std::system_error if the shared mapping cannot be created.
  explicit Value(T initial = T{}) {
    const std::size_t off = detail::payload_offset(alignof(T), 1);
    auto block = detail::allocate_shared_block(off + sizeof(T));
    lock_ = detail::make_lock_at(block);
    p_ = reinterpret_cast<T*>(block.base + off);
    std::memcpy(static_cast<void*>(p_), &initial, sizeof(T));
  }

  // The value, read under the lock. Blocks while another process holds the lock.
  [[nodiscard]] T get() const {
    detail::ValueGuard g(lock_);
    T v;
    std::memcpy(static_cast<void*>(&v), p_, sizeof(T));
    return v;
  }
  // Replaces the value under the lock. Blocks while another process holds the lock.
  void set(T v) {
    detail::ValueGuard g(lock_);
    std::memcpy(static_cast<void*>(p_), &v, sizeof(T));
  }
  // Replaces the value; returns the previous one.
  T exchange(T v) {
    return update([&](T&) { return v; });
  }

  // Integral T only: atomic read-modify-write under the lock; each returns the previous value.
  T fetch_add(T d) requires std::integral<T> {
    return update([&](T& x) { return static_cast<T>(x + d); });
  }
  T fetch_sub(T d) requires std::integral<T> {
    return update([&](T& x) { return static_cast<T>(x - d); });
  }
  T fetch_and(T d) requires std::integral<T> {
    return update([&](T& x) { return static_cast<T>(x & d); });
  }
  T fetch_or(T d) requires std::integral<T> {
    return update([&](T& x) { return static_cast<T>(x | d); });
  }
  T fetch_xor(T d) requires std::integral<T> {
    return update([&](T& x) { return static_cast<T>(x ^ d); });
  }

  // The lock guarding compound updates. Never blocks, never throws.
  // The lock paired with the array (Python's get_lock()).
  [[nodiscard]] Lock& get_lock() const noexcept { return lock_; }

 private:
  template <class F>
  T update(F f) {
    detail::ValueGuard g(lock_);
    T old = *p_;
    T next = f(old);
    *p_ = next;
    return old;
  }

  mutable Lock lock_;
  T* p_ = nullptr;
};

// A fixed-length, zero-initialized array of T in shared memory with its own robust Lock (Python's
// multiprocessing.Array). Element access is plain memory (no locking): hold get_lock() around
// accesses that other processes may race with. The elements start on their own cache line.
template <class T>
class Array {
  static_assert(std::is_trivially_copyable_v<T>,
                "mpp::Array<T> needs a trivially copyable T: it lives in raw shared memory");
  static_assert(alignof(T) <= 4096, "mpp::Array<T>: T may not be over-aligned beyond a page");

 public:
  // Zero-filled (all-zero bytes, the state of fresh anonymous memory). Throws
  // std::invalid_argument if length * sizeof(T) overflows, std::system_error (ENOMEM) if it
  // cannot be mapped. length 0 is allowed (an empty array, like Python's).
  explicit Array(std::size_t length) : n_(length) {
    const std::size_t off = detail::payload_offset(alignof(T), 64);
    if (length > (static_cast<std::size_t>(-1) - off) / (sizeof(T) == 0 ? 1 : sizeof(T)))
      throw std::invalid_argument("mpp::Array length too large");
    auto block = detail::allocate_shared_block(off + length * sizeof(T));
    lock_ = detail::make_lock_at(block);
    p_ = reinterpret_cast<T*>(block.base + off);
  }
  // No bounds check (like std::vector::operator[]).
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return p_[i]; }
  // Throws std::out_of_range when i >= size().
  [[nodiscard]] T& at(std::size_t i) const {
    if (i >= n_) throw std::out_of_range("mpp::Array index out of range");
    return p_[i];
  }
  // Number of elements. data(), begin(), end(): the elements, unlocked (hold get_lock() when other
  // processes write).
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] T* data() const noexcept { return p_; }
  [[nodiscard]] T* begin() const noexcept { return p_; }
  [[nodiscard]] T* end() const noexcept { return p_ + n_; }
  [[nodiscard]] Lock& get_lock() const noexcept { return lock_; }

 private:
  mutable Lock lock_;
  T* p_ = nullptr;
  std::size_t n_ = 0;
};

// Raw shared bytes (Python's multiprocessing.shared_memory.SharedMemory). See the file comment for
// lifetime, naming and clean-up. Copies of a handle share one mapping.
class MPP_API SharedMemory {
 public:
  // Anonymous, zero-filled, shared with children forked later. Throws std::invalid_argument for
  // size 0, std::system_error when it cannot be mapped.
  explicit SharedMemory(std::size_t size);

  // Named, mode 0600, exclusive, zero-filled, fully reserved. `name` is one path component,
  // optionally with a leading '/' ("/foo" and "foo" are the same segment), at most 255 bytes.
  // Throws std::invalid_argument (size 0; empty name, "." or "..", a '/' inside, a NUL byte, too
  // long), std::system_error with EEXIST (name taken), ENOSPC (no room in /dev/shm), or another
  // errno. Blocks briefly (starts the guardian process: one fork).
  [[nodiscard]] static SharedMemory create(const std::string& name, std::size_t size);
  // Same with a generated name "mpp-<32 hex digits>" (read it with name()).
  [[nodiscard]] static SharedMemory create(std::size_t size);
  // Attaches to an existing named segment; its size is the segment's. Throws
  // std::invalid_argument (bad name, as above), std::system_error with ENOENT (no such name),
  // EACCES (owned by another user, or the mode denies us), EINVAL (empty or not a segment).
  [[nodiscard]] static SharedMemory open(const std::string& name);

  // The mapping and its size in bytes.
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  // The name without a leading '/' ("" for anonymous memory).
  [[nodiscard]] const std::string& name() const noexcept;
  // False for anonymous memory (shared with children by fork only).
  [[nodiscard]] bool is_named() const noexcept;

  // Removes the name from /dev/shm (mappings stay valid; later open() calls fail with ENOENT).
  // Any process may unlink. Throws std::system_error(ENOENT) if the name is already gone (a second
  // unlink, like Python's FileNotFoundError) or now names a different segment (which is left
  // alone); std::logic_error for anonymous memory. Never blocks.
  void unlink();

  struct Impl;

 private:
  explicit SharedMemory(std::shared_ptr<Impl> impl) noexcept;
  std::shared_ptr<Impl> impl_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace mpp
