// mpp/detail/exception_info.hpp: describing the exception in flight, for RemoteError.
#pragma once

#include <string>

#include "mpp/detail/export.hpp"

namespace mpp::detail {

struct ExceptionInfo {
  std::string type_name;  // demangled, e.g. "std::runtime_error", or "unknown exception"
  std::string message;    // what() for std::exception, a rendering for ints/strings, else ""
};

// Call only inside a catch block. Never throws (falls back to "unknown exception").
[[nodiscard]] MPP_API ExceptionInfo describe_current_exception() noexcept;

}  // namespace mpp::detail
