// A Barrier-synchronised pipeline: P worker processes advance a 1-D heat-diffusion grid in lock
// step. In each step every worker reads the current grid, writes its slice of the next one, and
// waits at the barrier; nobody reads a grid before every slice of it was written. With two grids
// (double buffering) one barrier per step is enough: the grid a worker overwrites in step s+1 is
// the one everybody finished reading before arriving at the barrier of step s.
//
//   Python: Barrier(P); Array('d', n) x 2; Process(target=stage, args=(...)) x P
//
// Usage: barrier_pipeline [processes=4] [cells=200000] [steps=200]
// Checks the parallel result against a serial run of the same steps; exits 1 on any difference.
// test-args: 3 20000 50
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mpp/mpp.hpp>
#include <mpp/shared.hpp>
#include <vector>

namespace {

// One explicit diffusion step on cells [lo, hi): the same arithmetic serially and in parallel, so
// the results must match bit for bit.
void step(const double* cur, double* next, std::size_t n, std::size_t lo, std::size_t hi) {
  for (std::size_t i = lo; i < hi; ++i) {
    const double left = i == 0 ? cur[i] : cur[i - 1];
    const double right = i + 1 == n ? cur[i] : cur[i + 1];
    next[i] = cur[i] + 0.25 * (left - 2 * cur[i] + right);
  }
}

void initial(double* g, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) g[i] = (i > n / 3 && i < n / 2) ? 100.0 : 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  const int procs = argc > 1 ? std::atoi(argv[1]) : 4;
  const long cells = argc > 2 ? std::atol(argv[2]) : 200000;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 200;
  if (procs < 1 || cells < procs || steps < 0) {
    std::fprintf(stderr, "usage: barrier_pipeline [processes>=1] [cells>=processes] [steps>=0]\n");
    return 2;
  }
  const auto n = static_cast<std::size_t>(cells);

  mpp::Array<double> a(n), b(n);  // double buffer in shared memory (zero-filled)
  initial(a.data(), n);
  mpp::Barrier barrier(static_cast<unsigned>(procs));

  auto stage = [=](int rank) mutable {
    const std::size_t lo = n * static_cast<std::size_t>(rank) / static_cast<std::size_t>(procs);
    const std::size_t hi = n * static_cast<std::size_t>(rank + 1) / static_cast<std::size_t>(procs);
    for (int s = 0; s < steps; ++s) {
      const bool even = s % 2 == 0;
      step(even ? a.data() : b.data(), even ? b.data() : a.data(), n, lo, hi);
      barrier.wait();  // the next grid is complete before anyone reads it
    }
  };

  std::vector<std::unique_ptr<mpp::Process>> ps;
  for (int r = 0; r < procs; ++r) {
    ps.push_back(std::make_unique<mpp::Process>(stage, r));
    ps.back()->start();
  }
  bool ok = true;
  for (auto& p : ps) {
    p->join();
    ok = ok && p->exitcode() == 0;
  }

  // Serial reference.
  std::vector<double> x(n), y(n);
  initial(x.data(), n);
  for (int s = 0; s < steps; ++s) {
    step(x.data(), y.data(), n, 0, n);
    x.swap(y);
  }
  const double* result = steps % 2 == 0 ? a.data() : b.data();
  std::size_t diffs = 0;
  double heat = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (result[i] != x[i]) ++diffs;
    heat += result[i];
  }
  std::printf("%d processes, %zu cells, %d steps: total heat %.6f, %zu cells differ from serial\n",
              procs, n, steps, heat, diffs);
  return ok && diffs == 0 ? 0 : 1;
}
