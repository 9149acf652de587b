// Start methods (issue 20): what forkserver and spawn cost next to fork, in one run, as ratios.
//   1. apply round trip on a started Pool(1): forkserver vs fork (wanted <= 1.3x)
//   2. Pool(2) construction to its first result: forkserver (server already running) vs fork
//      (wanted <= 2x); spawn and the server's one-time start printed beside
//   3. one worker start from a parent with N GiB resident: forkserver (the server's page tables
//      are small) vs fork (the zygote is a copy of the big parent, and so is each of its forks)
// Usage: bench_start_method [resident_gib=4] [round_trips=2000]
// Each figure is a median over repeated runs; the runs of the methods are interleaved.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "bench_util.hpp"
#include "mpp/pool.hpp"
#include "process/forker.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int plus_one(int x) { return x + 1; }

mpp::PoolOptions with(mpp::StartMethod m, unsigned n) {
  mpp::PoolOptions o;
  o.processes = n;
  o.start_method = m;
  return o;
}

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

double round_trip_us(mpp::Pool& pool, int n) {
  for (int i = 0; i < 100; ++i) (void)pool.apply(plus_one, i);  // warm
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) (void)pool.apply(plus_one, i);
  return us_since(t0) / n;
}

double start_to_first_us(mpp::StartMethod m) {
  const auto t0 = Clock::now();
  mpp::Pool pool(with(m, 2));
  (void)pool.apply(plus_one, 1);
  const double us = us_since(t0);
  pool.terminate();
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  mpp::init(argc, argv);
  const double gib = argc > 1 ? std::atof(argv[1]) : 4.0;
  const int trips = argc > 2 ? std::atoi(argv[2]) : 2000;
  using M = mpp::StartMethod;

  const auto s0 = Clock::now();
  { mpp::Pool warm(with(M::forkserver, 1)); }
  const double server_start_us = us_since(s0);

  std::printf("start methods (medians; forkserver's server started once, %.0f us)\n",
              server_start_us);
  std::vector<double> rt_fork, rt_fs;
  {
    mpp::Pool f(with(M::fork, 1));
    mpp::Pool s(with(M::forkserver, 1));
    for (int r = 0; r < 5; ++r) {
      rt_fork.push_back(round_trip_us(f, trips));
      rt_fs.push_back(round_trip_us(s, trips));
    }
  }
  const double a = bench::median(rt_fs), b = bench::median(rt_fork);
  std::printf("  %-52s forkserver %8.2f us  fork %8.2f us  ratio %.2fx (wanted <= 1.3x)\n",
              "apply round trip, Pool(1)", a, b, a / b);

  std::vector<double> st_fork, st_fs, st_spawn;
  for (int r = 0; r < 9; ++r) {
    st_fork.push_back(start_to_first_us(M::fork));
    st_fs.push_back(start_to_first_us(M::forkserver));
    st_spawn.push_back(start_to_first_us(M::spawn));
  }
  const double c = bench::median(st_fs), d = bench::median(st_fork);
  std::printf("  %-52s forkserver %8.0f us  fork %8.0f us  ratio %.2fx (wanted <= 2x)\n",
              "Pool(2) construction to first result", c, d, c / d);
  std::printf("  %-52s spawn      %8.0f us  fork %8.0f us  ratio %.2fx\n",
              "Pool(2) construction to first result", bench::median(st_spawn), d,
              bench::median(st_spawn) / d);

  // A big parent: `gib` GiB written (resident), then a worker start each way.
  const auto bytes = static_cast<std::size_t>(gib * (1ull << 30));
  std::unique_ptr<char[]> big(new char[bytes]);
  std::memset(big.get(), 1, bytes);
  std::vector<double> big_fork, big_fs;
  for (int r = 0; r < 5; ++r) {
    big_fork.push_back(start_to_first_us(M::fork));
    big_fs.push_back(start_to_first_us(M::forkserver));
  }
  const double e = bench::median(big_fs), f = bench::median(big_fork);
  char label[96];
  std::snprintf(label, sizeof label, "Pool(2) to first result, parent %.1f GiB resident", gib);
  std::printf("  %-52s forkserver %8.0f us  fork %8.0f us  forkserver %.1fx faster\n", label, e, f,
              f / e);
  std::vector<double> raw;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = Clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    int st = 0;
    ::waitpid(pid, &st, 0);
    raw.push_back(us_since(t0));
  }
  std::printf("  %-52s %8.0f us (one bare fork + exit + wait of this parent, for reference)\n",
              "fork of the big parent", bench::median(raw));
  std::printf("checksum %d\n", big[bytes / 2]);
  mpp::detail::Forker::stop_server();
  return 0;
}
