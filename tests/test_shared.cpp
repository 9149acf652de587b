// Tests for <mpp/shared.hpp>: Value/Array shared with children and exact under their locks,
// anonymous and named SharedMemory (every bad-argument case, 0600 + owner check, another uid
// refused, ENOSPC at creation, RAII unlink, clean-up after the creator is SIGKILLed), and no
// /dev/shm entry of ours left behind by the suite.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "mpp/pipe.hpp"
#include "mpp/shared.hpp"
#include "sys/fault.hpp"
#include "sys/fd.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

// Every name this suite creates, checked at the end: none may remain in /dev/shm.
std::set<std::string>& created_names() {
  static std::set<std::string> s;
  return s;
}

std::string unique_name(const char* tag) {
  static int n = 0;
  std::string name =
      "mpp-test-" + std::string(tag) + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
  created_names().insert(name);
  return name;
}

bool shm_exists(const std::string& name) {
  struct stat st {};
  return stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

bool gone_within(const std::string& name, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!shm_exists(name)) return true;
    std::this_thread::sleep_for(5ms);
  }
  return !shm_exists(name);
}

// Temporary names exist for a moment inside every create() (also in other test processes that
// ctest runs in parallel): each one seen must go away soon, none may stay.
void expect_no_stale_temporaries() {
  for (const auto& n : mpp::test::shm_entries("mpp-tmp-"))
    EXPECT_TRUE(gone_within(n, 20s)) << "stale temporary /dev/shm/" << n;
}

pid_t spawn(const std::function<int()>& f) { return mpp::test::fork_child(f); }
int reap(pid_t pid) { return mpp::test::reap_child(pid); }

template <class F>
int system_error_code(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

class SharedTest : public ::testing::Test {
 protected:
  void TearDown() override {
    auto z = mpp::test::zombie_children();
    EXPECT_TRUE(z.empty()) << "zombie children left: " << z.size();
  }
  mpp::test::Watchdog watchdog_{std::chrono::seconds(150), "shared test"};
};

// ---- Value -------------------------------------------------------------------------------------

class ValueTotals : public SharedTest, public ::testing::WithParamInterface<int> {};

TEST_P(ValueTotals, LockedCompoundUpdatesAndFetchAddAreExact) {
  const int nproc = GetParam();
  constexpr long kPerProcess = 1'000'000;
  mpp::Value<long> compound(0);
  mpp::Value<long> rmw(0);
  std::vector<pid_t> kids;
  for (int i = 0; i < nproc; ++i) {
    kids.push_back(spawn([&] {
      for (long k = 0; k < kPerProcess; ++k) {
        std::lock_guard g(compound.get_lock());
        compound.set(compound.get() + 1);  // get/set inside the user's own critical section
      }
      for (long k = 0; k < kPerProcess / 10; ++k) (void)rmw.fetch_add(1);
      return 0;
    }));
  }
  for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
  EXPECT_EQ(compound.get(), nproc * kPerProcess);
  EXPECT_EQ(rmw.get(), nproc * kPerProcess / 10);
}

INSTANTIATE_TEST_SUITE_P(Workers, ValueTotals, ::testing::Values(1, 2, 4));

TEST_F(SharedTest, ValueOperationsAndTrivialStructs) {
  mpp::Value<int> v(5);
  EXPECT_EQ(v.fetch_add(3), 5);
  EXPECT_EQ(v.fetch_sub(1), 8);
  EXPECT_EQ(v.fetch_or(0x10), 7);
  EXPECT_EQ(v.fetch_and(0x13), 0x17);
  EXPECT_EQ(v.fetch_xor(0x1), 0x13);
  EXPECT_EQ(v.exchange(-4), 0x12);
  EXPECT_EQ(v.get(), -4);
  mpp::Value<int> def;
  EXPECT_EQ(def.get(), 0);

  struct Point {
    double x;
    double y;
    char tag[3];
  };
  mpp::Value<Point> p(Point{1.5, -2.0, {'a', 'b', 'c'}});
  pid_t kid = spawn([&] {
    Point q = p.get();
    if (q.x != 1.5 || q.tag[2] != 'c') return 1;
    p.set(Point{q.x * 2, q.y * 2, {'x', 'y', 'z'}});
    return 0;
  });
  EXPECT_EQ(reap(kid), 0);
  Point got = p.get();
  EXPECT_EQ(got.x, 3.0);
  EXPECT_EQ(got.y, -4.0);
  EXPECT_EQ(got.tag[0], 'x');
}

TEST_F(SharedTest, ValueGetWaitsForAnotherHoldersCompoundUpdate) {
  mpp::Value<long> v(0);
  mpp::Event inside;
  pid_t kid = spawn([&] {
    std::lock_guard g(v.get_lock());
    v.set(1);
    inside.set();
    std::this_thread::sleep_for(50ms);
    v.set(2);  // the parent must never observe the intermediate 1
    return 0;
  });
  inside.wait();
  EXPECT_EQ(v.get(), 2);
  EXPECT_EQ(reap(kid), 0);
}

// ---- Array -------------------------------------------------------------------------------------

TEST_F(SharedTest, ArrayIsZeroedSharedAndBoundsChecked) {
  for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20}) {
    mpp::Array<std::uint32_t> a(n);
    ASSERT_EQ(a.size(), n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(a[i], 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
    pid_t kid = spawn([&] {
      for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<std::uint32_t>(i * 3 + 1);
      return 0;
    });
    EXPECT_EQ(reap(kid), 0);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(a[i], i * 3 + 1);
    EXPECT_THROW((void)a.at(n), std::out_of_range);
  }
  mpp::Array<double> empty(0);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.begin(), empty.end());
  // Brace-initialization means a length, as the API's only constructor says.
  const std::size_t len = 3;
  mpp::Array<double> braced{len};
  EXPECT_EQ(braced.size(), 3u);
  EXPECT_THROW(mpp::Array<double>(static_cast<std::size_t>(-1) / 4), std::invalid_argument);
}

