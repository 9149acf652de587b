// Look-ups in the function registry beyond mpp/detail/registry.hpp (src/runtime/registry.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mpp/detail/registry.hpp"

namespace mpp::detail {

struct Resolved {
  TaskFn trampoline = nullptr;  // nullptr: unknown id, see error
  AnyFn fn = nullptr;
  const char* name = nullptr;  // for crash reports; alive for the process
  std::string error;
};
// Never jumps anywhere unknown: an id this process did not register comes back as an error.
[[nodiscard]] MPP_API Resolved resolve(std::uint64_t trampoline, std::uint64_t function);
[[nodiscard]] MPP_API std::size_t registry_size() noexcept;

}  // namespace mpp::detail
