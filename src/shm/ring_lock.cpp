#include "shm/ring_lock.hpp"

#include "sys/failpoint.hpp"

namespace mpp::shm {

void RingLock::after_takeover() noexcept {
  MPP_FAILPOINT("queue.lock.after_takeover");  // a second death, while recovering
}

}  // namespace mpp::shm
