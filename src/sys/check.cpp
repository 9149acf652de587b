// Failed system calls as exceptions (see check.hpp).
#include "sys/check.hpp"

namespace mpp::sys {

void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}
void throw_errno(const char* what) { throw_errno(errno, what); }

}  // namespace mpp::sys
