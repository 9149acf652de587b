// mpp/detail/registry.hpp: the function registry: ids for code that do not depend on load
// addresses, so that a task can name its code to a process that is not a fork of the submitter
// (another MPI rank, a worker of StartMethod::forkserver or spawn) without sending an address to
// jump to. Implemented in src/runtime/registry.cpp.
//
// Entries are added before main by static initializers (Trampoline<...>::id in
// pool_core/callable.hpp, MPP_MPI_REGISTER), identically in every execution of one program, and
// then only read. A process that receives an id it did not register fails that task; it never
// jumps anywhere unknown.
#pragma once

#include <cstdint>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/task.hpp"

namespace mpp::detail {

// `key` must outlive the program (a string literal or a typeid name): its hash is the id.
// `callable` is the mangled type of the user's callable, for messages. Never throws: a clash (two
// keys with one hash) is remembered and reported when the id is used.
MPP_API std::uint64_t register_trampoline(const char* key, const char* callable, TaskFn t) noexcept;
// A function pointer registered by name (MPP_MPI_REGISTER): its id hashes `name` and `signature`
// (the mangled type of the pointer), so overloads and equal names in other binaries stay apart.
MPP_API std::uint64_t register_function(const char* name, const char* signature, AnyFn f) noexcept;
// The id of a function pointer registered with register_function. Throws std::invalid_argument
// when `f` was not registered (the message says how to register it for mpp::mpi::Pool).
[[nodiscard]] MPP_API std::uint64_t function_id(AnyFn f, const char* type_name);
// Throws std::logic_error if `id` is unknown here or names two different callables.
MPP_API void check_trampoline(std::uint64_t id);
// Hash of this process's whole registry (the MPI start-up handshake compares it across ranks).
[[nodiscard]] MPP_API std::uint64_t registry_hash() noexcept;
// The trampoline registered as `id`, or nullptr when this process does not know it (or it
// clashes). Never throws, never allocates.
[[nodiscard]] MPP_API TaskFn find_trampoline(std::uint64_t id) noexcept;

}  // namespace mpp::detail
