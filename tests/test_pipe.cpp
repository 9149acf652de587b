// Tests for <mpp/pipe.hpp>: duplex and one-way pipes between processes, every way a peer can be
// finished (close by its user, all copies closed, SIGKILL while others hold copies, death in the
// middle of a message) ending recv() with QueueClosed instead of a hang, misuse errors, poll.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mpp/pipe.hpp"
#include "mpp/shared.hpp"
#include "sys/proc.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

// Pipe ends are held as `auto ends = Pipe...; auto& a = ends.first;`, not as structured
// bindings: clang 14 cannot capture structured bindings in lambdas.

// A child whose recv() ends with QueueClosed exits with 50, so tests can tell it from a crash.
pid_t spawn(const std::function<int()>& f) {
  return mpp::test::fork_child([&] {
    try {
      return f();
    } catch (const mpp::QueueClosed&) {
      return 50;
    }
  });
}

int reap(pid_t pid) { return mpp::test::reap_child(pid); }

class PipeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    auto z = mpp::test::zombie_children();
    EXPECT_TRUE(z.empty()) << "zombie children left: " << z.size();
  }
  mpp::test::Watchdog watchdog_{std::chrono::seconds(120), "pipe test"};
};

struct Msg {
  int id;
  std::string text;
  std::vector<double> xs;
};

TEST_F(PipeTest, DuplexPingPongWithChildren) {
  for (int nkids : {1, 3}) {
    std::vector<std::pair<mpp::Connection<Msg>, mpp::Connection<Msg>>> pipes;
    for (int i = 0; i < nkids; ++i) pipes.push_back(mpp::Pipe<Msg>());
    std::vector<pid_t> kids;
    for (int i = 0; i < nkids; ++i) {
      kids.push_back(spawn([&, i] {
        auto& conn = pipes[static_cast<std::size_t>(i)].second;
        for (;;) {
          Msg m = conn.recv();
          if (m.id < 0) return 0;
          m.id += 1000;
          m.text += "!";
          for (auto& x : m.xs) x *= 2;
          conn.send(m);
        }
      }));
    }
    for (int round = 0; round < 200; ++round) {
      for (int i = 0; i < nkids; ++i)
        pipes[static_cast<std::size_t>(i)].first.send(
            Msg{round, "r" + std::to_string(round), {1.0 * round, 0.5}});
      for (int i = 0; i < nkids; ++i) {
        Msg back = pipes[static_cast<std::size_t>(i)].first.recv();
        ASSERT_EQ(back.id, round + 1000);
        ASSERT_EQ(back.text, "r" + std::to_string(round) + "!");
        ASSERT_EQ(back.xs, (std::vector<double>{2.0 * round, 1.0}));
      }
    }
    for (auto& p : pipes) p.first.send(Msg{-1, "", {}});
    for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
  }
}

