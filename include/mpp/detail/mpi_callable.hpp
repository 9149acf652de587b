// mpp/detail/mpi_callable.hpp: which callables mpp::mpi::Pool can send to another rank, and the
// worker-side trampolines that rebuild them there: the pool core's (pool_core/callable.hpp),
// which mpp::Pool's forkserver and spawn workers use too.
#pragma once

#include "mpp/detail/mpi_core.hpp"
#include "mpp/detail/pool_core/callable.hpp"

namespace mpp::mpi::detail {

using mpp::detail::kCrossesMachines;
using mpp::detail::kEmptyCallable;
using mpp::detail::kFunctionPointer;
using mpp::detail::make_callable;
using mpp::detail::Trampoline;

}  // namespace mpp::mpi::detail
