// mpp/detail/pool_core/front.hpp: the call surface that mpp::Pool and mpp::mpi::Pool share
// (Python's Pool: map, map_async, starmap, starmap_async, imap, imap_unordered, apply,
// apply_async), written once. Each pool derives from PoolFront<itself> and provides, as private
// members befriending PoolFront:
//   map_impl<Star>(f, inputs, chunksize)          blocking map/starmap
//   map_async_impl<Star>(f, inputs, chunksize)    map_async/starmap_async (copies the input)
//   imap_impl<Ordered>(f, inputs, chunksize)      imap/imap_unordered
//   apply_impl<Fd, In>(f, In args)                apply_async
// The backend's header says what differs (where the tasks run, which callables can go there).
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace mpp::detail {

template <class Pool>
class PoolFront {
 public:
  // f(x) for every x of the input range, results in input order. Blocks. Throws the error of the
  // first failed input (by index) once the others completed (RemoteError, WorkerLost), what the
  // input range threw, std::logic_error after close(). `void` f: returns nothing. chunksize 0
  // picks one (see the pool's header).
  template <class F, class Range>
  auto map(F&& f, Range&& inputs, std::size_t chunksize = 0) {
    return self().template map_impl<false>(std::forward<F>(f), std::forward<Range>(inputs),
                                           chunksize);
  }
  // map without blocking: an AsyncResult<std::vector<R>> (AsyncResult<void> for void f). The
  // input is copied when the call is made. Throws std::logic_error after close(), and what the
  // input range throws while it is copied; task errors come out of get().
  template <class F, class Range>
  auto map_async(F&& f, Range&& inputs, std::size_t chunksize = 0) {
    return self().template map_async_impl<false>(std::forward<F>(f), std::forward<Range>(inputs),
                                                 chunksize);
  }
  // std::apply(f, tuple) for every tuple of the input range; blocks and throws like map.
  template <class F, class Range>
  auto starmap(F&& f, Range&& argument_tuples, std::size_t chunksize = 0) {
    return self().template map_impl<true>(std::forward<F>(f), std::forward<Range>(argument_tuples),
                                          chunksize);
  }
  // starmap without blocking, as map_async.
  template <class F, class Range>
  auto starmap_async(F&& f, Range&& argument_tuples, std::size_t chunksize = 0) {
    return self().template map_async_impl<true>(std::forward<F>(f),
                                                std::forward<Range>(argument_tuples), chunksize);
  }
  // Lazy, in input order: an ImapRange. The input is consumed as results are taken, at most 4
  // chunks per worker ahead, so it streams over inputs of any length. An lvalue input range must
  // outlive the returned range; an rvalue is moved in. Does not block (iterating does). Throws
  // std::invalid_argument for chunksize 0, std::logic_error after close().
  template <class F, class Range>
  auto imap(F&& f, Range&& inputs, std::size_t chunksize = 1) {
    return self().template imap_impl<true>(std::forward<F>(f), std::forward<Range>(inputs),
                                           chunksize);
  }
  // Lazy, in completion order; otherwise as imap.
  template <class F, class Range>
  auto imap_unordered(F&& f, Range&& inputs, std::size_t chunksize = 1) {
    return self().template imap_impl<false>(std::forward<F>(f), std::forward<Range>(inputs),
                                            chunksize);
  }
  // f(args...) in a worker. Blocks; rethrows its error.
  template <class F, class... Args>
  auto apply(F&& f, Args&&... args) {
    return apply_async(std::forward<F>(f), std::forward<Args>(args)...).get();
  }
  // f(args...) in a worker, without blocking: an AsyncResult<R>. The arguments are encoded now.
  // Throws std::logic_error after close(); task errors come out of get().
  template <class F, class... Args>
  auto apply_async(F&& f, Args&&... args) {
    using In = std::tuple<std::decay_t<Args>...>;
    return self().template apply_impl<std::decay_t<F>, In>(f, In(std::forward<Args>(args)...));
  }

 protected:
  PoolFront() = default;
  PoolFront(const PoolFront&) = delete;
  PoolFront& operator=(const PoolFront&) = delete;
  PoolFront(PoolFront&&) noexcept = default;
  PoolFront& operator=(PoolFront&&) noexcept = default;
  ~PoolFront() = default;

 private:
  Pool& self() noexcept { return static_cast<Pool&>(*this); }
};

}  // namespace mpp::detail
