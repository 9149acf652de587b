// mpp/detail/mpi_callable.hpp: which callables mpp::mpi::Pool can send to another rank, and the
// worker-side trampolines that rebuild them there (the item loop itself is the pool core's
// run_items, pool_core/task.hpp).
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <type_traits>
#include <typeinfo>

#include "mpp/detail/mpi_core.hpp"
#include "mpp/detail/pool_core/task.hpp"

namespace mpp::mpi::detail {

template <class Fd>
inline constexpr bool kFunctionPointer =
    std::is_pointer_v<Fd>&& std::is_function_v<std::remove_pointer_t<Fd>>;

// An empty callable is named by its type alone, so a worker can make its own copy.
template <class Fd>
inline constexpr bool kEmptyCallable = std::is_empty_v<Fd> &&
                                       (std::is_default_constructible_v<Fd> ||
                                        std::is_trivially_copyable_v<Fd>);

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

// The code a worker runs for one chunk. Its id is the hash of its mangled name, registered on
// every rank before main by the static member below.
template <class Fd, class In, class R, bool Star>
struct Trampoline {
  static void run(TaskCall& c) noexcept {
    Fd f = make_callable<Fd>(c.fn);
    mpp::detail::run_items<Fd, In, R, Star>(f, c);
  }
  static inline const std::uint64_t id =
      register_trampoline(typeid(Trampoline).name(), typeid(Fd).name(), &run);
};

}  // namespace mpp::mpi::detail
