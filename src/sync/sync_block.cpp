// The blocks of anonymous shared memory that every lock, event, Value, Array and Pipe lives in
// (see mpp/detail/sync_block.hpp).
#include "mpp/detail/sync_block.hpp"

#include "shm/sync_lock.hpp"
#include "sys/mem.hpp"

namespace mpp::detail {

SharedBlock allocate_shared_block(std::size_t size) {
  // Pre-faulted: a first touch of a shared page costs ~15 us here, better paid at creation than
  // inside the first acquire of a timed benchmark or a latency-sensitive handoff.
  auto* mapping = new sys::Mapping(sys::map_anonymous_shared(size, /*prefault=*/true));
  std::byte* base = mapping->bytes();
  return {std::shared_ptr<void>(mapping, [](void* m) { delete static_cast<sys::Mapping*>(m); }),
          base};
}

std::size_t lock_state_size() noexcept { return sizeof(shm::SyncLock); }

}  // namespace mpp::detail
