// mpp::mpi::Pool against raw MPI in the same job: `mpirun -n 2 bench_mpi [round_trips] [tasks]`.
//
//  1. round-trip latency, alternating in the same job so that noise hits both alike:
//     raw MPI_Send/MPI_Recv ping-pong of one int between rank 0 and rank 1 on MPI_COMM_WORLD
//     (rank 1 runs its side inside a pool task, which is how a worker rank can still run raw MPI
//     code), then pool.apply_async(f, int).get() round trips (f returns its argument + 1);
//  2. throughput of trivial tasks: pool.map over many ints with automatic chunks, and with
//     chunksize 1 (one message each way per task).
// Every measurement is repeated; medians are printed, and the ratio pool / raw.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mpp/mpi.hpp>
#include <ranges>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int next(int x) { return x + 1; }

// Rank 1's side of the raw ping-pong, run as a pool task.
int echo(int trips) {
  int v = 0;
  for (int i = 0; i < trips; ++i) {
    MPI_Recv(&v, 1, MPI_INT, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    ++v;
    MPI_Send(&v, 1, MPI_INT, 0, 0, MPI_COMM_WORLD);
  }
  return v;
}

}  // namespace

MPP_MPI_REGISTER(next);
MPP_MPI_REGISTER(echo);

int main(int argc, char** argv) {
  const int trips = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int tasks = argc > 2 ? std::atoi(argv[2]) : 1000000;
  const int reps = 7;
  MPI_Init(&argc, &argv);
  {
    // Ranks other than 0 serve the pools from here on (the constructor does not return there;
    // they finalize and exit when rank 0 calls MPI_Finalize below).
    mpp::mpi::Pool pool(1);  // one worker rank (rank 1), like the raw ping-pong
    if (mpp::mpi::size() < 2) {
      std::fprintf(stderr, "run with mpirun -n 2 (or more)\n");
      return 1;
    }
    std::vector<double> raw_us;
    std::vector<double> pool_us;
    for (int r = 0; r < reps; ++r) {
      auto peer = pool.apply_async(echo, trips);
      auto t0 = Clock::now();
      int v = 0;
      for (int i = 0; i < trips; ++i) {
        MPI_Send(&v, 1, MPI_INT, 1, 0, MPI_COMM_WORLD);
        MPI_Recv(&v, 1, MPI_INT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
      raw_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() /
                       trips);
      if (v != trips || peer.get() != trips) std::fprintf(stderr, "raw ping-pong lost messages\n");

      t0 = Clock::now();
      v = 0;
      for (int i = 0; i < trips; ++i) v = pool.apply_async(next, v).get();
      pool_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() /
                        trips);
      if (v != trips) std::fprintf(stderr, "pool round trips lost results\n");
    }

    // Trivial tasks per second, on every worker rank.
    mpp::mpi::Pool all;
    auto rate = [&](std::size_t chunksize, int n) {
      std::vector<double> v;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        auto out = all.map(next, std::views::iota(0, n), chunksize);
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (out.back() != n) std::fprintf(stderr, "map lost results\n");
        v.push_back(n / s);
      }
      return median(v);
    };
    const double auto_rate = rate(0, tasks);
    const double one_rate = rate(1, std::max(tasks / 50, 1000));

    const double raw = median(raw_us);
    const double ours = median(pool_us);
    std::printf("mpi ranks: %d (round trips: rank 0 <-> rank 1; map uses %u worker ranks)\n",
                mpp::mpi::size(), all.processes());
    std::printf("round trip  raw MPI_Send/MPI_Recv ping-pong : %8.2f us (median of %d x %d)\n", raw,
                reps, trips);
    std::printf("round trip  pool.apply_async(f, x).get()    : %8.2f us\n", ours);
    std::printf("ratio apply_async / raw ping-pong           : %8.2f  (target <= 2)\n", ours / raw);
    std::printf("trivial tasks/s  map, automatic chunks      : %12.0f\n", auto_rate);
    std::printf("trivial tasks/s  map, chunksize 1           : %12.0f\n", one_rate);
    std::printf("raw ping-pong round trips/s (reference)     : %12.0f\n", 1e6 / raw);
  }
  MPI_Finalize();
  return 0;
}
