// Random bytes from the kernel (getrandom), for unguessable names.
#pragma once

#include <cstddef>

namespace mpp::sys {

// Fills buf with n cryptographically random bytes (getrandom). Throws std::system_error.
void random_bytes(void* buf, std::size_t n);

}  // namespace mpp::sys
