// Pool transport pieces that live in shared memory: a single-producer single-consumer byte ring
// and a wake-up event (sequence word + waiter count) for spin-then-sleep waiting.
//
// What: ByteRing is a bounded FIFO of bytes between exactly one writer and one reader (two
// processes or two threads). Messages are framed by the layer above; a message larger than the
// ring streams through it in pieces. Event lets one side sleep until the other reports progress.
//
// Lifetime: both are placement-constructed by the pool in a fresh shared mapping (zero-filled
// memory is already a valid empty ring / event) before any worker is forked, and reset by the
// parent when a dead worker's slot is reused (nobody else touches it then).
//
// Memory ordering: try_write() publishes its bytes with a release store of `head`; try_read()
// acquires `head` before copying out, and releases `tail` after, so the writer never overwrites
// bytes still being read. Event is a WaitWord (wait_word.hpp): notify() and wait() both
// read-modify-write its sleepers count (seq_cst), so a waiter that found "nothing to do" can
// never miss the notify of the progress that follows.
//
// Fork: memory only; the child of a fork sees the same ring (that is the point). Never blocks
// except Event::wait; never throws; never allocates.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shm/wait_word.hpp"
#include "sys/futex.hpp"

namespace mpp::shm {

class ByteRing {
 public:
  // `data` must stay valid for the ring's life; capacity must be a power of two. The ring keeps
  // where its bytes are relative to itself, so that every process mapping the ring and its bytes
  // together works, whatever address it mapped them at (a forkserver or spawned worker maps the
  // pool's memfd wherever its kernel puts it).
  void attach(std::byte* data, std::size_t capacity) noexcept {
    offset_ = data - self();
    mask_ = capacity - 1;
  }
  void reset() noexcept {
    head_.store(0, std::memory_order_relaxed);
    tail_.store(0, std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

  // Producer side. Copies up to n bytes, returns how many fit (0 if the ring is full).
  std::size_t try_write(const void* src, std::size_t n) noexcept {
    const std::uint64_t head = head_.load(std::memory_order_relaxed);
    const std::uint64_t tail = tail_.load(std::memory_order_acquire);
    const std::size_t free_bytes = capacity() - static_cast<std::size_t>(head - tail);
    const std::size_t k = n < free_bytes ? n : free_bytes;
    if (k == 0) return 0;
    copy_in(static_cast<std::size_t>(head) & mask_, static_cast<const std::byte*>(src), k);
    head_.store(head + k, std::memory_order_release);
    return k;
  }
  [[nodiscard]] std::size_t writable() const noexcept {
    return capacity() - static_cast<std::size_t>(head_.load(std::memory_order_relaxed) -
                                                 tail_.load(std::memory_order_acquire));
  }

  // Consumer side. Copies up to n bytes out, returns how many were there.
  std::size_t try_read(void* dst, std::size_t n) noexcept {
    const std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    const std::uint64_t head = head_.load(std::memory_order_acquire);
    const std::size_t avail = static_cast<std::size_t>(head - tail);
    const std::size_t k = n < avail ? n : avail;
    if (k == 0) return 0;
    copy_out(static_cast<std::size_t>(tail) & mask_, static_cast<std::byte*>(dst), k);
    tail_.store(tail + k, std::memory_order_release);
    return k;
  }
  [[nodiscard]] std::size_t readable() const noexcept {
    return static_cast<std::size_t>(head_.load(std::memory_order_acquire) -
                                    tail_.load(std::memory_order_relaxed));
  }

 private:
  std::byte* self() const noexcept {
    return const_cast<std::byte*>(reinterpret_cast<const std::byte*>(this));
  }
  void copy_in(std::size_t at, const std::byte* src, std::size_t n) noexcept {
    std::byte* data = self() + offset_;
    const std::size_t first = n < capacity() - at ? n : capacity() - at;
    std::memcpy(data + at, src, first);
    if (n > first) std::memcpy(data, src + first, n - first);
  }
  void copy_out(std::size_t at, std::byte* dst, std::size_t n) const noexcept {
    const std::byte* data = self() + offset_;
    const std::size_t first = n < capacity() - at ? n : capacity() - at;
    std::memcpy(dst, data + at, first);
    if (n > first) std::memcpy(dst + first, data, n - first);
  }

  // Writer and reader each own one cache line, so the two sides do not false-share.
  alignas(64) std::atomic<std::uint64_t> head_{0};  // bytes ever written
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // bytes ever read
  alignas(64) std::ptrdiff_t offset_ = 0;           // of the bytes, from `this`
  std::size_t mask_ = 0;
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "ring counters are shared between processes, so they must be lock-free");

// A wake-up channel (a shm::WaitWord used as a sequence): the notifying side bumps it and makes
// the futex call only when someone is asleep (so steady-state traffic costs no system call).
class Event {
 public:
  void reset() noexcept { w_.reset(); }

  // Call after making progress visible (e.g. after ByteRing::try_write). Never blocks.
  void notify() noexcept { w_.notify(); }

  // Spins for about `spin`, then sleeps until ready() holds, a notify() arrives, or `timeout`
  // passes. Returns ready()'s last value. Spurious returns are fine: callers loop.
  template <class Ready>
  bool wait(Ready&& ready, std::chrono::nanoseconds spin, std::chrono::nanoseconds timeout) {
    if (ready()) return true;
    if (spin.count() > 0) {
      const auto until = std::chrono::steady_clock::now() + spin;
      for (unsigned i = 1;; ++i) {
        sys::cpu_relax();
        if (ready()) return true;
        if ((i & 63) == 0 && std::chrono::steady_clock::now() >= until) break;
      }
    }
    (void)w_.sleep_unless(ready, timeout);
    return ready();
  }

 private:
  alignas(64) WaitWord w_;
};

}  // namespace mpp::shm
