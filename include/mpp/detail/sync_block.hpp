// mpp/detail/sync_block.hpp: internals shared by <mpp/sync.hpp> and <mpp/shared.hpp>.
//
// Every synchronization object and every Value/Array lives in a block of anonymous MAP_SHARED
// memory. A handle keeps the block mapped through a std::shared_ptr in its own process; a child
// forked later inherits both the mapping and (as a copy of the parent's memory) the handle, so the
// block is shared by every process that can name it, and vanishes with its last mapping.
#pragma once

#include <cstddef>
#include <memory>

#include "mpp/detail/export.hpp"

namespace mpp::shm {
class SyncLock;
class SemaphoreState;
class EventState;
class BarrierState;
class CondState;
}  // namespace mpp::shm

namespace mpp::detail {

// Zero-filled anonymous shared memory of at least `size` bytes (whole pages, pre-faulted).
// Throws std::system_error ("cannot map shared memory").
struct SharedBlock {
  std::shared_ptr<void> keep;  // unmaps when the last handle in this process goes away
  std::byte* base = nullptr;
};
[[nodiscard]] MPP_API SharedBlock allocate_shared_block(std::size_t size);

// Size/alignment the lock state needs at the start of a block (opaque here: it is a glibc mutex).
[[nodiscard]] MPP_API std::size_t lock_state_size() noexcept;

struct SyncAccess;  // grants the implementation files access to handles' private constructors

}  // namespace mpp::detail
