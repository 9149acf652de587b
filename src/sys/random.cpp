// Random bytes (see random.hpp).
#include "sys/random.hpp"

#include <sys/random.h>

#include "sys/check.hpp"

namespace mpp::sys {

void random_bytes(void* buf, std::size_t n) {
  auto* p = static_cast<unsigned char*>(buf);
  while (n > 0) {
    ssize_t r = retry_eintr([&] { return ::getrandom(p, n, 0); });
    if (r < 0) throw_errno("cannot get random bytes");
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

}  // namespace mpp::sys
