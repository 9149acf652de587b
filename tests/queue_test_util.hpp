// Helpers shared by the queue tests (tests/test_queue_*.cpp): counters children report into, and
// the check that a test left no zombie, fd or /dev/shm entry behind.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "sys/mem.hpp"
#include "test_util.hpp"

namespace mpp::test {

// Process-shared counters for children to report into.
struct SharedCounters {
  explicit SharedCounters(std::size_t n)
      : map(mpp::sys::map_anonymous_shared(n * sizeof(std::uint64_t))), size(n) {}
  std::atomic_ref<std::uint64_t> operator[](std::size_t i) const {
    return std::atomic_ref<std::uint64_t>(static_cast<std::uint64_t*>(map.data())[i]);
  }
  mpp::sys::Mapping map;
  std::size_t size;
};

// No zombie and no fd left behind, and no /dev/shm involvement: the queue's memory is an
// anonymous mapping, so this process maps nothing from /dev/shm and creates no entry there.
// (Other suites running concurrently create /dev/shm entries of their own, named with their pid,
// so only entries carrying our pid count.)
struct NoLeaks {
  int fds = mpp::test::open_fd_count();
  void check() const {
    EXPECT_TRUE(mpp::test::zombie_children().empty());
    EXPECT_EQ(mpp::test::open_fd_count(), fds);
    const std::string me = std::to_string(getpid());
    for (const auto& e : mpp::test::shm_entries()) {
      EXPECT_EQ(e.find(me), std::string::npos) << "left in /dev/shm: " << e;
    }
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      EXPECT_EQ(line.find("/dev/shm/"), std::string::npos) << line;
    }
  }
};

}  // namespace mpp::test
