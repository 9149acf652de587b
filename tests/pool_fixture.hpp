// The fixture every pool test file uses: a watchdog, and after each test the checks that nothing
// outlived the pool (children, zombies, fds, shared mappings).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "process/forker.hpp"
#include "test_util.hpp"

namespace mpp::test {

class PoolFixture : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    fds_ = open_fd_count();
    maps_ = shared_mappings();
    dog_ = std::make_unique<Watchdog>(std::chrono::seconds(120), "pool test");
  }
  void TearDown() override {
    mpp::detail::Forker::stop_server();  // a forkserver (if a test started one) is not a leak
    dog_.reset();
    EXPECT_TRUE(live_children().empty()) << "a worker outlived its pool";
    EXPECT_TRUE(zombie_children().empty()) << "zombie left behind";
    EXPECT_EQ(open_fd_count(), fds_) << "fd leaked";
    EXPECT_EQ(shared_mappings(), maps_) << "a pool's shared mapping was not unmapped";
  }
  unsigned workers() const { return GetParam(); }

 private:
  int fds_ = 0;
  int maps_ = 0;
  std::unique_ptr<Watchdog> dog_;
};

}  // namespace mpp::test
