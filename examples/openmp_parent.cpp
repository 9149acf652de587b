// A program that uses OpenMP, then a Pool whose tasks use OpenMP too (issue 20's first case).
//
// Under StartMethod::fork this hangs: the program's OpenMP region leaves libgomp's thread pool
// behind, and a forked worker inherits libgomp's idea that those threads exist, but not the
// threads; its first parallel region waits for them forever. Under StartMethod::forkserver the
// workers are forked by a server that is a fresh execution of this program, diverted by
// mpp::init before main's OpenMP region ran: each worker starts its own OpenMP threads.
//
// Usage: openmp_parent [n]   (sums of sqrt over [0, n) for a few n, in the parent and in workers)
// test-args: 200000
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mpp/pool.hpp"

namespace {

double sum_of_roots(long n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s)
  for (long i = 0; i < n; ++i) s += std::sqrt(static_cast<double>(i));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  mpp::init(argc, argv);  // a forkserver started by this program stops here
  const long n = argc > 1 ? std::atol(argv[1]) : 2000000;

  // The program's own OpenMP work: from here on libgomp has a thread pool in this process.
  std::vector<double> in_parent;
  for (long k = 1; k <= 4; ++k) in_parent.push_back(sum_of_roots(k * n));

  mpp::Pool pool(mpp::PoolOptions{.processes = 2, .start_method = mpp::StartMethod::forkserver});
  const std::vector<long> sizes{n, 2 * n, 3 * n, 4 * n};
  const std::vector<double> in_workers = pool.map(sum_of_roots, sizes);

  bool same = in_workers.size() == in_parent.size();
  for (std::size_t i = 0; same && i < in_parent.size(); ++i) {
    same = std::fabs(in_workers[i] - in_parent[i]) <= 1e-9 * std::fabs(in_parent[i]);
  }
  std::printf("sums of roots, parent vs 2 forkserver workers: %s (last %.6g)\n",
              same ? "identical" : "DIFFERENT", in_workers.empty() ? 0.0 : in_workers.back());
  return same ? 0 : 1;
}
