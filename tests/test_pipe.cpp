// Tests for <mpp/pipe.hpp>: duplex and one-way pipes between processes, every way a peer can be
// finished (close by its user, all copies closed, SIGKILL while others hold copies, death in the
// middle of a message) ending recv() with QueueClosed instead of a hang, misuse errors, poll; and
// one end shared by several processes (poll() consumes nothing, recv() takes one message, two
// readers of one end each get whole messages, none lost or duplicated; issue 16).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
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

// ---- One end used by several processes (issue 16) -------------------------------------------

// Children of the tests below: they die with the test process (a hang found by the watchdog
// leaves no orphan behind), and the ones a failed assertion left running are killed and reaped
// when the test's scope ends.
class Kids {
 public:
  Kids() = default;
  Kids(const Kids&) = delete;
  Kids& operator=(const Kids&) = delete;
  ~Kids() {
    for (pid_t k : live_) {
      kill(k, SIGKILL);
      reap(k);
    }
  }
  pid_t start(const std::function<int()>& f) {
    const pid_t parent = getpid();
    pid_t k = spawn([&] {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) return 98;  // the parent died before prctl
      return f();
    });
    live_.push_back(k);
    return k;
  }
  int wait(pid_t k) {
    live_.erase(std::remove(live_.begin(), live_.end(), k), live_.end());
    return reap(k);
  }

 private:
  std::vector<pid_t> live_;
};

// recv() that reports QueueClosed as nullopt, so that a failed expectation does not end the test
// body with children still waiting for it.
template <class T>
std::optional<T> recv_or_closed(mpp::Connection<T>& c) {
  try {
    return c.recv();
  } catch (const mpp::QueueClosed&) {
    return std::nullopt;
  }
}

// A pipe whose first end holds "one" and "two" and then the end of the stream (this process
// used the second end and closed it).
std::pair<mpp::Connection<std::string>, mpp::Connection<std::string>> two_messages_then_closed() {
  auto ends = mpp::Pipe<std::string>();
  ends.second.send("one");
  ends.second.send("two");
  ends.second.close();
  return ends;
}

TEST_F(PipeTest, PollInAnotherProcessConsumesNothing) {
  for (auto child_timeout : {0ms, 5000ms}) {
    SCOPED_TRACE(child_timeout.count());
    Kids kids;
    auto ends = two_messages_then_closed();
    auto& a = ends.first;
    // A child that only polls the end it inherited, then exits.
    pid_t k = kids.start([&] { return a.poll(child_timeout) ? 0 : 1; });
    EXPECT_EQ(kids.wait(k), 0);
    EXPECT_TRUE(a.poll());
    EXPECT_EQ(recv_or_closed(a), std::optional<std::string>("one"));
    EXPECT_EQ(recv_or_closed(a), std::optional<std::string>("two"));
    EXPECT_EQ(recv_or_closed(a), std::nullopt);
  }
  // The other way round: this process polls, a child receives both messages.
  Kids kids;
  auto ends = two_messages_then_closed();
  auto& a = ends.first;
  ASSERT_TRUE(a.poll(5s));
  ASSERT_TRUE(a.poll());
  pid_t k = kids.start([&] {
    if (!a.poll()) return 1;
    if (a.recv() != "one" || a.recv() != "two") return 2;
    return 0;
  });
  EXPECT_EQ(kids.wait(k), 0);
  EXPECT_EQ(recv_or_closed(a), std::nullopt);  // the child took both
}

TEST_F(PipeTest, RecvInAnotherProcessTakesExactlyOneMessage) {
  Kids kids;
  auto ends = mpp::Pipe<int>();
  auto& a = ends.first;
  auto& b = ends.second;
  auto control = mpp::Pipe<int>();
  auto& to_child = control.first;
  auto& in_child = control.second;
  constexpr int kN = 12;
  for (int i = 0; i < kN; ++i) b.send(i);
  b.close();
  // On each request the child takes one message from `a` and reports it (-1: end of stream).
  pid_t k = kids.start([&] {
    while (in_child.recv() > 0) in_child.send(recv_or_closed(a).value_or(-1));
    return 0;
  });
  // Turns alternate irregularly between the child and this process, on the same end.
  for (int i = 0; i < kN; ++i) {
    if (i % 3 != 0) {
      to_child.send(1);
      EXPECT_EQ(to_child.recv(), i) << "taken by the child";
    } else {
      EXPECT_EQ(recv_or_closed(a), std::optional<int>(i)) << "taken here";
    }
  }
  to_child.send(1);
  EXPECT_EQ(to_child.recv(), -1);  // the child sees the end of the stream too
  EXPECT_EQ(recv_or_closed(a), std::nullopt);
  to_child.send(0);
  EXPECT_EQ(kids.wait(k), 0);
}

struct Item {
  int id;
  std::vector<std::uint64_t> body;
};

std::uint64_t body_word(int id, std::size_t i) {
  return static_cast<std::uint64_t>(id) * 1000003u + i;
}

// Sizes that cross every boundary of the transport: empty and tiny bodies, frames around the
// receivers' shared stage (1872 bytes), and bodies larger than the socket buffer (~208 KiB), which
// go out in several writes.
std::size_t body_words(int id) {
  switch (id % 5) {
    case 0:
      return 40000 + static_cast<std::size_t>(id);  // ~320 KiB
    case 1:
      return 222 + static_cast<std::size_t>(id % 20);  // 1.8-1.95 KB frames
    default:
      return static_cast<std::size_t>(id % 7);
  }
}

Item make_item(int id) {
  Item m{id, {}};
  const std::size_t n = body_words(id);
  m.body.resize(n);
  for (std::size_t i = 0; i < n; ++i) m.body[i] = body_word(id, i);
  return m;
}

