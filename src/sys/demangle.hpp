// C++ names as people read them: the ABI's demangler (libstdc++'s abi::__cxa_demangle), for
// exception types (RemoteError), callables (the MPI registry) and crash-stack frames.
#pragma once

#include <string>

#include "mpp/detail/export.hpp"

namespace mpp::sys {

// The demangled form of `mangled`, or `mangled` itself when it is not a mangled C++ name.
// Allocates (not for signal handlers); throws std::bad_alloc only.
[[nodiscard]] std::string demangle(const char* mangled);

}  // namespace mpp::sys
