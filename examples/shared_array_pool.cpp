// A large read-only array shared with a Pool without copying it.
//
// The array is created BEFORE the Pool, in anonymous shared memory, so every worker the Pool forks
// maps the very same pages; tasks receive only chunk numbers (a few bytes each) and read the data
// in place. Nothing is serialized, sent or duplicated: only the chunk numbers cross the process
// boundary, whatever the size of the array.
//
//   Python: arr = Array('d', n, lock=False) ... Pool(initializer=keep, initargs=(arr,)) ...
//           pool.map(partial_sum, range(chunks))
//
// Usage: shared_array_pool [elements=50000000] [processes=0 (cpu_count)] [chunks=64]
// Checks the parallel sum against a serial one; exits 1 on a mismatch.
// test-args: 2000000 2 16
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mpp/mpp.hpp>
#include <mpp/pool.hpp>
#include <mpp/shared.hpp>
#include <optional>
#include <vector>

namespace {

// Set before the Pool exists; every worker is a fork that already has it.
std::optional<mpp::Array<double>> g_data;
std::size_t g_chunks = 1;

// Captureless: runs on the persistent workers; only the chunk index crosses.
double partial_sum(std::size_t chunk) {
  const auto& a = *g_data;
  const std::size_t n = a.size();
  const std::size_t lo = n * chunk / g_chunks;
  const std::size_t hi = n * (chunk + 1) / g_chunks;
  double s = 0;
  for (std::size_t i = lo; i < hi; ++i) s += a[i];
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const long elements = argc > 1 ? std::atol(argv[1]) : 50'000'000;
  const int procs = argc > 2 ? std::atoi(argv[2]) : 0;
  const long chunks = argc > 3 ? std::atol(argv[3]) : 64;
  if (elements < 1 || procs < 0 || chunks < 1) {
    std::fprintf(stderr, "usage: shared_array_pool [elements>=1] [processes>=0] [chunks>=1]\n");
    return 2;
  }
  const auto n = static_cast<std::size_t>(elements);
  g_chunks = static_cast<std::size_t>(chunks);

  g_data.emplace(n);  // zero-filled shared memory
  for (std::size_t i = 0; i < n; ++i) (*g_data)[i] = static_cast<double>(i % 1000) * 0.5;

  const auto t0 = std::chrono::steady_clock::now();
  mpp::Pool pool(static_cast<unsigned>(procs));  // workers forked now: they map g_data's pages
  std::vector<std::size_t> ids(g_chunks);
  for (std::size_t c = 0; c < g_chunks; ++c) ids[c] = c;
  const std::vector<double> parts = pool.map(partial_sum, ids);
  pool.close();
  pool.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  double total = 0;
  for (double p : parts) total += p;
  double serial = 0;
  for (std::size_t c = 0; c < g_chunks; ++c) serial += partial_sum(c);
  std::printf(
      "sum of %zu shared doubles over %zu chunks: %.1f (serial %.1f), %.3f s, %zu bytes of "
      "input sent in total\n",
      n, g_chunks, total, serial, secs, g_chunks * sizeof(std::size_t));
  return total == serial ? 0 : 1;
}
