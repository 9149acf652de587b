// mpp/detail/pool_core/callable.hpp: which callables can run in a process that is not a fork of
// the submitter (another MPI rank; a worker of StartMethod::forkserver or spawn), and the
// trampolines that rebuild them there. One implementation for mpp::Pool and mpp::mpi::Pool.
//
// Such a process has the same program but not the submitter's memory, and (a fresh execution)
// not its load addresses either. So a task names its code by ids (mpp/detail/registry.hpp): the
// trampoline's id, the hash of the mangled name of Trampoline<F, In, R, Star>, registered before
// main by the static member below in every execution of the program; plus, for a function
// pointer, an id of the function that the transport picks (MPI: a name registered with
// MPP_MPI_REGISTER; the local pool: the function's place in its module, see
// src/sys/module.hpp). The trampoline rebuilds the callable from nothing but its type (an empty
// callable) or from the function pointer the transport resolved (TaskCall::fn), then runs the
// chunk's items (run_items, pool_core/task.hpp).
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <tuple>
#include <type_traits>
#include <typeinfo>

#include "mpp/detail/pool_core/task.hpp"
#include "mpp/detail/registry.hpp"

namespace mpp::detail {

template <class Fd>
inline constexpr bool kFunctionPointer =
    std::is_pointer_v<Fd>&& std::is_function_v<std::remove_pointer_t<Fd>>;

// An empty callable is named by its type alone, so a worker can make its own copy.
template <class Fd>
inline constexpr bool kEmptyCallable = std::is_empty_v<Fd> &&
                                       (std::is_default_constructible_v<Fd> ||
                                        std::is_trivially_copyable_v<Fd>);

// Callables whose whole state can be rebuilt from ids in another process.
template <class Fd>
inline constexpr bool kCrossesMachines = kFunctionPointer<Fd> || kEmptyCallable<Fd>;

template <class Fd>
Fd make_callable(AnyFn fn) noexcept {
  if constexpr (kFunctionPointer<Fd>) {
    return reinterpret_cast<Fd>(fn);
  } else if constexpr (std::is_default_constructible_v<Fd>) {
    return Fd{};
  } else {
    // An empty, trivially copyable type has no value to speak of: any byte pattern is it.
    return std::bit_cast<Fd>(std::array<unsigned char, sizeof(Fd)>{});
  }
}

// The code a worker runs for one chunk. Its id is the hash of its mangled name, registered in
// every execution of the program before main by the static member below.
template <class Fd, class In, class R, bool Star>
struct Trampoline {
  static void run(TaskCall& c) noexcept {
    Fd f = make_callable<Fd>(c.fn);
    run_items<Fd, In, R, Star>(f, c);
  }
  static inline const std::uint64_t id =
      register_trampoline(typeid(Trampoline).name(), typeid(Fd).name(), &run);
};

// A pool initializer (a callable taking nothing) run by id, the same way: `c.fn` is the resolved
// function pointer for a function; an exception it throws is stored at `c.context`, which points
// to a std::exception_ptr.
template <class Fd>
struct InitTrampoline {
  static void run(TaskCall& c) noexcept {
    try {
      Fd f = make_callable<Fd>(c.fn);
      f();
    } catch (...) {
      *reinterpret_cast<std::exception_ptr*>(c.context) = std::current_exception();
    }
  }
  static inline const std::uint64_t id =
      register_trampoline(typeid(InitTrampoline).name(), typeid(Fd).name(), &run);
};

// void (*)(), spelled so that it depends on a template parameter.
template <class>
struct DependentFn {
  using type = void (*)();
};

// A Process target run by id (StartMethod::forkserver, spawn): `c.in` holds the encoded
// std::tuple of its arguments, `c.fn` the resolved function pointer for a function; what escapes
// the target (an exception, mpp::SystemExit) is stored at `c.context`, a std::exception_ptr*.
template <class Fd, class Tuple>
struct ProcessTrampoline {
  static void run(TaskCall& c) noexcept {
    try {
      std::span<const std::byte> in = c.in;
      Tuple args = decode_one<Tuple>(in);
      Fd f = make_callable<Fd>(c.fn);
      std::apply([&](auto&... a) { std::invoke(f, a...); }, args);
    } catch (...) {
      *reinterpret_cast<std::exception_ptr*>(c.context) = std::current_exception();
    }
  }
  static inline const std::uint64_t id =
      register_trampoline(typeid(ProcessTrampoline).name(), typeid(Fd).name(), &run);
};

}  // namespace mpp::detail