TEST_F(SharedTest, ArrayUpdatesUnderItsLockAreExact) {
  for (int nproc : {2, 3}) {
    mpp::Array<long> a(4);
    std::vector<pid_t> kids;
    for (int i = 0; i < nproc; ++i) {
      kids.push_back(spawn([&] {
        for (int k = 0; k < 100000; ++k) {
          std::lock_guard g(a.get_lock());
          for (auto& x : a) ++x;
        }
        return 0;
      }));
    }
    for (pid_t k : kids) EXPECT_EQ(reap(k), 0);
    for (long x : a) EXPECT_EQ(x, 100000L * nproc);
  }
}

// ---- SharedMemory: anonymous -------------------------------------------------------------------

TEST_F(SharedTest, AnonymousSharedMemory) {
  EXPECT_THROW(mpp::SharedMemory(0), std::invalid_argument);
  mpp::SharedMemory m(10000);
  EXPECT_EQ(m.size(), 10000u);
  EXPECT_FALSE(m.is_named());
  EXPECT_EQ(m.name(), "");
  EXPECT_THROW(m.unlink(), std::logic_error);
  mpp::SharedMemory copy = m;
  EXPECT_EQ(copy.data(), m.data());
  pid_t kid = spawn([&] {
    std::memcpy(m.data() + 9990, "from child", 10);
    return 0;
  });
  EXPECT_EQ(reap(kid), 0);
  EXPECT_EQ(std::memcmp(copy.data() + 9990, "from child", 10), 0);
}

// ---- SharedMemory: named -----------------------------------------------------------------------

