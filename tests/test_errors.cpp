// Tests for <mpp/errors.hpp>: the hierarchy, the fields, and the messages users read.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "mpp/errors.hpp"

namespace {

TEST(Errors, EveryMppErrorIsCaughtAsErrorAndRuntimeError) {
  auto throws = [](auto e) {
    try {
      throw e;
    } catch (const mpp::Error&) {
      return true;
    }
  };
  EXPECT_TRUE(throws(mpp::TimeoutError("t")));
  EXPECT_TRUE(throws(mpp::QueueClosed("q")));
  EXPECT_TRUE(throws(mpp::SerializationError("s")));
  EXPECT_TRUE(throws(mpp::RemoteError("int", "42", 1)));
  EXPECT_TRUE(throws(mpp::WorkerLost(1, 2, 9, 0)));
  try {
    throw mpp::QueueClosed("closed");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "closed");
  }
}

TEST(Errors, WorkerLostMessageNamesPidTaskAndSignal) {
  mpp::WorkerLost killed(4242, 17, SIGKILL, 0);
  EXPECT_STREQ(killed.what(),
               "worker 4242 lost while running task 17: killed by signal 9 (SIGKILL)");
  mpp::WorkerLost exited(10, 3, 0, 7);
  EXPECT_STREQ(exited.what(), "worker 10 lost while running task 3: exited with status 7");
  EXPECT_EQ(exited.exit_code(), 7);
  EXPECT_EQ(exited.signal(), 0);
  mpp::WorkerLost no_task(10, -1, SIGSEGV, 0);
  EXPECT_STREQ(no_task.what(), "worker 10 lost: killed by signal 11 (SIGSEGV)");
  mpp::WorkerLost custom(10, 5, SIGKILL, 0, "worker 10 exceeded task_timeout on task 5");
  EXPECT_STREQ(custom.what(), "worker 10 exceeded task_timeout on task 5");
  EXPECT_EQ(custom.task_index(), 5);
}

TEST(Errors, RemoteErrorKeepsTypeMessagePidAndIndex) {
  mpp::RemoteError e("std::out_of_range", "vector::at", 77, 12);
  EXPECT_EQ(e.type_name(), "std::out_of_range");
  EXPECT_EQ(e.message(), "vector::at");
  EXPECT_EQ(e.pid(), 77);
  EXPECT_EQ(e.task_index(), 12);
  std::string what = e.what();
  EXPECT_NE(what.find("std::out_of_range"), std::string::npos);
  EXPECT_NE(what.find("vector::at"), std::string::npos);
  EXPECT_NE(what.find("task 12"), std::string::npos);
  mpp::RemoteError no_task("unknown exception", "", 5);
  EXPECT_EQ(no_task.task_index(), mpp::RemoteError::kNoTask);
  EXPECT_EQ(std::string(no_task.what()).find("task"), std::string::npos);
}

TEST(Errors, SignalNames) {
  EXPECT_EQ(mpp::signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(mpp::signal_name(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(mpp::signal_name(SIGTERM), "SIGTERM");
  EXPECT_EQ(mpp::signal_name(1000), "signal 1000");
}

}  // namespace