bool item_ok(const Item& m) { return m.id >= 0 && m.body == make_item(m.id).body; }

// Several senders on one end: a message larger than the socket buffer goes out in several writes,
// which another sender's writes must not come between (they did before issue 16's fix too).
TEST_F(PipeTest, SeveralReadersOfOneEndEachGetWholeMessagesNoneLostOrDuplicated) {
  struct Case {
    int readers;
    int senders;  // 1: this process; more: children, each sending every senders-th message
  };
  for (Case c : {Case{2, 1}, Case{3, 1}, Case{4, 1}, Case{2, 2}, Case{1, 3}}) {
    SCOPED_TRACE(std::to_string(c.readers) + " readers, " + std::to_string(c.senders) + " senders");
    constexpr int kN = 400;
    Kids kids;
    auto ends = mpp::Pipe<Item>();
    auto& a = ends.first;
    auto& b = ends.second;
    std::vector<std::pair<mpp::Connection<std::vector<int>>, mpp::Connection<std::vector<int>>>>
        results;
    for (int r = 0; r < c.readers; ++r) results.push_back(mpp::Pipe<std::vector<int>>());
    std::vector<pid_t> readers;
    for (int r = 0; r < c.readers; ++r) {
      readers.push_back(kids.start([&, r] {
        std::vector<int> got;
        for (;;) {
          Item m = a.recv();
          if (m.id < 0) break;  // one stop message per reader
          if (!item_ok(m)) return 3;
          got.push_back(m.id);
        }
        results[static_cast<std::size_t>(r)].second.send(got);
        return 0;
      }));
    }
    a.close();  // this process only sends (it never used a: the readers are not cut off)
    // Senders stay alive until the readers are done: the readers' peer is the process that
    // last sent on b, and its exit would end their stream (mpp/pipe.hpp).
    mpp::Event done;
    std::vector<pid_t> senders;
    if (c.senders == 1) {
      for (int i = 0; i < kN; ++i) b.send(make_item(i));
    } else {
      std::vector<mpp::Event> sent(static_cast<std::size_t>(c.senders));
      for (int s = 0; s < c.senders; ++s)
        senders.push_back(kids.start([&, s] {
          for (int i = s; i < kN; i += c.senders) b.send(make_item(i));
          sent[static_cast<std::size_t>(s)].set();
          return done.wait(60s) ? 0 : 1;
        }));
      for (auto& e : sent) ASSERT_TRUE(e.wait(60s));
    }
    for (int r = 0; r < c.readers; ++r) b.send(Item{-1, {}});
    std::vector<int> seen(kN, 0);
    for (int r = 0; r < c.readers; ++r) {
      auto& res = results[static_cast<std::size_t>(r)].first;
      ASSERT_TRUE(res.poll(60s)) << "reader " << r << " did not finish";
      const std::vector<int> got = res.recv();
      // Each reader takes messages in the order a sender sent them.
      for (int s = 0; s < c.senders; ++s) {
        std::vector<int> mine;
        for (int id : got)
          if (id % c.senders == s) mine.push_back(id);
        EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end())) << "reader " << r;
      }
      for (int id : got) {
        ASSERT_GE(id, 0);
        ASSERT_LT(id, kN);
        ++seen[static_cast<std::size_t>(id)];
      }
    }
    for (int i = 0; i < kN; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "message " << i;
    for (pid_t k : readers) EXPECT_EQ(kids.wait(k), 0);
    done.set();
    for (pid_t k : senders) EXPECT_EQ(kids.wait(k), 0);
  }
}

// True once `pid` sleeps in a system call (state S in /proc), checking every millisecond; false
// after 20 s. The tests below use it where a process has exactly one place it can sleep.
bool sleeps_soon(pid_t pid) {
  for (int i = 0; i < 20000; ++i) {
    if (mpp::test::proc_stat(pid).state == 'S') return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

TEST_F(PipeTest, AReaderKilledInsideAMessageDoesNotStopTheOthers) {
  // A reader is killed in the body of a 4 MiB message, holding the end's read lock. The next
  // reader takes the lock over, skips what is left of that message (the dead reader had taken
  // its start), and gets every later message whole.
  Kids kids;
  auto ends = mpp::Pipe<std::vector<char>>();
  auto& a = ends.first;
  auto& b = ends.second;
  auto small = [](int i) { return std::vector<char>(static_cast<std::size_t>(i) * 1000, 'a'); };
  mpp::Event sending, reading;
  pid_t sender = kids.start([&] {
    std::vector<char> big(4u << 20, 'x');
    sending.set();
    b.send(big);
    for (int i = 1; i <= 5; ++i) b.send(small(i));
    return 0;
  });
  ASSERT_TRUE(sending.wait(20s));
  // Nobody reads yet: the sender sleeps once it has filled the socket, in the middle of the frame
  // (the only place it can sleep). Stopped there, it cannot finish it.
  ASSERT_TRUE(sleeps_soon(sender));
  kill(sender, SIGSTOP);
  pid_t first = kids.start([&] {
    reading.set();
    (void)a.recv();  // takes the header and what the socket holds, then waits for the rest
    return 1;
  });
  ASSERT_TRUE(reading.wait(20s));
  ASSERT_TRUE(sleeps_soon(first));  // inside recv(), in the body, holding the read lock
  kill(first, SIGKILL);
  EXPECT_EQ(kids.wait(first), -SIGKILL);
  kill(sender, SIGCONT);
  for (int i = 1; i <= 5; ++i)
    EXPECT_EQ(recv_or_closed(a), std::optional<std::vector<char>>(small(i))) << i;
  EXPECT_EQ(kids.wait(sender), 0);
}

}  // namespace
