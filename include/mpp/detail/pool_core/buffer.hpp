// mpp/detail/pool_core/buffer.hpp: the byte buffer both pool transports build their messages in.
//
// A growable byte buffer that, unlike std::vector<std::byte>, does not zero what it grows into:
// every byte the pool puts in it is written right after. Not copyable; moves are cheap. Not
// thread-safe (each buffer has one owner).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

namespace mpp::detail {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&& o) noexcept
      : data_(std::move(o.data_)),
        size_(std::exchange(o.size_, 0)),
        cap_(std::exchange(o.cap_, 0)) {}
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = std::exchange(o.size_, 0);
    cap_ = std::exchange(o.cap_, 0);
    return *this;
  }
  [[nodiscard]] std::byte* data() noexcept { return data_.get(); }
  [[nodiscard]] const std::byte* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept { size_ = 0; }
  // Sets the size; new bytes are uninitialized. Throws std::bad_alloc.
  void resize(std::size_t n) {
    reserve(n);
    size_ = n;
  }
  void reserve(std::size_t n) {
    if (n <= cap_) return;
    const std::size_t cap = std::max(n, cap_ * 2);
    std::unique_ptr<std::byte[]> p(new std::byte[cap]);  // default-initialized: not zeroed
    if (size_ != 0) std::memcpy(p.get(), data_.get(), size_);
    data_ = std::move(p);
    cap_ = cap;
  }
  // Grows by n uninitialized bytes and returns where they start.
  std::byte* extend(std::size_t n) {
    if (size_ + n > cap_) reserve(size_ + n);
    std::byte* p = data_.get() + size_;
    size_ += n;
    return p;
  }
  // The uninitialized bytes between size() and the capacity, for a writer that learns how many
  // it used afterwards (codec::try_encode_to); commit(n) then grows the size by those n.
  [[nodiscard]] std::span<std::byte> spare() noexcept {
    return {data_.get() + size_, cap_ - size_};
  }
  void commit(std::size_t n) noexcept { size_ += n; }
  void append(const void* p, std::size_t n) {
    if (n != 0) std::memcpy(extend(n), p, n);
  }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

}  // namespace mpp::detail
