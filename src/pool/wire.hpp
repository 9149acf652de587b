// The local transport's wire format: what the parent and a worker of mpp::Pool put in the
// worker's shared slot and rings. Both sides run this same program on one machine (a fork, or a
// fresh execution of the same binary under forkserver and spawn), so headers cross as raw structs;
// a fresh execution gets its configuration as a WorkerBoot, and its code by ids (launch.hpp). The
// parent (src/pool/engine.cpp) and the worker loop (src/pool/worker.cpp) include this; nothing else
// does.
//
// A task message:   [TaskHeader][nskip x int64: indexes to skip][payload_len bytes of inputs]
// A result message: [ResultHeader][results_len bytes of results][errors_len bytes of failure
//                   records (pool_core/task.hpp's record_failure)]
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "mpp/detail/pool_engine.hpp"
#include "shm/pool_ring.hpp"
#include "sys/crash_stack.hpp"
#include "sys/module.hpp"

namespace mpp::detail::wire {

inline constexpr std::uint32_t kTaskMagic = 0x4d505054;    // "MPPT"
inline constexpr std::uint32_t kResultMagic = 0x4d505052;  // "MPPR"
inline constexpr std::uint32_t kKindTask = 1;
inline constexpr std::uint32_t kKindStop = 2;
// ResultHeader::pad of the empty reply to a chunk the worker skipped (cancelled, see `dropped`).
inline constexpr std::uint32_t kDroppedChunk = 1;
// Places remembered in WorkerShared::dropped: more than the chunks a worker holds at once.
inline constexpr std::size_t kDropSlots = 4;

// Code fields (launch.hpp): under fork, `fn` is the trampoline's address, `fstate` the bytes of a
// stateless callable and `context` the address of a stateful one. Otherwise `fn` is the
// trampoline's registry id and, for a function pointer, `context` is its CodeRef's offset and
// `fstate` its module and fingerprint (both 0 for an empty callable).
struct TaskHeader {
  std::uint32_t magic;
  std::uint32_t kind;
  std::uint64_t fn;
  std::uint64_t context;
  std::int64_t first_index;
  std::uint32_t count;
  std::uint32_t nskip;
  std::uint64_t payload_len;
  std::uint64_t seed;
  unsigned char fstate[kMaxFunctionState];
};
static_assert(std::is_trivially_copyable_v<TaskHeader>, "headers are copied through the ring");

struct ResultHeader {
  std::uint32_t magic;
  std::uint32_t nerrors;
  std::int64_t first_index;
  std::uint32_t count;
  std::uint32_t pad;
  std::uint64_t results_len;
  std::uint64_t errors_len;
};
static_assert(std::is_trivially_copyable_v<ResultHeader>, "headers are copied through the ring");

enum WorkerState : std::uint32_t { kStarting = 0, kRunning = 1, kInitFailed = 2 };

// One worker's slot in the shared mapping. The parent resets it before forking a worker into it.
struct alignas(64) WorkerShared {
  // Separate wake-ups, so that a worker idle-waiting for its next task is not woken each time
  // the parent drains its results (and vice versa).
  shm::Event task_event;   // the parent wrote task bytes
  shm::Event space_event;  // the parent freed result space
  // Set by the parent when it has task bytes that did not fit: only then does a worker's read
  // need to wake it.
  alignas(64) std::atomic<std::uint32_t> parent_wants_space{0};
  shm::ByteRing tasks;
  shm::ByteRing results;
  alignas(64) std::atomic<std::uint64_t> chunks_started{0};
  std::atomic<std::int64_t> current{-1};  // input index being run (TaskCall::current)
  std::atomic<std::uint32_t> state{kStarting};
  std::atomic<std::uint64_t> busy_ns{0};  // time this process spent running chunks (stats)
  // Chunks cancelled while in the ring: the parent stores a chunk's place (1 = the first chunk
  // this process takes) at dropped[place % kDropSlots]; the worker, having counted the chunk in
  // chunks_started, skips it if it finds its place there (both sides seq_cst: see
  // Engine::cancel_on).
  std::atomic<std::uint64_t> dropped[kDropSlots]{};
  char fail_type[128];  // why the worker could not start (kInitFailed)
  char fail_message[512];
  sys::CrashFrames crash;  // written by the worker's crash handler (WorkerLost::stack())
};

// The head of the shared mapping, before the workers' slots.
struct alignas(64) PoolShared {
  shm::Event to_parent;  // a worker wrote results or freed task space
};

// What a worker that is not a fork (forkserver, spawn) needs to serve a pool: sent with the
// memfd of the pool's mapping when it is started.
inline constexpr std::uint32_t kBootMagic = 0x4d505042;  // "MPPB"
struct WorkerBoot {
  std::uint32_t magic;
  std::uint32_t slot;
  std::uint64_t map_size;
  std::uint64_t slot_offset;  // of its WorkerShared in the mapping (the PoolShared is at 0)
  std::int32_t has_nice, nice, has_ionice, ionice;
  std::uint64_t memory_limit;  // 0 = none
  std::uint64_t maxtasksperchild;
  std::uint64_t max_memory_per_child;  // 0 = none
  std::uint64_t init_id;               // 0 = no initializer
  sys::CodeRef init_fn;                // module 0 = not a function pointer
};
static_assert(std::is_trivially_copyable_v<WorkerBoot>, "the boot block crosses as raw bytes");

}  // namespace mpp::detail::wire
