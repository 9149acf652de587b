// A job whose task 13 kills its rank: `helper_crash segv|abort|exit|kill|decode`. Open MPI then
// aborts the whole job; the test (src/mpi/CMakeLists.txt) checks that it does, and that the dying
// rank said which rank it was and which task of which function it ran. `decode`: input 13's
// decoder segfaults, in a chunk of 4 (12..15), so the report must name 13, not the item before.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mpp/mpi.hpp>
#include <ranges>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

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

int g_rank = 0;

// Crashes the rank decoding it: only a decoder default-constructs it (rank 0 builds it from a
// value and only encodes it).
class Bomb {
 public:
  Bomb() {
    if (g_rank != 0) std::raise(SIGSEGV);
  }
  explicit Bomb(int) {}

 private:
  friend struct mpp::codec::Fields<Bomb>;
  int pad_ = 0;
};
using Cargo = std::variant<int, Bomb>;

int crash_cargo(const Cargo& c) {
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return std::get<int>(c);
}
}  // namespace
MPP_MPI_REGISTER(crash_task);
MPP_MPI_REGISTER(crash_cargo);

template <>
struct mpp::codec::Fields<Bomb> {
  static auto tie(auto& b) { return std::tie(b.pad_); }
};

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "segv";
  g_mode = mode == "segv" ? 0 : mode == "abort" ? 1 : mode == "exit" ? 2 : 3;
  g_rank = mpp::mpi::rank();
  if (mode == "decode") {
    std::vector<Cargo> in;
    for (int i = 0; i < 40; ++i) {
      if (i == 13) {
        in.emplace_back(Bomb(0));
      } else {
        in.emplace_back(i);
      }
    }
    mpp::mpi::Pool pool;
    auto out = pool.map(crash_cargo, in, 4);
    std::printf("not reached: %zu results\n", out.size());
    return 0;
  }
  mpp::mpi::Pool pool;
  auto out = pool.map(crash_task, std::views::iota(0, 40), 1);
  std::printf("not reached: %zu results\n", out.size());
  return 0;
}
