// A job whose task 13 kills its rank: `helper_crash segv|abort|exit|kill`. Open MPI then aborts the
// whole job; the test (src/mpi/CMakeLists.txt) checks that it does, and that the dying rank said
// which rank it was and which task of which function it ran.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mpp/mpi.hpp>
#include <ranges>
#include <string>
#include <thread>

namespace {
int g_mode = 0;  // set from argv on every rank before the pool starts

int crash_task(int i) {
  if (i == 13) {
    if (g_mode == 0) std::raise(SIGSEGV);
    if (g_mode == 1) std::abort();
    if (g_mode == 2) std::exit(3);
    if (g_mode == 3) std::raise(SIGKILL);  // like the OOM killer: the rank cannot say anything
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return i;
}
}  // namespace
MPP_MPI_REGISTER(crash_task);

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "segv";
  g_mode = mode == "segv" ? 0 : mode == "abort" ? 1 : mode == "exit" ? 2 : 3;
  mpp::mpi::Pool pool;
  auto out = pool.map(crash_task, std::views::iota(0, 40), 1);
  std::printf("not reached: %zu results\n", out.size());
  return 0;
}