TEST_F(SharedTest, NamedCreateOpenShareBytesWithMode0600) {
  const std::string name = unique_name("rt");
  {
    auto a = mpp::SharedMemory::create(name, 5000);
    EXPECT_TRUE(a.is_named());
    EXPECT_EQ(a.name(), name);
    struct stat st {};
    ASSERT_EQ(stat(("/dev/shm/" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_uid, geteuid());
    EXPECT_GE(st.st_size, 5000);
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(a.data()[i], std::byte{0});
    std::memcpy(a.data(), "hello", 5);
    auto b = mpp::SharedMemory::open("/" + name);  // a leading '/' names the same segment
    EXPECT_EQ(b.size(), 5000u);
    EXPECT_EQ(std::memcmp(b.data(), "hello", 5), 0);
    // A process that is not a descendant attaches by name (here: a child that opens it anew).
    pid_t kid = spawn([&] {
      auto c = mpp::SharedMemory::open(name);
      std::memcpy(c.data() + 100, "child", 5);
      return 0;
    });
    EXPECT_EQ(reap(kid), 0);
    EXPECT_EQ(std::memcmp(a.data() + 100, "child", 5), 0);
    EXPECT_TRUE(shm_exists(name));  // the child's handle going away does not unlink
  }
  EXPECT_FALSE(shm_exists(name)) << "the creator's last handle must unlink the name";
}

TEST_F(SharedTest, GeneratedNamesAreRandomWithOurPrefix) {
  auto a = mpp::SharedMemory::create(100);
  auto b = mpp::SharedMemory::create(100);
  created_names().insert(a.name());
  created_names().insert(b.name());
  for (const auto& n : {a.name(), b.name()}) {
    ASSERT_EQ(n.size(), 4u + 32u) << n;
    EXPECT_EQ(n.substr(0, 4), "mpp-");
    EXPECT_EQ(n.find_first_not_of("0123456789abcdef", 4), std::string::npos) << n;
    EXPECT_TRUE(shm_exists(n));
  }
  EXPECT_NE(a.name(), b.name());
}

TEST_F(SharedTest, BadArgumentsThrowTheirDocumentedErrors) {
  const std::string name = unique_name("bad");
  // size 0
  EXPECT_THROW((void)mpp::SharedMemory::create(name, 0), std::invalid_argument);
  EXPECT_FALSE(shm_exists(name));
  // names with NUL, '/', empty, too long
  EXPECT_THROW((void)mpp::SharedMemory::create(std::string("mpp-a\0b", 7), 10),
               std::invalid_argument);
  EXPECT_THROW((void)mpp::SharedMemory::open(std::string("mpp-a\0b", 7)), std::invalid_argument);
  EXPECT_THROW((void)mpp::SharedMemory::create("a/b", 10), std::invalid_argument);
  EXPECT_THROW((void)mpp::SharedMemory::create("", 10), std::invalid_argument);
  EXPECT_THROW((void)mpp::SharedMemory::create("/", 10), std::invalid_argument);
  EXPECT_THROW((void)mpp::SharedMemory::create("..", 10), std::invalid_argument);
  EXPECT_THROW((void)mpp::SharedMemory::create(std::string(300, 'x'), 10), std::invalid_argument);
  // open missing -> ENOENT
  EXPECT_EQ(system_error_code([&] { (void)mpp::SharedMemory::open(name); }), ENOENT);
  // create existing -> EEXIST, and the existing segment is untouched
  auto a = mpp::SharedMemory::create(name, 64);
  a.data()[0] = std::byte{42};
  EXPECT_EQ(system_error_code([&] { (void)mpp::SharedMemory::create(name, 128); }), EEXIST);
  EXPECT_EQ(mpp::SharedMemory::open(name).data()[0], std::byte{42});
  // double unlink -> ENOENT; the name is gone after the first
  a.unlink();
  EXPECT_FALSE(shm_exists(name));
  EXPECT_EQ(system_error_code([&] { a.unlink(); }), ENOENT);
  EXPECT_EQ(system_error_code([&] { (void)mpp::SharedMemory::open(name); }), ENOENT);
  // The mapping outlives the name.
  EXPECT_EQ(a.data()[0], std::byte{42});
}

TEST_F(SharedTest, UnlinkNeverRemovesANewerSegmentWithTheSameName) {
  const std::string name = unique_name("reuse");
  auto old_seg = mpp::SharedMemory::create(name, 64);
  auto other = mpp::SharedMemory::open(name);
  other.unlink();  // any process may unlink
  auto new_seg = mpp::SharedMemory::create(name, 64);
  EXPECT_EQ(system_error_code([&] { old_seg.unlink(); }), ENOENT);
  EXPECT_TRUE(shm_exists(name));
  new_seg.data()[1] = std::byte{7};
  EXPECT_EQ(mpp::SharedMemory::open(name).data()[1], std::byte{7});
}

TEST_F(SharedTest, AnotherUserCannotOpenASegment) {
  const std::string name = unique_name("uid");
  auto seg = mpp::SharedMemory::create(name, 4096);
  if (geteuid() != 0) GTEST_SKIP() << "dropping privileges needs root";
  pid_t kid = spawn([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 2;
    int code = system_error_code([&] { (void)mpp::SharedMemory::open(name); });
    return code == EACCES ? 0 : 3;
  });
  EXPECT_EQ(reap(kid), 0) << "uid 65534 could open a 0600 segment of ours (or got another error)";
}

TEST_F(SharedTest, OpenRefusesASegmentOwnedByAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "planting a foreign-owned file needs root";
  const std::string name = unique_name("planted");
  const std::string path = "/dev/shm/" + name;
  int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0666);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  ASSERT_EQ(fchown(fd, 65534, 65534), 0);
  ::close(fd);
  // Root could open it; mpp refuses because the owner is not us.
  EXPECT_EQ(system_error_code([&] { (void)mpp::SharedMemory::open(name); }), EACCES);
  ::unlink(path.c_str());
}

TEST_F(SharedTest, FullDevShmIsENOSPCAtCreationNotSIGBUSLater) {
  struct statvfs vfs {};
  ASSERT_EQ(statvfs("/dev/shm", &vfs), 0);
  const std::size_t too_big = static_cast<std::size_t>(vfs.f_bavail) * vfs.f_frsize + (1u << 30);
  const std::string name = unique_name("nospc");
  EXPECT_EQ(system_error_code([&] { (void)mpp::SharedMemory::create(name, too_big); }), ENOSPC);
  EXPECT_FALSE(shm_exists(name));
  expect_no_stale_temporaries();
}

TEST_F(SharedTest, NameIsRemovedAfterTheCreatorIsKilled) {
  for (bool with_child : {false, true}) {
    const std::string name = unique_name("killed");
    mpp::Event created, child_done;
    pid_t creator = spawn([&] {
      auto seg = mpp::SharedMemory::create(name, 1 << 16);
      if (with_child) {
        // A child forked after create() keeps the name alive until it ends too.
        pid_t gc = mpp::sys::fork_or_throw("fork");
        if (gc == 0) {
          child_done.wait();
          _exit(0);
        }
      }
      created.set();
      pause();
      return 0;
    });
    created.wait();
    ASSERT_TRUE(shm_exists(name));
    auto reader = mpp::SharedMemory::open(name);  // a user that is not a descendant
    kill(creator, SIGKILL);
    EXPECT_EQ(reap(creator), -SIGKILL);
    if (with_child) {
      std::this_thread::sleep_for(50ms);
      EXPECT_TRUE(shm_exists(name)) << "removed while a child of the creator may still use it";
      child_done.set();
    }
    EXPECT_TRUE(gone_within(name, 20s)) << "leaked /dev/shm/" << name;
    reader.data()[0] = std::byte{1};  // mappings stay valid after the name is gone
  }
}

TEST_F(SharedTest, GuardianHoldsNoOtherDescriptors) {
  // The guardian is forked while this pipe is open; if it kept a copy of the write end, the
  // reader below would never see EOF.
  auto p = mpp::sys::make_pipe();
  const std::string name = unique_name("fds");
  auto seg = mpp::SharedMemory::create(name, 64);
  p.write.reset();
  char c;
  ASSERT_TRUE(mpp::sys::poll_readable(p.read.get(), std::chrono::seconds(20)));
  EXPECT_EQ(::read(p.read.get(), &c, 1), 0);
}

TEST_F(SharedTest, NoDescriptorsLeakedByCreateOpenUnlink) {
  const int before = mpp::test::open_fd_count();
  {
    auto a = mpp::SharedMemory::create(unique_name("fdleak"), 64);
    auto b = mpp::SharedMemory::open(a.name());
    a.unlink();
  }
  EXPECT_EQ(mpp::test::open_fd_count(), before);
}

TEST_F(SharedTest, MappingFailuresAreSystemErrorsWithTheirErrno) {
  {
    mpp::sys::fault::Scoped f(mpp::sys::fault::Op::mmap, ENOMEM);
    EXPECT_EQ(system_error_code([] { mpp::Value<int> v(1); }), ENOMEM);
  }
  {
    mpp::sys::fault::Scoped f(mpp::sys::fault::Op::mmap, ENOMEM);
    EXPECT_EQ(system_error_code([] { mpp::Array<int> a(10); }), ENOMEM);
  }
  {
    mpp::sys::fault::Scoped f(mpp::sys::fault::Op::mmap, ENOMEM);
    EXPECT_EQ(system_error_code([] { mpp::SharedMemory m(10); }), ENOMEM);
  }
  {
    // A named segment whose mapping fails leaves no name behind.
    const std::string name = unique_name("nomap");
    mpp::sys::fault::Scoped f(mpp::sys::fault::Op::mmap, ENOMEM);
    EXPECT_EQ(system_error_code([&] { (void)mpp::SharedMemory::create(name, 64); }), ENOMEM);
    EXPECT_FALSE(shm_exists(name));
  }
  {
    mpp::sys::fault::Scoped f(mpp::sys::fault::Op::mmap, ENOMEM);
    EXPECT_EQ(system_error_code([] { (void)mpp::Pipe<int>(); }), ENOMEM);
  }
}

// Runs after every test of this binary: nothing of ours may remain in /dev/shm.
class NoLeftovers : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& n : created_names())
      EXPECT_TRUE(gone_within(n, 20s)) << "left in /dev/shm: " << n;
    expect_no_stale_temporaries();
  }
};
const auto* const kNoLeftovers = ::testing::AddGlobalTestEnvironment(new NoLeftovers);

}  // namespace
