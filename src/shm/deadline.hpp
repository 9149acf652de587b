// When a blocking operation of src/shm gives up: the one deadline type of the shared-memory
// algorithms (rings, locks, semaphores, events, conditions).
//
// A Deadline is a value: forever (never give up), poll (already passed: try once, never sleep) or
// a point on the monotonic clock. Memory only; never blocks, never throws.
#pragma once

#include <chrono>
#include <optional>

namespace mpp::shm {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  // Never give up.
  static constexpr Deadline forever() noexcept { return Deadline(Kind::never, {}); }
  // Already passed: callers try once and do not sleep.
  static constexpr Deadline poll() noexcept { return Deadline(Kind::now, {}); }
  static constexpr Deadline at(Clock::time_point when) noexcept {
    return when == Clock::time_point::max() ? forever() : Deadline(Kind::at, when);
  }
  // `timeout` from now; one too large to represent is forever, one <= 0 is poll.
  static Deadline after(std::chrono::nanoseconds timeout) noexcept {
    if (timeout.count() <= 0) return poll();
    const auto now = Clock::now();
    if (timeout >= Clock::time_point::max() - now) return forever();
    return Deadline(Kind::at, now + std::chrono::duration_cast<Clock::duration>(timeout));
  }
  constexpr Deadline() noexcept = default;  // forever

  [[nodiscard]] constexpr bool is_forever() const noexcept { return kind_ == Kind::never; }
  [[nodiscard]] constexpr bool is_poll() const noexcept { return kind_ == Kind::now; }
  // Time left: nanoseconds::max() for forever, zero or less once passed.
  [[nodiscard]] std::chrono::nanoseconds remaining() const noexcept {
    if (kind_ == Kind::never) return std::chrono::nanoseconds::max();
    if (kind_ == Kind::now) return std::chrono::nanoseconds::zero();
    return when_ - Clock::now();
  }
  [[nodiscard]] bool passed() const noexcept { return remaining().count() <= 0; }
  // How long the next sleep of a loop that re-checks every `slice` may last: the smaller of the
  // two; nullopt once passed.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> next_slice(
      std::chrono::nanoseconds slice) const noexcept {
    const auto left = remaining();
    if (left.count() <= 0) return std::nullopt;
    return left < slice ? left : slice;
  }

 private:
  enum class Kind : unsigned char { never, now, at };
  constexpr Deadline(Kind k, Clock::time_point when) noexcept : kind_(k), when_(when) {}
  Kind kind_ = Kind::never;
  Clock::time_point when_{};
};

}  // namespace mpp::shm