TEST_F(PipeTest, LargeMessagesArriveWhole) {
  auto ends = mpp::Pipe<std::vector<std::uint64_t>>();
  auto& a = ends.first;
  auto& b = ends.second;
  pid_t kid = spawn([&] {
    for (std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{100000}, std::size_t{3} << 20}) {
      std::vector<std::uint64_t> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = i * 2654435761u;
      b.send(v);
    }
    return 0;
  });
  for (std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{100000}, std::size_t{3} << 20}) {
    auto v = a.recv();
    ASSERT_EQ(v.size(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(v[i], i * 2654435761u);
  }
  EXPECT_EQ(reap(kid), 0);
}

TEST_F(PipeTest, OneWayPipeHasAReaderAndAWriter) {
  auto ends = mpp::Pipe<int>(false);
  auto& reader = ends.first;
  auto& writer = ends.second;
  EXPECT_THROW(reader.send(1), std::logic_error);
  EXPECT_THROW((void)writer.recv(), std::logic_error);
  EXPECT_THROW((void)writer.poll(), std::logic_error);
  pid_t kid = spawn([&] {
    for (int i = 0; i < 100; ++i) writer.send(i * i);
    return 0;
  });
  for (int i = 0; i < 100; ++i) EXPECT_EQ(reader.recv(), i * i);
  EXPECT_EQ(reap(kid), 0);
}

TEST_F(PipeTest, PeerCloseEndsRecvAfterDrainingEvenIfWeHoldItsEnd) {
  auto ends = mpp::Pipe<std::string>();
  auto& mine = ends.first;
  auto& theirs = ends.second;
  // This process keeps its copy of `theirs` open throughout: only the child's close() can end it.
  pid_t kid = spawn([&] {
    theirs.send("one");
    theirs.send("two");
    theirs.close();
    pause();  // alive: the end is finished by close(), not by death
    return 0;
  });
  EXPECT_EQ(mine.recv(), "one");
  EXPECT_EQ(mine.recv(), "two");
  EXPECT_THROW((void)mine.recv(), mpp::QueueClosed);
  EXPECT_THROW((void)mine.recv(), mpp::QueueClosed);  // and stays finished
  kill(kid, SIGKILL);
  reap(kid);
}

TEST_F(PipeTest, PeerKilledEndsRecvEvenIfOthersHoldItsEnd) {
  for (int extra_holders : {0, 2}) {
    auto ends = mpp::Pipe<int>();
    auto& mine = ends.first;
    auto& theirs = ends.second;
    mpp::Event started;
    pid_t kid = spawn([&] {
      theirs.send(7);
      started.set();
      pause();
      return 0;
    });
    // Other processes that merely hold a copy of the child's end must not keep us waiting.
    std::vector<pid_t> holders;
    for (int i = 0; i < extra_holders; ++i)
      holders.push_back(spawn([] {
        pause();
        return 0;
      }));
    started.wait();
    EXPECT_EQ(mine.recv(), 7);
    kill(kid, SIGKILL);
    EXPECT_THROW((void)mine.recv(), mpp::QueueClosed);
    EXPECT_TRUE(mine.poll());  // recv() would not block: it throws
    EXPECT_EQ(reap(kid), -SIGKILL);
    for (pid_t h : holders) {
      kill(h, SIGKILL);
      reap(h);
    }
  }
}

TEST_F(PipeTest, PeerKilledInTheMiddleOfAMessage) {
  auto ends = mpp::Pipe<std::vector<char>>();
  auto& mine = ends.first;
  auto& theirs = ends.second;
  mpp::Event sending;
  pid_t kid = spawn([&] {
    std::vector<char> big(64u << 20, 'x');
    sending.set();
    theirs.send(big);  // blocks: nobody reads 64 MiB
    return 0;
  });
  sending.wait();
  ASSERT_TRUE(mine.poll(20s));  // the first bytes are here
  kill(kid, SIGKILL);
  EXPECT_EQ(reap(kid), -SIGKILL);
  EXPECT_THROW((void)mine.recv(), mpp::QueueClosed);
}

TEST_F(PipeTest, AllCopiesClosedIsEndOfStream) {
  auto ends = mpp::Pipe<int>();
  auto& mine = ends.first;
  auto& theirs = ends.second;
  pid_t kid = spawn([&] {
    theirs.send(1);
    return 0;  // exits: its copy closes
  });
  theirs.close();  // Python's idiom: the parent closes its copy of the child's end
  EXPECT_EQ(mine.recv(), 1);
  EXPECT_THROW((void)mine.recv(), mpp::QueueClosed);
  EXPECT_EQ(reap(kid), 0);
}

TEST_F(PipeTest, ParentClosingItsCopyDoesNotCutOffTheChild) {
  auto ends = mpp::Pipe<int>();
  auto& mine = ends.first;
  auto& theirs = ends.second;
  mpp::Event closed_copy;
  pid_t kid = spawn([&] {
    closed_copy.wait();
    for (int i = 0; i < 10; ++i) theirs.send(i);
    return theirs.recv() == 99 ? 0 : 1;
  });
  theirs.close();  // before the child ever used its end
  closed_copy.set();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(mine.recv(), i);
  mine.send(99);
  EXPECT_EQ(reap(kid), 0);
}

TEST_F(PipeTest, SendToAFinishedPeerThrows) {
  auto ends = mpp::Pipe<std::string>();
  auto& mine = ends.first;
  auto& theirs = ends.second;
  pid_t kid = spawn([&] {
    (void)theirs.recv();
    theirs.close();
    return 0;
  });
  mine.send("bye");
  EXPECT_EQ(reap(kid), 0);
  // Eventually refused (the socket may still accept a little before the shutdown is seen).
  EXPECT_THROW(
      {
        for (int i = 0; i < 1000000; ++i) mine.send(std::string(1000, 'z'));
      },
      mpp::QueueClosed);
}

TEST_F(PipeTest, PollAndCloseSemantics) {
  auto ends = mpp::Pipe<int>();
  auto& a = ends.first;
  auto& b = ends.second;
  EXPECT_FALSE(a.poll());
  EXPECT_FALSE(a.poll(20ms));
  b.send(5);
  EXPECT_TRUE(a.poll(5s));
  EXPECT_TRUE(a.poll());
  EXPECT_EQ(a.recv(), 5);
  EXPECT_FALSE(a.poll());
  auto copy = a;
  a.close();
  EXPECT_TRUE(copy.closed());  // every copy in this process
  a.close();                   // idempotent
  EXPECT_THROW(copy.send(1), std::logic_error);
  EXPECT_THROW((void)copy.recv(), std::logic_error);
  EXPECT_THROW((void)copy.poll(), std::logic_error);
  EXPECT_THROW((void)b.recv(), mpp::QueueClosed);  // we were a's user: b sees end of stream
}

TEST_F(PipeTest, MapsAndNestedTypesTravel) {
  using T = std::map<std::string, std::vector<std::pair<int, std::string>>>;
  auto ends = mpp::Pipe<T>();
  auto& a = ends.first;
  auto& b = ends.second;
  T v{{"a", {{1, "x"}, {2, "yy"}}}, {"b", {}}};
  pid_t kid = spawn([&] {
    T got = b.recv();
    got["c"].push_back({3, "zzz"});
    b.send(got);
    return 0;
  });
  a.send(v);
  T back = a.recv();
  v["c"].push_back({3, "zzz"});
  EXPECT_EQ(back, v);
  EXPECT_EQ(reap(kid), 0);
}

TEST_F(PipeTest, NoDescriptorLeaks) {
  const int before = mpp::test::open_fd_count();
  {
    auto ends = mpp::Pipe<int>();
    auto& a = ends.first;
    auto& b = ends.second;
    a.send(1);
    EXPECT_EQ(b.recv(), 1);
  }
  EXPECT_EQ(mpp::test::open_fd_count(), before);
}

}  // namespace
