// mpp_chaos: the chaos and leak harness (issue 9). See docs/chaos.md.
//
// A seeded list of cases; each case runs in its own "case process" (a fork of this harness, in its
// own process group) that owns the queue/pool/lock under test, so that a fault in any role,
// including the owner itself, is observed from outside. The harness is a child subreaper: whatever
// a dead case process leaves behind is reparented here, where it is counted as an orphan if it
// outlives a grace period. Every case is fully determined by (base seed, mode, case index): a
// failure prints the command line that replays exactly that case.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <random>
#include <ranges>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mpp/mpp.hpp"
#include "sys/failpoint.hpp"
#include "test_util.hpp"

namespace {

namespace fp = mpp::detail::failpoint;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kHangLimit = 30s;     // a case running longer is a hang
constexpr auto kOrphanGrace = 2s;    // descendants of a dead case process must be gone by then
constexpr auto kRecoveryLimit = 1s;  // a task hit by a fault must end within this of the fault
constexpr std::uint64_t kPayloadSeed = 0x5eed'c4a0'5eedULL;

std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The bytes of item `id`: its length and content both follow from the id, so a consumer can tell
// a torn or foreign item from a whole one without any side channel. One in 64 items is large
// (8-24 KiB) so that copies take long enough for a kill to land inside them.
std::string payload_of(std::uint64_t id) {
  const std::uint64_t h = mix(id ^ kPayloadSeed);
  const std::size_t len = h % 64 == 0 ? 8000 + h % 16000 : h % 300;
  std::string s(len, '\0');
  std::uint64_t x = h;
  for (std::size_t i = 0; i < len; ++i) {
    if (i % 8 == 0) x = mix(x + i);
    s[i] = static_cast<char>(x >> (8 * (i % 8)));
  }
  return s;
}

void busy_for(std::chrono::microseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
  }
}

// A pool task: a stateless function (persistent workers) that works 100-300 us, so that random
// kills land inside tasks.
std::string pool_task(std::uint64_t x) {
  busy_for(std::chrono::microseconds(100 + x % 200));
  return payload_of(x);
}
// A task whose result (~150 KiB) is larger than a worker's 128 KiB result ring: it crosses in
// pieces, so a worker can die with its result half-written.
constexpr std::size_t kBigResult = 150 * 1024;
std::string big_task(std::uint64_t x) {
  std::string s = payload_of(x) + "|";
  s.reserve(kBigResult);
  while (s.size() < kBigResult) s += static_cast<char>('a' + (s.size() + x) % 26);
  return s;
}
std::string big_expected(std::uint64_t x) { return big_task(x); }
std::uint64_t light_task(std::uint64_t x) { return mix(x); }

template <class T>
T* shared_array(std::size_t n) {
  void* p = ::mmap(nullptr, std::max<std::size_t>(1, n) * sizeof(T), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::abort();
  }
  return new (p) T[std::max<std::size_t>(1, n)]();
}
template <class T>
void free_shared(T* p, std::size_t n) {
  ::munmap(p, std::max<std::size_t>(1, n) * sizeof(T));
}

long rss_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long v = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) v = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return v;
}

// The killer thread runs while the pool forks replacement workers, so everything it calls must be
// free of allocation (and of any other lock): a fork copies a lock held by another thread in its
// locked state, and the child would wait forever on it. glibc's malloc is fork-safe, but the
// sanitizer allocators of this toolchain are not: an allocating killer thread made ASan-built pool
// workers hang at birth. Hence these raw /proc readers with stack buffers.
bool read_stat(pid_t pid, char& state, pid_t& ppid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* rp = std::strrchr(buf, ')');
  if (rp == nullptr || rp[1] == '\0' || rp[2] == '\0') return false;
  state = rp[2];
  ppid = static_cast<pid_t>(std::strtol(rp + 4, nullptr, 10));
  return true;
}

bool is_our_live_child(pid_t pid) {
  char state = '?';
  pid_t ppid = 0;
  return read_stat(pid, state, ppid) && ppid == ::getpid() && state != 'Z' && state != 'X';
}

bool gone(pid_t pid) {
  char state = '?';
  pid_t ppid = 0;
  return !read_stat(pid, state, ppid) || state == 'Z' || state == 'X';
}

constexpr std::size_t kMaxVictims = 256;

// Live children of this process, into `out` (at most kMaxVictims). No allocation.
std::size_t live_children_raw(pid_t* out) {
  const int fd = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t n = 0;
  alignas(8) char buf[8192];
  for (;;) {
    const ssize_t k = ::getdents64(fd, buf, sizeof buf);
    if (k <= 0) break;
    for (ssize_t off = 0; off < k;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      char* end = nullptr;
      const long pid = std::strtol(d->d_name, &end, 10);
      if (*end != '\0' || pid <= 0) continue;
      if (n < kMaxVictims && is_our_live_child(static_cast<pid_t>(pid))) {
        out[n++] = static_cast<pid_t>(pid);
      }
    }
  }
  ::close(fd);
  return n;
}

// One of the live children among `pids`, or -1. No allocation.
pid_t pick_live(const pid_t* pids, std::size_t count, std::mt19937_64& rng) {
  pid_t live[kMaxVictims];
  std::size_t n = 0;
  for (std::size_t i = 0; i < count && n < kMaxVictims; ++i) {
    if (is_our_live_child(pids[i])) live[n++] = pids[i];
  }
  if (n == 0) return -1;
  return live[std::uniform_int_distribution<std::size_t>(0, n - 1)(rng)];
}

// ---- cases ---------------------------------------------------------------------------------

enum class Kind { queue, pool_map, pool_imap, pool_async, locks, first_lock, load };
enum class Role { random, producer, consumer, worker, parent, child, cancel };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::queue:
      return "queue";
    case Kind::pool_map:
      return "pool.map";
    case Kind::pool_imap:
      return "pool.imap";
    case Kind::pool_async:
      return "pool.apply_async";
    case Kind::locks:
      return "locks";
    case Kind::first_lock:
      return "first-lock";
    case Kind::load:
      return "load";
  }
  return "?";
}
const char* role_name(Role r) {
  switch (r) {
    case Role::random:
      return "random-sigkill";
    case Role::producer:
      return "producer";
    case Role::consumer:
      return "consumer";
    case Role::worker:
      return "worker";
    case Role::parent:
      return "parent";
    case Role::child:
      return "child";
    case Role::cancel:
      return "cancel";
  }
  return "?";
}

struct Case {
  Kind kind = Kind::queue;
  Role role = Role::random;
  const char* fp = nullptr;   // fail point armed in the role's processes (nullptr: none)
  const char* fp2 = nullptr;  // armed in the role's other processes (double-fault cases)
  int nth = 1;
  fp::Action action = fp::Action::kill;
  int kills = 0;             // random SIGKILLs of role processes while the workload runs
  bool kill_parent = false;  // the harness SIGKILLs the case process itself at a random time
  bool daemon = true;        // queue/lock children: daemon processes
  unsigned a = 2, b = 2;     // producers x consumers, or workers
  std::uint64_t n = 200;     // items per producer, tasks, iterations per process...
  std::size_t capacity = 8 << 20;
  std::size_t chunksize = 1;
  int load = 0;         // Kind::load: which load run
  int window_ms = 100;  // random kills land within this many ms of the start
  int pace_us = 0;      // queue producers pause this long after each put
  bool big = false;     // pool cases: tasks with results larger than the result ring
  std::uint64_t seed = 0;
};

// Filled by the case process, read by the harness. Lives in a MAP_SHARED page made per case.
struct CaseResult {
  std::atomic<std::uint64_t> faults{0}, tasks{0}, items{0}, lost{0}, dup{0}, torn{0}, late{0},
      unnamed{0}, named{0}, in_hand{0}, leaked_fds{0}, leaked_procs{0}, repaired{0};
  std::atomic<std::uint64_t> stuck{0};  // first-lock cases: fresh programs with a child stuck
  std::atomic<std::uint64_t> max_recovery_us{0};
  std::atomic<int> finished{0};
  std::atomic<std::int64_t> progress{-1};  // last position/result the case saw (hang reports)
  char note[1024] = {};
};

CaseResult* g_r = nullptr;
// --sabotage: the harness itself drops one delivered item / corrupts one result, to show that its
// checks catch a loss (the ctest test chaos_detects_sabotage expects the run to fail).
bool g_sabotage = false;
std::mutex g_note_mutex;

void note(const char* fmt, ...) {
  std::lock_guard lock(g_note_mutex);
  const std::size_t used = std::strlen(g_r->note);
  if (used + 2 >= sizeof g_r->note) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_r->note + used, sizeof g_r->note - used, fmt, ap);
  va_end(ap);
  const std::size_t now = std::strlen(g_r->note);
  if (now + 2 < sizeof g_r->note) std::strcat(g_r->note, "; ");
}

void record_recovery(Clock::duration d) {
  const auto us = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
  std::uint64_t cur = g_r->max_recovery_us.load();
  while (us > cur && !g_r->max_recovery_us.compare_exchange_weak(cur, us)) {
  }
  if (d > kRecoveryLimit) {
    g_r->late.fetch_add(1);
    note("a task ended %" PRIu64 " ms after its fault", us / 1000);
  }
}

// Exit status of a role process: 0 fine, a fault we injected, or a failure.
void account_exit(const char* who, const mpp::Process& p) {
  const auto code = p.exitcode();
  if (!code) {
    note("%s %d still running after join", who, p.pid());
    g_r->unnamed.fetch_add(1);
    return;
  }
  if (*code == 0) return;
  if (*code == -SIGKILL || *code == 77) {
    g_r->faults.fetch_add(1);
    return;
  }
  g_r->unnamed.fetch_add(1);
  const auto err = p.error();
  note("%s %d exited with %d%s%s", who, p.pid(), *code, err ? ": " : "", err ? err->what() : "");
}

// Random SIGKILLs of role processes, from a thread of the case process. `pick` chooses a victim
// among live candidates (or -1); every victim is checked to be a live child of this process right
// before the kill, so a pid reused by an unrelated process is never touched.
class Killer {
 public:
  using Pick = std::function<pid_t(std::mt19937_64&)>;
  using After = std::function<void(pid_t)>;
  Killer(int kills, std::chrono::milliseconds window, std::uint64_t seed, Pick pick,
         After after = {})
      : rng_(seed) {
    if (kills <= 0) return;
    std::vector<std::chrono::milliseconds> at;
    for (int i = 0; i < kills; ++i) {
      at.emplace_back(std::uniform_int_distribution<long>(5, window.count())(rng_));
    }
    std::sort(at.begin(), at.end());
    thread_ = std::thread([this, at, pick = std::move(pick), after = std::move(after)] {
      const auto t0 = Clock::now();
      for (auto when : at) {
        while (!stop_.load() && Clock::now() - t0 < when) std::this_thread::sleep_for(1ms);
        if (stop_.load()) return;
        const pid_t victim = pick(rng_);
        if (victim <= 0 || !is_our_live_child(victim)) continue;
        const int slot = nkilled_.load();
        if (slot < kMaxKills) {
          killed_pid_[slot] = victim;
          killed_time_[slot] = Clock::now();
          nkilled_.store(slot + 1);  // publishes the slot to killed_at()
        }
        ::kill(victim, SIGKILL);
        ++kills_;
        note("killed %d at +%lld ms", victim,
             static_cast<long long>(
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
        if (after) after(victim);
      }
    });
  }
  ~Killer() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::optional<Clock::time_point> killed_at(pid_t pid) const {
    for (int i = nkilled_.load() - 1; i >= 0; --i) {
      if (killed_pid_[i] == pid) return killed_time_[i];
    }
    return std::nullopt;
  }
  int kills() const { return kills_.load(); }

 private:
  std::mt19937_64 rng_;
  std::atomic<bool> stop_{false};
  std::atomic<int> kills_{0};
  // Fixed arrays, not a map: the killer thread must not allocate (see read_stat()).
  static constexpr int kMaxKills = 64;
  pid_t killed_pid_[kMaxKills] = {};
  Clock::time_point killed_time_[kMaxKills] = {};
  std::atomic<int> nkilled_{0};
  std::thread thread_;
};

// ---- queue: P producers x C consumers, checksummed items ----------------------------------

using Item = std::pair<std::uint64_t, std::string>;

void run_queue(const Case& c) {
  const unsigned P = c.a, C = c.b;
  const std::uint64_t per = c.n, N = P * per;
  // put_state: 1 = put() entered, 2 = put() returned. seen: deliveries. hand: 1 = in get(),
  // 2 = get() returned, not yet recorded (a consumer killed there holds an item: the documented
  // "once get() returned, the item belongs to that process").
  auto* put_state = shared_array<std::atomic<std::uint8_t>>(N);
  auto* seen = shared_array<std::atomic<std::uint32_t>>(N);
  auto* hand = shared_array<std::atomic<std::uint32_t>>(C);
  {
    mpp::Queue<Item> q(mpp::QueueOptions{.maxsize = 0, .capacity_bytes = c.capacity});
    auto record = [&](const Item& it) {
      if (it.first >= N || it.second != payload_of(it.first)) {
        g_r->torn.fetch_add(1);
        return;
      }
      seen[it.first].fetch_add(1);
    };
    auto producer = [&](unsigned p) {
      const bool many = p % 2 == 1 || (p == 0 && c.role == Role::parent && c.fp != nullptr &&
                                       std::strcmp(c.fp, "queue.put_many.before_publish") == 0);
      std::vector<Item> batch;
      for (std::uint64_t k = 0; k < per;) {
        if (many) {
          batch.clear();
          const std::uint64_t m = std::min<std::uint64_t>(16, per - k);
          for (std::uint64_t j = 0; j < m; ++j) {
            const std::uint64_t id = p * per + k + j;
            put_state[id].store(1);
            batch.emplace_back(id, payload_of(id));
          }
          (void)q.put_many(batch);
          for (std::uint64_t j = 0; j < m; ++j) put_state[p * per + k + j].store(2);
          k += m;
        } else {
          const std::uint64_t id = p * per + k;
          put_state[id].store(1);
          q.put(Item{id, payload_of(id)});
          put_state[id].store(2);
          ++k;
        }
        if (c.pace_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(c.pace_us));
      }
    };
    auto consumer = [&](unsigned ci) {
      for (;;) {
        hand[ci].store(1);
        Item it;
        try {
          it = q.get();
        } catch (const mpp::QueueClosed&) {
          hand[ci].store(0);
          return;
        }
        hand[ci].store(2);
        record(it);
        hand[ci].store(0);
      }
    };
    mpp::ProcessOptions po;
    po.daemon = c.daemon;
    std::vector<std::unique_ptr<mpp::Process>> prods, cons;
    auto arm_for = [&](Role r, std::size_t i) {
      fp::disarm();
      if (c.role != r || c.fp == nullptr) return;
      const bool second = i != 0 && c.fp2 != nullptr;  // a process takes the lock over once
      fp::arm(second ? c.fp2 : c.fp, second ? 1 : c.nth, c.action);
    };
    // The parent's own share: producer 0 runs in the case process itself when the parent is the
    // role under test (it dies in put()/get() with its children running).
    const unsigned first_child_producer = c.role == Role::parent ? 1 : 0;
    for (unsigned i = 0; i < C; ++i) {
      arm_for(c.role == Role::child ? Role::child : Role::consumer, i);
      cons.push_back(std::make_unique<mpp::Process>(po, consumer, i));
      cons.back()->start();
    }
    for (unsigned p = first_child_producer; p < P; ++p) {
      arm_for(Role::producer, p);
      prods.push_back(std::make_unique<mpp::Process>(po, producer, p));
      prods.back()->start();
    }
    fp::disarm();
    std::vector<pid_t> cpids;
    for (auto& x : cons) cpids.push_back(x->pid());
    std::vector<pid_t> ppids;
    for (auto& x : prods) ppids.push_back(x->pid());
    std::atomic<std::uint64_t> allowance{0};
    Killer killer(
        c.kills, std::chrono::milliseconds(c.window_ms), c.seed ^ 0x4b11,
        [&](std::mt19937_64& rng) -> pid_t {
          // Never the last live consumer: producers would wait for room forever, by design.
          std::size_t live_cons = 0;
          for (pid_t p : cpids) live_cons += is_our_live_child(p) ? 1 : 0;
          pid_t cand[kMaxVictims];
          std::size_t n = 0;
          for (pid_t p : ppids) {
            if (n < kMaxVictims) cand[n++] = p;
          }
          if (live_cons > 1) {
            for (pid_t p : cpids) {
              if (n < kMaxVictims) cand[n++] = p;
            }
          }
          return pick_live(cand, n, rng);
        },
        [&](pid_t victim) {
          for (std::size_t i = 0; i < cpids.size(); ++i) {
            if (cpids[i] != victim) continue;
            for (auto until = Clock::now() + 2s; !gone(victim) && Clock::now() < until;) {
              std::this_thread::sleep_for(1ms);
            }
            if (hand[i].load() != 0) allowance.fetch_add(1);
          }
        });
    if (c.role == Role::parent) {
      if (c.fp != nullptr) fp::arm(c.fp, c.nth, c.action);
      producer(0);
    }
    for (auto& p : prods) p->join();
    killer.stop();
    q.close();
    for (auto& x : cons) x->join();
    // Items left: taken by the case process itself.
    std::uint64_t left = 0;
    try {
      while (auto it = q.try_get()) {
        ++left;
        record(*it);
      }
    } catch (const mpp::QueueClosed&) {
    }
    fp::disarm();
    for (auto& p : prods) account_exit("producer", *p);
    for (auto& x : cons) account_exit("consumer", *x);
    std::uint64_t puts = 0, gets = 0, missing = 0;
    bool sabotaged = !g_sabotage;
    for (std::uint64_t id = 0; id < N; ++id) {
      auto s = seen[id].load();
      if (!sabotaged && s == 1 && put_state[id].load() == 2) {
        s = 0;  // pretend this delivered item never arrived
        sabotaged = true;
      }
      const auto st = put_state[id].load();
      gets += s;
      if (st == 2 || (st == 1 && s > 0)) ++puts;  // an interrupted put() may or may not land
      if (s > 1) {
        g_r->dup.fetch_add(s - 1);
        note("item %" PRIu64 " delivered %u times", id, s);
      }
      if (st == 0 && s > 0) {
        g_r->torn.fetch_add(1);
        note("item %" PRIu64 " delivered but never put", id);
      }
      if (st == 2 && s == 0) ++missing;
    }
    const std::uint64_t allowed = std::min<std::uint64_t>(missing, allowance.load());
    g_r->in_hand.fetch_add(allowed);
    if (missing > allowed) {
      g_r->lost.fetch_add(missing - allowed);
      note("%" PRIu64 " items put but never delivered (puts %" PRIu64 ", gets %" PRIu64
           ", left %" PRIu64 ")",
           missing - allowed, puts, gets - left, left);
    }
    g_r->items.fetch_add(N);
  }
  free_shared(put_state, N);
  free_shared(seen, N);
  free_shared(hand, C);
}

// ---- pool: map / imap / apply_async --------------------------------------------------------

std::atomic<std::uint64_t>* g_incarnations = nullptr;  // workers that reached their initializer

std::unique_ptr<mpp::Pool> make_pool(const Case& c) {
  mpp::PoolOptions o;
  o.processes = c.a;
  o.initializer = [] { g_incarnations->fetch_add(1); };
  if (c.role == Role::worker && c.fp != nullptr) fp::arm(c.fp, c.nth, c.action);
  // Workers forked by the constructor inherit the arming; replacements (forked later) do not.
  auto pool = std::make_unique<mpp::Pool>(o);
  fp::disarm();
  if (c.role == Role::parent && c.fp != nullptr) fp::arm(c.fp, c.nth, c.action);
  return pool;
}

Killer::Pick random_child() {
  return [](std::mt19937_64& rng) -> pid_t {
    pid_t kids[kMaxVictims];
    const std::size_t n = live_children_raw(kids);
    return pick_live(kids, n, rng);
  };
}

// `timed`: the error surfaced as soon as the task ended (apply_async, imap), so the time from the
// fault (the kill, or for a fail point the submission: an upper bound) to now is the recovery
// time. map reports its first error only after all inputs finished, so it is not timed.
void count_error(std::exception_ptr e, Killer* killer, Clock::time_point since,
                 Clock::time_point now, bool timed = true) {
  try {
    std::rethrow_exception(e);
  } catch (const mpp::WorkerLost& w) {
    g_r->named.fetch_add(1);
    note("task %lld: WorkerLost (worker %d)", static_cast<long long>(w.task_index()), w.pid());
    if (timed) {
      auto at = killer != nullptr ? killer->killed_at(w.pid()) : std::nullopt;
      record_recovery(now - (at ? *at : since));
    }
  } catch (const mpp::Error&) {
    g_r->named.fetch_add(1);
    if (timed) record_recovery(now - since);
  } catch (const std::exception& x) {
    g_r->unnamed.fetch_add(1);
    note("unnamed error: %s", x.what());
  }
}

void check_result(std::uint64_t x, const std::string& v, bool big) {
  if (v != (big ? big_expected(x) : payload_of(x)) || (g_sabotage && x == 7)) {
    g_r->torn.fetch_add(1);
    note("task %" PRIu64 ": wrong or torn result", x);
  }
}

void run_pool(const Case& c) {
  g_incarnations = shared_array<std::atomic<std::uint64_t>>(1);
  auto pool = make_pool(c);
  const std::uint64_t n = c.n;
  auto* task = c.big ? big_task : pool_task;
  Killer killer(c.kills, std::chrono::milliseconds(c.window_ms), c.seed ^ 0x7007, random_child());
  const auto t0 = Clock::now();
  const auto inputs = std::views::iota(std::uint64_t{0}, n);
  if (c.kind == Kind::pool_map) {
    try {
      auto r = pool->map(task, inputs, c.chunksize);
      if (r.size() != n) {
        g_r->lost.fetch_add(n > r.size() ? n - r.size() : 0);
        note("map returned %zu results for %" PRIu64 " inputs", r.size(), n);
      }
      for (std::uint64_t i = 0; i < std::min<std::uint64_t>(n, r.size()); ++i)
        check_result(i, r[i], c.big);
    } catch (...) {
      // map reports the first failure after all inputs completed or were abandoned.
      count_error(std::current_exception(), &killer, t0, Clock::now(), false);
    }
  } else if (c.kind == Kind::pool_imap) {
    std::uint64_t pos = 0;
    auto range = pool->imap(task, inputs, c.chunksize);
    for (auto it = range.begin(); it != range.end(); ++it, ++pos) {
      g_r->progress.store(static_cast<std::int64_t>(pos));
      try {
        check_result(pos, *it, c.big);
      } catch (...) {
        count_error(std::current_exception(), &killer, t0, Clock::now());
      }
    }
    if (pos != n) {
      g_r->lost.fetch_add(n > pos ? n - pos : 0);
      g_r->dup.fetch_add(pos > n ? pos - n : 0);
      note("imap yielded %" PRIu64 " positions for %" PRIu64 " inputs", pos, n);
    }
  } else {
    std::vector<mpp::AsyncResult<std::string>> rs;
    std::vector<Clock::time_point> submitted;
    for (std::uint64_t i = 0; i < n; ++i) {
      rs.push_back(pool->apply_async(task, i));
      submitted.push_back(Clock::now());
    }
    std::vector<bool> done(n, false);
    std::uint64_t left = n;
    while (left > 0) {
      for (std::uint64_t i = 0; i < n; ++i) {
        if (done[i] || !rs[i].ready()) continue;
        done[i] = true;
        --left;
        g_r->progress.store(static_cast<std::int64_t>(n - left));
        try {
          check_result(i, rs[i].get(), c.big);
        } catch (...) {
          count_error(std::current_exception(), &killer, submitted[i], Clock::now());
        }
      }
      if (left > 0) std::this_thread::sleep_for(200us);
    }
  }
  killer.stop();
  fp::disarm();
  pool->close();
  pool->join();
  pool.reset();
  // Every worker beyond the first c.a was a replacement for one that died (no maxtasksperchild).
  // Workers killed at pool.worker.before_init never reach the initializer: each of the c.a
  // armed ones died there (the point is passed once per worker).
  std::uint64_t started = g_incarnations->load();
  if (c.role == Role::worker && c.fp != nullptr &&
      std::strcmp(c.fp, "pool.worker.before_init") == 0) {
    started += c.a;
  }
  const std::uint64_t replaced = started > c.a ? started - c.a : 0;
  g_r->faults.fetch_add(c.role == Role::random ? static_cast<std::uint64_t>(killer.kills())
                                               : replaced);
  g_r->tasks.fetch_add(n);
  free_shared(g_incarnations, 1);
  g_incarnations = nullptr;
}

// ---- pool: random cancels during map / imap / apply_async -----------------------------------
//
// The fault is AsyncResult::cancel() / ImapRange::cancel() (or an imap range dropped early) at
// seeded times, while a second call shares the pool. A cancel that returned true must make get()
// (or the imap's next position) throw CancelledError; one that returned false leaves a complete,
// correct outcome. Every call that was not cancelled must deliver every input exactly once,
// correct and without any error (a cancel never fails another call's task). The workers a cancel
// stopped are counted as `cancels` in Pool::stats(), never as crashes or timeouts.

std::atomic<std::uint32_t>* g_runs = nullptr;  // times each input ran to its end (workers too)

std::string counted_task(std::uint64_t x) {
  std::string s = pool_task(x);
  g_runs[x].fetch_add(1);
  return s;
}

// A call that was not cancelled: every result there, correct, nothing failed.
void check_whole(const char* what, std::uint64_t first, std::uint64_t n,
                 const std::vector<std::string>& r) {
  if (r.size() != n) {
    g_r->lost.fetch_add(n > r.size() ? n - r.size() : 0);
    note("%s returned %zu results for %" PRIu64 " inputs", what, r.size(), n);
  }
  for (std::uint64_t i = 0; i < std::min<std::uint64_t>(n, r.size()); ++i) {
    check_result(first + i, r[i], false);
  }
}

void failed_uncancelled(const char* what, std::exception_ptr e) {
  g_r->lost.fetch_add(1);
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    note("%s, not cancelled, failed: %s", what, x.what());
  }
}

// get() of a call whose cancel() returned true: CancelledError, at once.
template <class Result>
void expect_cancelled(const char* what, Result& r, Clock::time_point cancelled_at) {
  try {
    (void)r.get();
    g_r->unnamed.fetch_add(1);
    note("%s: cancel() returned true but get() returned a value", what);
  } catch (const mpp::CancelledError&) {
    g_r->named.fetch_add(1);
    record_recovery(Clock::now() - cancelled_at);
  } catch (const std::exception& x) {
    g_r->unnamed.fetch_add(1);
    note("%s: cancelled, but get() threw %s", what, x.what());
  }
}

void run_pool_cancel(const Case& c) {
  const std::uint64_t n = c.n;
  g_runs = shared_array<std::atomic<std::uint32_t>>(2 * n);
  mpp::PoolOptions o;
  o.processes = c.a;
  auto pool = std::make_unique<mpp::Pool>(o);
  std::mt19937_64 rng(c.seed ^ 0xca9ce1);
  std::uint64_t cancelled = 0;
  // The other call, sharing the pool: inputs [n, 2n), never cancelled.
  auto other = pool->map_async(counted_task, std::views::iota(n, 2 * n), c.chunksize);
  const auto t0 = Clock::now();
  const auto window = std::chrono::milliseconds(c.window_ms);
  auto random_time = [&] {
    return t0 +
           std::chrono::milliseconds(std::uniform_int_distribution<long>(0, window.count())(rng));
  };
  if (c.kind == Kind::pool_map) {
    auto a = pool->map_async(counted_task, std::views::iota(std::uint64_t{0}, n), c.chunksize);
    const auto at = random_time();
    while (Clock::now() < at && !a.ready()) std::this_thread::sleep_for(200us);
    const bool yes = a.cancel();
    const auto cancelled_at = Clock::now();
    if (yes) {
      ++cancelled;
      expect_cancelled("map_async", a, cancelled_at);
    } else {
      try {
        check_whole("map_async", 0, n, a.get());
      } catch (...) {
        failed_uncancelled("map_async", std::current_exception());
      }
    }
  } else if (c.kind == Kind::pool_imap) {
    // Cancel at a seeded position (past the end: no cancel); cases with an even `kills` drop the
    // range there instead (visible in the case's description).
    const std::uint64_t stop_at = std::uniform_int_distribution<std::uint64_t>(0, n + n / 4)(rng);
    const bool drop = c.kills % 2 == 0;
    std::uint64_t pos = 0;
    bool was_cancelled = false;
    {
      auto range = pool->imap(counted_task, std::views::iota(std::uint64_t{0}, n), c.chunksize);
      for (auto it = range.begin(); it != range.end(); ++it, ++pos) {
        g_r->progress.store(static_cast<std::int64_t>(pos));
        if (was_cancelled) {
          // The position after cancel(): CancelledError, then the end.
          try {
            (void)*it;
            g_r->unnamed.fetch_add(1);
            note("imap: a value after cancel() at position %" PRIu64, pos);
          } catch (const mpp::CancelledError&) {
            g_r->named.fetch_add(1);
          } catch (const std::exception& x) {
            g_r->unnamed.fetch_add(1);
            note("imap: after cancel(), %s", x.what());
          }
          continue;
        }
        try {
          check_result(pos, *it, false);
        } catch (...) {
          failed_uncancelled("imap position", std::current_exception());
        }
        if (pos == stop_at) {
          if (drop) break;
          was_cancelled = range.cancel();
          if (was_cancelled) {
            ++cancelled;
          } else {
            note("imap: cancel() at position %" PRIu64 " found it complete", pos);
          }
        }
      }
    }
    if (!was_cancelled && !(drop && stop_at < n) && pos != n) {
      g_r->lost.fetch_add(n > pos ? n - pos : 0);
      g_r->dup.fetch_add(pos > n ? pos - n : 0);
      note("imap yielded %" PRIu64 " positions for %" PRIu64 " inputs", pos, n);
    }
    if (was_cancelled && pos != stop_at + 2) {
      g_r->unnamed.fetch_add(1);
      note("imap: cancelled at %" PRIu64 " but the range ended at %" PRIu64, stop_at, pos);
    }
    if (drop && stop_at < n) ++cancelled;  // dropped early: the rest was cancelled
  } else {
    std::vector<mpp::AsyncResult<std::string>> rs;
    for (std::uint64_t i = 0; i < n; ++i) rs.push_back(pool->apply_async(counted_task, i));
    // `kills` of them, picked and timed by the seed.
    std::vector<std::pair<Clock::time_point, std::uint64_t>> plan;
    for (int k = 0; k < c.kills; ++k) {
      plan.emplace_back(random_time(), std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng));
    }
    std::sort(plan.begin(), plan.end());
    std::vector<bool> done(n, false), yes(n, false);
    std::vector<Clock::time_point> when(n);
    std::size_t next = 0;
    std::uint64_t left = n;
    while (left > 0) {
      for (; next < plan.size() && Clock::now() >= plan[next].first; ++next) {
        const std::uint64_t i = plan[next].second;
        if (done[i] || yes[i]) continue;
        yes[i] = rs[i].cancel();
        when[i] = Clock::now();
        if (yes[i]) ++cancelled;
      }
      for (std::uint64_t i = 0; i < n; ++i) {
        if (done[i] || !rs[i].ready()) continue;
        done[i] = true;
        --left;
        g_r->progress.store(static_cast<std::int64_t>(n - left));
        if (yes[i]) {
          expect_cancelled("apply_async", rs[i], when[i]);
          continue;
        }
        try {
          check_result(i, rs[i].get(), false);
        } catch (...) {
          failed_uncancelled("apply_async", std::current_exception());
        }
      }
      if (left > 0) std::this_thread::sleep_for(200us);
    }
  }
  try {
    auto r = other.get();
    if (g_sabotage && !r.empty()) r.pop_back();  // --sabotage: forget one result of this call
    check_whole("the other map_async", n, n, r);
  } catch (...) {
    failed_uncancelled("the other map_async", std::current_exception());
  }
  // Every input of the other call ran (at least once: a chunk a stopped worker had begun runs
  // again, as after a crash).
  for (std::uint64_t i = n; i < 2 * n; ++i) {
    if (g_runs[i].load() == 0) {
      g_r->lost.fetch_add(1);
      note("input %" PRIu64 " of the other call never ran", i);
      break;
    }
  }
  const mpp::PoolStats st = pool->stats();
  std::uint64_t stops = 0, crashes = 0;
  for (const auto& w : st.workers) {
    stops += w.cancels;
    crashes += w.crashes + w.timeouts + w.recycled;
  }
  if (crashes != 0 || st.restarts != stops) {
    g_r->unnamed.fetch_add(1);
    note("stats: %" PRIu64 " restarts, %" PRIu64 " for cancels, %" PRIu64 " for other causes",
         st.restarts, stops, crashes);
  }
  pool->close();
  pool->join();
  pool.reset();
  g_r->faults.fetch_add(cancelled);
  g_r->tasks.fetch_add(2 * n);
  free_shared(g_runs, 2 * n);
  g_runs = nullptr;
}

// ---- locks: a robust Lock guarding a two-word invariant in named shared memory --------------

struct LockState {
  std::atomic<std::uint32_t> inside;
  std::uint64_t a, b;  // b == ~a whenever the lock is free
  std::uint64_t cnt[64];
};

void run_locks(const Case& c, const std::string& shm_name) {
  const unsigned P = std::min(c.a, 64u);
  auto seg = mpp::SharedMemory::create(shm_name, sizeof(LockState));
  auto* st = new (seg.data()) LockState{};
  st->b = ~st->a;
  mpp::Lock lock;
  auto* repaired = shared_array<std::atomic<std::uint64_t>>(1);
  auto* broken = shared_array<std::atomic<std::uint64_t>>(2);
  auto body = [&](unsigned p) {
    for (std::uint64_t k = 0; k < c.n; ++k) {
      lock.acquire();
      if (lock.owner_died()) {
        // The dead holder may have stopped anywhere: cnt[] is the truth, a/b are rebuilt from it.
        repaired[0].fetch_add(1);
        st->inside.store(0);
        std::uint64_t sum = 0;
        for (unsigned i = 0; i < P; ++i) sum += st->cnt[i];
        st->a = sum;
        st->b = ~sum;
      }
      if (st->inside.fetch_add(1) != 0) broken[0].fetch_add(1);  // two holders at once
      if (st->b != ~st->a) broken[1].fetch_add(1);               // left torn without owner_died
      ++st->cnt[p];
      ++st->a;
      busy_for(20us);  // a critical section long enough for kills to land inside
      st->b = ~st->a;
      st->inside.fetch_sub(1);
      lock.release();
    }
  };
  mpp::ProcessOptions po;
  po.daemon = c.daemon;
  std::vector<std::unique_ptr<mpp::Process>> procs;
  for (unsigned p = 0; p < P; ++p) {
    fp::disarm();
    if (c.role == Role::child && c.fp != nullptr) fp::arm(c.fp, c.nth, c.action);
    procs.push_back(std::make_unique<mpp::Process>(po, body, p));
    procs.back()->start();
  }
  fp::disarm();
  {
    std::vector<pid_t> pids;
    for (auto& p : procs) pids.push_back(p->pid());
    Killer killer(c.kills, std::chrono::milliseconds(c.window_ms), c.seed ^ 0x10c4,
                  [&pids](std::mt19937_64& rng) -> pid_t {
                    return pick_live(pids.data(), pids.size(), rng);
                  });
    for (auto& p : procs) p->join();
  }
  for (auto& p : procs) account_exit("lock user", *p);
  lock.acquire();
  if (lock.owner_died()) repaired[0].fetch_add(1);
  std::uint64_t sum = 0;
  for (unsigned i = 0; i < P; ++i) sum += st->cnt[i];
  if (lock.owner_died()) {
    st->a = sum;
    st->b = ~sum;
  }
  if (st->a != sum || st->b != ~st->a) {
    g_r->torn.fetch_add(1);
    note("lock state inconsistent: a=%" PRIu64 " sum=%" PRIu64, st->a, sum);
  }
  lock.release();
  if (broken[0].load() != 0) {
    g_r->dup.fetch_add(broken[0].load());
    note("%" PRIu64 " times two processes held the lock at once", broken[0].load());
  }
  if (broken[1].load() != 0) {
    g_r->torn.fetch_add(broken[1].load());
    note("%" PRIu64 " acquisitions found a torn state without owner_died", broken[1].load());
  }
  g_r->repaired.fetch_add(repaired[0].load());
  g_r->tasks.fetch_add(sum);
  free_shared(repaired, 1);
  free_shared(broken, 2);
  seg.unlink();
}

// ---- first use of mpp in threads while forking ----------------------------------------------
// c.n fresh programs (tests/helpers/lock_first_use.cpp: a new program each time, because what mpp
// sets up on a program's first lock happens once) whose c.a threads take their first Lock, RLock
// and Condition and create their first Queue while the main thread forks c.b Process children
// doing the same; every child must finish. Fresh programs are exec'd, so this case process's own
// earlier use of mpp does not hide a first-use hazard.

void run_first_lock(const Case& c) {
  const std::string path = std::string(MPP_HELPER_DIR) + "/mpp_helper_lock_first_use";
  const std::string threads = std::to_string(c.a), children = std::to_string(c.b);
  for (std::uint64_t k = 0; k < c.n; ++k) {
    g_r->progress.store(static_cast<std::int64_t>(k));
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(path.c_str(), path.c_str(), threads.c_str(), children.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (pid < 0) {
      g_r->unnamed.fetch_add(1);
      note("fork failed");
      return;
    }
    const int code = mpp::test::reap_child(pid);
    g_r->tasks.fetch_add(c.b);
    if (code != 0) {
      g_r->stuck.fetch_add(1);
      note("fresh program %" PRIu64 " ended with %d (2: a child hung)", k, code);
    }
  }
}

// ---- load runs (long mode only) -------------------------------------------------------------

void load_queue(std::uint64_t total, unsigned P, unsigned C) {
  const std::uint64_t per = total / P;
  const std::uint64_t N = per * P;
  auto* seen = shared_array<std::atomic<std::uint8_t>>(N);
  auto* bad = shared_array<std::atomic<std::uint64_t>>(1);
  {
    mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.maxsize = 0, .capacity_bytes = 4 << 20});
    std::vector<std::unique_ptr<mpp::Process>> ps;
    for (unsigned c = 0; c < C; ++c) {
      ps.push_back(std::make_unique<mpp::Process>([&] {
        std::vector<std::uint64_t> out;
        for (;;) {
          out.clear();
          try {
            (void)q.get_many(out, 4096);
          } catch (const mpp::QueueClosed&) {
            return;
          }
          for (auto v : out) {
            const std::uint64_t id = v >> 8;
            if (id >= N || (v & 0xff) != (mix(id) & 0xff)) {
              bad[0].fetch_add(1);
              continue;
            }
            seen[id].fetch_add(1, std::memory_order_relaxed);
          }
        }
      }));
      ps.back()->start();
    }
    std::vector<std::unique_ptr<mpp::Process>> prods;
    for (unsigned p = 0; p < P; ++p) {
      prods.push_back(std::make_unique<mpp::Process>([&, p] {
        std::vector<std::uint64_t> batch;
        for (std::uint64_t k = 0; k < per; k += 4096) {
          batch.clear();
          for (std::uint64_t j = k; j < std::min(per, k + 4096); ++j) {
            const std::uint64_t id = p * per + j;
            batch.push_back(id << 8 | (mix(id) & 0xff));
          }
          (void)q.put_many(batch);
        }
      }));
      prods.back()->start();
    }
    for (auto& p : prods) p->join();
    q.close();
    for (auto& p : ps) p->join();
    for (auto& p : prods) account_exit("producer", *p);
    for (auto& p : ps) account_exit("consumer", *p);
  }
  std::uint64_t lost = 0, dup = 0;
  for (std::uint64_t i = 0; i < N; ++i) {
    const auto s = seen[i].load(std::memory_order_relaxed);
    if (s == 0) ++lost;
    if (s > 1) dup += s - 1u;
  }
  g_r->lost.fetch_add(lost);
  g_r->dup.fetch_add(dup);
  g_r->torn.fetch_add(bad[0].load());
  g_r->items.fetch_add(N);
  if (lost + dup + bad[0].load() != 0) {
    note("queue load: lost %" PRIu64 " dup %" PRIu64 " torn %" PRIu64, lost, dup, bad[0].load());
  }
  free_shared(seen, N);
  free_shared(bad, 1);
}

void load_map(std::uint64_t n, unsigned workers) {
  mpp::Pool pool(workers);
  auto r = pool.map(light_task, std::views::iota(std::uint64_t{0}, n));
  std::uint64_t wrong = 0;
  for (std::uint64_t i = 0; i < n; ++i) wrong += r[i] != mix(i) ? 1 : 0;
  if (r.size() != n || wrong != 0) {
    g_r->torn.fetch_add(wrong);
    g_r->lost.fetch_add(n > r.size() ? n - r.size() : 0);
    note("map load: %zu results, %" PRIu64 " wrong", r.size(), wrong);
  }
  g_r->tasks.fetch_add(n);
  pool.close();
  pool.join();
}

void load_imap(std::uint64_t n, unsigned workers) {
  mpp::Pool pool(workers);
  const long rss0 = rss_kib();
  long rss_max = rss0;
  std::uint64_t pos = 0, wrong = 0;
  for (auto v : pool.imap(light_task, std::views::iota(std::uint64_t{0}, n), 8192)) {
    wrong += v != mix(pos) ? 1 : 0;
    if (++pos % (1 << 20) == 0) rss_max = std::max(rss_max, rss_kib());
  }
  if (pos != n || wrong != 0) {
    g_r->torn.fetch_add(wrong);
    g_r->lost.fetch_add(n > pos ? n - pos : 0);
    note("imap load: %" PRIu64 " positions, %" PRIu64 " wrong", pos, wrong);
  }
  std::printf("    imap over %" PRIu64 " items: RSS %ld KiB before, at most %ld KiB during\n", n,
              rss0, rss_max);
  // "Flat memory": the whole output would be 800 MB; a streaming imap stays within a few MiB.
  if (rss_max - rss0 > 64 * 1024) {
    g_r->unnamed.fetch_add(1);
    note("imap load: RSS grew by %ld KiB", rss_max - rss0);
  }
  g_r->tasks.fetch_add(n);
  pool.close();
  pool.join();
}

void run_load(const Case& c) {
  switch (c.load) {
    case 0:
      load_queue(c.n, c.a, c.b);
      break;
    case 1:
      load_map(c.n, c.a);
      break;
    case 2:
      load_map(c.n, c.a);
      break;  // the 200-worker pool
    default:
      load_imap(c.n, c.a);
      break;
  }
}

// ---- the case process -----------------------------------------------------------------------

[[noreturn]] void case_main(const Case& c, const std::string& shm_name) {
  const int fds0 = mpp::test::open_fd_count();
  try {
    switch (c.kind) {
      case Kind::queue:
        run_queue(c);
        break;
      case Kind::pool_map:
      case Kind::pool_imap:
      case Kind::pool_async:
        if (c.role == Role::cancel) {
          run_pool_cancel(c);
        } else {
          run_pool(c);
        }
        break;
      case Kind::locks:
        run_locks(c, shm_name);
        break;
      case Kind::first_lock:
        run_first_lock(c);
        break;
      case Kind::load:
        run_load(c);
        break;
    }
  } catch (const std::exception& e) {
    g_r->unnamed.fetch_add(1);
    note("case threw: %s", e.what());
  }
  fp::disarm();
  // Every mpp object of the case is gone: nothing of ours may still run, be a zombie, or hold fds.
  const auto deadline = Clock::now() + 1s;
  std::vector<pid_t> kids = mpp::test::live_children();
  while (!kids.empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    kids = mpp::test::live_children();
  }
  if (!kids.empty()) {
    g_r->leaked_procs.fetch_add(kids.size());
    note("%zu child processes left after the case (first %d, state %c)", kids.size(), kids[0],
         mpp::test::proc_stat(kids[0]).state);
  }
  const int fds1 = mpp::test::open_fd_count();
  if (fds1 > fds0) {
    g_r->leaked_fds.fetch_add(static_cast<std::uint64_t>(fds1 - fds0));
    note("%d fds leaked", fds1 - fds0);
  }
  g_r->finished.store(1);
  std::fflush(nullptr);
  ::_exit(0);
}

// ---- the harness ----------------------------------------------------------------------------

struct Totals {
  std::uint64_t cases = 0, failed = 0, faults = 0, tasks = 0, items = 0, hangs = 0, lost = 0,
                dup = 0, torn = 0, late = 0, unnamed = 0, named = 0, in_hand = 0, leaked_procs = 0,
                leaked_fds = 0, leaked_segments = 0, orphans = 0, repaired = 0, parent_deaths = 0,
                max_recovery_us = 0;
};

struct Args {
  std::uint64_t seed = 1;
  bool long_run = false;
  bool with_load = false;
  long only_case = -1;
  std::string only;  // run only cases whose description contains this
  unsigned rounds = 1;
  std::string argv0;
};

const char* fp_list_queue_put[] = {"queue.put.after_claim", "queue.put.item_written",
                                   "queue.put_many.before_publish"};
const char* fp_list_queue_get[] = {"queue.get.holding_lock", "queue.get.after_decode"};
const char* fp_list_worker[] = {"pool.worker.before_init", "pool.worker.after_take",
                                "pool.worker.before_result", "pool.worker.result_half_written"};

bool once_per_process(const char* name) {
  return std::strcmp(name, "pool.worker.before_init") == 0 ||
         std::strcmp(name, "process.child.before_target") == 0;
}

std::vector<Case> build_cases(const Args& args) {
  std::vector<Case> out;
  std::mt19937_64 rng(args.seed);
  auto action = [&] { return rng() % 3 == 0 ? fp::Action::exit : fp::Action::kill; };
  auto nth = [&](const char* name, int hi) {
    return once_per_process(name) ? 1 : std::uniform_int_distribution<int>(1, hi)(rng);
  };
  const bool L = args.long_run;
  for (unsigned round = 0; round < args.rounds; ++round) {
    // Every fail point x every role that passes it.
    for (const char* f : fp_list_queue_put) {
      for (Role r : {Role::producer, Role::parent}) {
        Case c;
        c.kind = Kind::queue;
        c.role = r;
        c.fp = f;
        const bool many = std::strcmp(f, "queue.put_many.before_publish") == 0;
        c.nth = nth(f, many ? 8 : 40);
        c.action = action();
        c.a = L ? 4 : 3;
        c.b = 2;
        c.n = L ? 600 : 200;
        out.push_back(c);
      }
    }
    for (const char* f : fp_list_queue_get) {
      for (Role r : {Role::consumer, Role::parent}) {
        Case c;
        c.kind = Kind::queue;
        c.role = r;
        c.fp = f;
        c.nth = r == Role::parent ? 1 : nth(f, 60);
        c.action = action();
        c.a = 2;
        c.b = L ? 4 : 3;
        c.n = L ? 600 : 200;
        out.push_back(c);
      }
    }
    {
      // Double fault: producer 0 dies holding the ring lock; the producer that takes the lock over
      // dies right after the takeover; a third one must recover again.
      Case c;
      c.kind = Kind::queue;
      c.role = Role::producer;
      c.fp = "queue.put.after_claim";
      c.fp2 = "queue.lock.after_takeover";
      c.nth = std::uniform_int_distribution<int>(1, 20)(rng);
      c.a = 4;
      c.b = 2;
      c.n = 200;
      out.push_back(c);
      // With producer lanes, producer 0's lane lock is taken over by close() in the case process
      // (unarmed): the double fault now happens on the consumer side. Consumer 0 dies holding a
      // ring's consumer lock, the consumer that takes it over dies right after the takeover, and
      // the others must recover again.
      c.role = Role::consumer;
      c.fp = "queue.get.holding_lock";
      c.a = 2;
      c.b = 4;
      out.push_back(c);
    }
    for (Kind k : {Kind::queue, Kind::locks}) {
      Case c;
      c.kind = k;
      c.role = Role::child;
      c.fp = "process.child.before_target";
      c.action = action();
      c.a = 3;
      c.b = 3;
      c.n = k == Kind::locks ? 2000 : 200;
      out.push_back(c);
    }
    for (Kind k : {Kind::pool_map, Kind::pool_imap, Kind::pool_async}) {
      for (const char* f : fp_list_worker) {
        Case c;
        c.kind = k;
        c.role = Role::worker;
        c.fp = f;
        const bool half = std::strcmp(f, "pool.worker.result_half_written") == 0;
        c.nth = nth(f, half ? 2 : 6);
        c.action = action();
        c.a = std::uniform_int_distribution<unsigned>(2, L ? 8 : 4)(rng);
        c.n = k == Kind::pool_async ? 120 : (L ? 2000 : 600);
        c.chunksize =
            k == Kind::pool_async ? 1 : std::uniform_int_distribution<std::size_t>(1, 64)(rng);
        // Arm a pass the initial workers are likely to reach (about half their share of chunks).
        const auto chunks_per_worker = c.n / std::max<std::size_t>(1, c.chunksize) / c.a;
        c.nth = std::min<int>(c.nth,
                              static_cast<int>(std::max<std::uint64_t>(1, chunks_per_worker / 2)));
        if (half) {
          c.big = true;  // results larger than the result ring: they cross in pieces
          c.n = 40;
          c.chunksize = 1;
        }
        out.push_back(c);
      }
      Case c;
      c.kind = k;
      c.role = Role::parent;
      c.fp = "pool.parent.after_deliver";
      c.nth = std::uniform_int_distribution<int>(1, 20)(rng);
      c.action = action();
      c.a = 3;
      c.n = k == Kind::pool_async ? 120 : 600;
      c.chunksize = 4;
      out.push_back(c);
    }
    // Random SIGKILLs while real workloads run, at several worker counts.
    const int random_cases = L ? 6 : 2;
    for (int i = 0; i < random_cases; ++i) {
      for (Kind k : {Kind::queue, Kind::pool_map, Kind::pool_imap, Kind::pool_async, Kind::locks}) {
        Case c;
        c.kind = k;
        c.role = Role::random;
        c.kills = std::uniform_int_distribution<int>(1, L ? 5 : 3)(rng);
        c.a = std::uniform_int_distribution<unsigned>(2, L ? 8 : 4)(rng);
        c.b = std::uniform_int_distribution<unsigned>(2, L ? 8 : 4)(rng);
        // Sized to run a few hundred ms on 2 cores; the kills land in the first 150 ms.
        c.n = k == Kind::queue        ? 1500
              : k == Kind::pool_async ? 800
              : k == Kind::locks      ? 3000
                                      : 2000;
        c.pace_us = 50;
        c.window_ms = 150;
        c.capacity = 64 << 10;  // a small ring: producers block on a full queue too
        c.chunksize = std::uniform_int_distribution<std::size_t>(1, 16)(rng);
        out.push_back(c);
      }
    }
    // First use of mpp's locks and queues in threads while the main thread forks (issue 16).
    for (unsigned threads : {2u, 8u}) {
      Case c;
      c.kind = Kind::first_lock;
      c.role = Role::child;
      c.a = threads;
      c.b = 12;
      c.n = L ? 20 : 4;
      out.push_back(c);
    }
    // The owner itself SIGKILLed at a random time: nothing may outlive it.
    for (Kind k : {Kind::queue, Kind::pool_map, Kind::locks}) {
      Case c;
      c.kind = k;
      c.role = Role::parent;
      c.kill_parent = true;
      c.a = 3;
      c.b = 3;
      c.n = k == Kind::queue ? 3000 : k == Kind::locks ? 20000 : 4000;
      c.pace_us = 100;
      out.push_back(c);
    }
    {
      // A non-daemon consumer whose parent died: it must notice (QueueClosed) and end by itself.
      Case c;
      c.kind = Kind::queue;
      c.role = Role::parent;
      c.kill_parent = true;
      c.daemon = false;
      c.a = 2;
      c.b = 1;
      c.n = 3000;
      c.pace_us = 100;
      out.push_back(c);
    }
  }
  {
    // Random cancels (issue 17), at 1..4 workers (long run 1..8). After every other case and
    // from a generator of their own, so that adding them changed none of the earlier cases.
    std::mt19937_64 crng(args.seed ^ 0xca9ce1ULL);
    for (int i = 0; i < (L ? 6 : 1); ++i) {
      for (Kind k : {Kind::pool_map, Kind::pool_imap, Kind::pool_async}) {
        Case c;
        c.kind = k;
        c.role = Role::cancel;
        c.a = std::uniform_int_distribution<unsigned>(1, L ? 8 : 4)(crng);
        c.kills = std::uniform_int_distribution<int>(1, L ? 40 : 10)(crng);  // apply_async cancels
        c.n = k == Kind::pool_async ? 400 : (L ? 2000 : 600);
        c.window_ms = 150;
        c.chunksize = std::uniform_int_distribution<std::size_t>(1, 16)(crng);
        out.push_back(c);
      }
    }
  }
  if (args.with_load) {
    auto load = [&](int which, unsigned a, unsigned b, std::uint64_t n) {
      Case c;
      c.kind = Kind::load;
      c.load = which;
      c.a = a;
      c.b = b;
      c.n = n;
      out.push_back(c);
    };
    load(0, 8, 8, 10'000'000);   // 10^7 queue items, 8 producers x 8 consumers
    load(1, 64, 0, 1'000'000);   // 10^6 map tasks on 64 workers
    load(2, 200, 0, 200'000);    // a 200-worker pool
    load(3, 2, 0, 100'000'000);  // imap over 10^8 items in flat memory
  }
  for (auto& c : out) c.seed = rng();
  return out;
}

std::string describe(const Case& c) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s role=%s fp=%s%s%s nth=%d action=%s kills=%d%s a=%u b=%u n=%" PRIu64,
                kind_name(c.kind), role_name(c.role), c.fp ? c.fp : "-", c.fp2 ? "+" : "",
                c.fp2 ? c.fp2 : "", c.nth, c.action == fp::Action::exit ? "exit" : "kill", c.kills,
                c.kill_parent ? " kill-parent" : "", c.a, c.b, c.n);
  if (c.kind == Kind::load) {
    static const char* names[] = {"queue 8x8", "map on 64 workers", "200-worker pool",
                                  "imap flat memory"};
    std::snprintf(buf, sizeof buf, "load %s n=%" PRIu64, names[std::min(c.load, 3)], c.n);
  }
  return buf;
}

std::vector<std::string> our_segments(const std::string& prefix) {
  return mpp::test::shm_entries(prefix);
}

// A hang is reported with what every process of the case was doing: state and kernel wait
// channel of each, and the case process's thread stacks when gdb is there.
void dump_hang(pid_t case_pid) {
  std::vector<pid_t> todo{case_pid}, all;
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    all.push_back(p);
    for (pid_t k : mpp::test::children_of(p)) todo.push_back(k);
  }
  for (pid_t p : all) {
    std::string wchan;
    if (std::FILE* f = std::fopen(("/proc/" + std::to_string(p) + "/wchan").c_str(), "r")) {
      char buf[128] = {};
      if (std::fgets(buf, sizeof buf, f) != nullptr) wchan = buf;
      std::fclose(f);
    }
    const auto st = mpp::test::proc_stat(p);
    std::printf("     hang: pid %d ppid %d %s state %c wchan %s\n", p, st.ppid,
                mpp::test::proc_comm(p).c_str(), st.state, wchan.c_str());
  }
  if (::access("/usr/bin/gdb", X_OK) == 0) {
    // Every process of a small case; of a big one, the owner and those running (spinning).
    for (pid_t p : all) {
      if (all.size() > 9 && p != case_pid && mpp::test::proc_stat(p).state != 'R') continue;
      std::printf("     hang: stacks of %d\n", p);
      const std::string cmd = "timeout 30 /usr/bin/gdb -q -batch -p " + std::to_string(p) +
                              " -ex 'thread apply all bt' 2>/dev/null | grep -E '^(#|Thread)' | "
                              "head -40 | sed 's/^/     hang: /'";
      std::fflush(stdout);
      if (std::system(cmd.c_str()) != 0) std::printf("     hang: (no stacks)\n");
    }
  }
  std::fflush(stdout);
}

// Reaps and counts whatever was reparented to us; kills what is still alive after the grace.
std::uint64_t reap_orphans(std::chrono::milliseconds grace) {
  const auto deadline = Clock::now() + grace;
  for (;;) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    auto kids = mpp::test::children_of(::getpid());
    if (kids.empty()) return 0;
    if (Clock::now() >= deadline) {
      for (pid_t k : kids) ::kill(k, SIGKILL);
      for (pid_t k : kids) ::waitpid(k, nullptr, 0);
      return kids.size();
    }
    std::this_thread::sleep_for(10ms);
  }
}

bool run_one(const Args& args, std::size_t index, const Case& c, Totals& t) {
  const std::string prefix = "mpp-chaos-" + std::to_string(::getpid()) + "-";
  const std::string shm_name = prefix + std::to_string(index);
  const int fds0 = mpp::test::open_fd_count();
  auto* r = shared_array<CaseResult>(1);
  g_r = r;
  std::fflush(nullptr);
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    case_main(c, shm_name);
  }
  ::setpgid(pid, pid);
  std::mt19937_64 rng(c.seed ^ 0xdead);
  const auto parent_kill_at =
      t0 + std::chrono::milliseconds(std::uniform_int_distribution<int>(30, 400)(rng));
  bool hung = false, killed_by_us = false;
  int status = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    const auto now = Clock::now();
    if (c.kill_parent && !killed_by_us && now >= parent_kill_at) {
      ::kill(pid, SIGKILL);
      killed_by_us = true;
    }
    if (now - t0 > kHangLimit) {
      hung = true;
      dump_hang(pid);
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  // Descendants of the case process (reparented to us, the subreaper) must be gone.
  const std::uint64_t orphans = reap_orphans(kOrphanGrace);
  // Named segments of a dead creator are unlinked by its guardian; give it the same grace.
  auto segs = our_segments(prefix);
  for (auto d = Clock::now() + kOrphanGrace; !segs.empty() && Clock::now() < d;) {
    std::this_thread::sleep_for(20ms);
    segs = our_segments(prefix);
  }
  for (auto& s : segs) ::unlink(("/dev/shm/" + s).c_str());
  const int fds1 = mpp::test::open_fd_count();

  const bool died = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 77);
  const bool parent_case = c.role == Role::parent;
  bool ok = true;
  std::string why;
  auto fail = [&](const std::string& s) {
    ok = false;
    why += s + "; ";
  };
  if (hung) {
    fail("HANG (no end within 30 s; last position/result seen: " +
         std::to_string(r->progress.load()) + ")");
  }
  if (!hung && !r->finished.load()) {
    if (parent_case && died) {
      ++t.parent_deaths;
      ++t.faults;
    } else {
      fail("case process ended early (status " + std::to_string(status) + ")");
    }
  }
  if (r->lost) fail("lost " + std::to_string(r->lost.load()));
  if (r->dup) fail("duplicated " + std::to_string(r->dup.load()));
  if (r->torn) fail("torn " + std::to_string(r->torn.load()));
  if (r->late) fail("late " + std::to_string(r->late.load()));
  if (r->unnamed) fail("unnamed errors " + std::to_string(r->unnamed.load()));
  if (r->leaked_procs) fail("leaked processes " + std::to_string(r->leaked_procs.load()));
  if (r->stuck) fail("children stuck after first use " + std::to_string(r->stuck.load()));
  if (r->leaked_fds) fail("leaked fds " + std::to_string(r->leaked_fds.load()));
  if (orphans) fail("orphans " + std::to_string(orphans));
  if (!segs.empty()) fail("leaked /dev/shm segments " + std::to_string(segs.size()));
  if (fds1 != fds0) fail("harness fds changed");

  ++t.cases;
  t.faults += r->faults + (killed_by_us && !parent_case ? 1 : 0);
  t.tasks += r->tasks;
  t.items += r->items;
  t.hangs += hung ? 1 : 0;
  t.lost += r->lost;
  t.dup += r->dup;
  t.torn += r->torn;
  t.late += r->late;
  t.unnamed += r->unnamed;
  t.named += r->named;
  t.in_hand += r->in_hand;
  t.leaked_procs += r->leaked_procs;
  t.leaked_fds += r->leaked_fds + (fds1 > fds0 ? static_cast<std::uint64_t>(fds1 - fds0) : 0);
  t.leaked_segments += segs.size();
  t.orphans += orphans;
  t.repaired += r->repaired;
  t.max_recovery_us = std::max<std::uint64_t>(t.max_recovery_us, r->max_recovery_us);
  if (!ok) ++t.failed;

  std::printf("%s case %3zu %-78s %6.2fs faults=%" PRIu64 " named=%" PRIu64 "%s\n",
              ok ? "ok  " : "FAIL", index, describe(c).c_str(), secs, r->faults.load(),
              r->named.load(), died && parent_case ? " (owner died)" : "");
  if (!ok) {
    std::printf("     -> %s\n     -> case notes: %s\n     -> seed 0x%016" PRIx64
                "; replay: %s --seed %" PRIu64 " %s--case %zu\n",
                why.c_str(), r->note, c.seed, args.argv0.c_str(), args.seed,
                args.long_run ? "--long " : "", index);
  }
  std::fflush(stdout);
  free_shared(r, 1);
  g_r = nullptr;
  return ok;
}

void usage(const char* argv0) {
  std::fprintf(
      stderr,
      "usage: %s [--short | --long] [--load | --no-load] [--seed N] [--rounds N] [--case I]\n"
      "          [--list] [--sabotage]\n"
      "  --short   every fail point x role once, a few random-kill cases (default)\n"
      "  --long    bigger cases, more random kills, --rounds rounds (default 5), load run\n"
      "  --case I  replay only case I of the list made from --seed and the mode\n"
      "  --only S  run only the cases whose description contains S\n"
      "  --list    print the cases, run nothing\n"
      "  --sabotage  drop one item / spoil one result on purpose (the run must FAIL)\n",
      argv0);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  args.argv0 = argv[0];
  bool rounds_set = false;
  bool load_set = false;
  bool list_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::uint64_t {
      if (i + 1 >= argc) {
        usage(argv[0]);
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 0);
    };
    if (a == "--short") {
      args.long_run = false;
    } else if (a == "--long") {
      args.long_run = true;
    } else if (a == "--load") {
      args.with_load = true;
      load_set = true;
    } else if (a == "--no-load") {
      args.with_load = false;
      load_set = true;
    } else if (a == "--seed") {
      args.seed = next();
    } else if (a == "--rounds") {
      args.rounds = static_cast<unsigned>(next());
      rounds_set = true;
    } else if (a == "--only") {
      if (i + 1 >= argc) {
        usage(argv[0]);
        return 2;
      }
      args.only = argv[++i];
    } else if (a == "--list") {
      list_only = true;
    } else if (a == "--sabotage") {
      g_sabotage = true;
    } else if (a == "--case") {
      args.only_case = static_cast<long>(next());
    } else {
      usage(argv[0]);
      return 2;
    }
  }
  if (const char* s = std::getenv("MPP_CHAOS_SEED")) args.seed = std::strtoull(s, nullptr, 0);
  if (args.long_run && !rounds_set) args.rounds = 5;
  if (args.long_run && !load_set) args.with_load = true;
#if !(defined(MPP_FAILPOINTS) && MPP_FAILPOINTS)
  std::printf("mpp_chaos: built without MPP_FAILPOINTS; fail point cases inject nothing\n");
#endif
  // Orphans of a dead case process come to us, so we can count (and reap) them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  ::signal(SIGPIPE, SIG_IGN);

  const auto cases = build_cases(args);
  if (list_only) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const std::string d = describe(cases[i]);
      if (args.only.empty() || d.find(args.only) != std::string::npos) {
        std::printf("%3zu %s\n", i, d.c_str());
      }
    }
    return 0;
  }
  std::printf("mpp_chaos: %s run, seed %" PRIu64 ", %zu cases%s\n",
              args.long_run ? "long" : "short", args.seed, cases.size(),
              args.only_case >= 0 ? " (replaying one)" : "");
  Totals t;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    if (args.only_case >= 0 && static_cast<std::size_t>(args.only_case) != i) continue;
    if (!args.only.empty() && describe(cases[i]).find(args.only) == std::string::npos) continue;
    (void)run_one(args, i, cases[i], t);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("\n==== mpp_chaos figures (seed %" PRIu64
              ", %s run, %.1f s) ====\n"
              "cases run            %" PRIu64 " (%" PRIu64
              " failed)\n"
              "faults injected      %" PRIu64 " (of which owner deaths %" PRIu64
              ")\n"
              "tasks checked        %" PRIu64
              "\n"
              "items checked        %" PRIu64
              "\n"
              "named task errors    %" PRIu64
              "\n"
              "max fault->error     %.1f ms (limit %lld ms)\n"
              "lock repairs         %" PRIu64
              "\n"
              "items in killed consumers' hands (allowed by the Queue contract) %" PRIu64
              "\n"
              "hangs                %" PRIu64
              "\n"
              "lost                 %" PRIu64
              "\n"
              "duplicated           %" PRIu64
              "\n"
              "torn                 %" PRIu64
              "\n"
              "late (> 1 s)         %" PRIu64
              "\n"
              "unnamed errors       %" PRIu64
              "\n"
              "leaked processes     %" PRIu64 " (orphans %" PRIu64
              ")\n"
              "leaked fds           %" PRIu64
              "\n"
              "leaked segments      %" PRIu64 "\n",
              args.seed, args.long_run ? "long" : "short", secs, t.cases, t.failed, t.faults,
              t.parent_deaths, t.tasks, t.items, t.named,
              static_cast<double>(t.max_recovery_us) / 1000.0,
              static_cast<long long>(std::chrono::milliseconds(kRecoveryLimit).count()), t.repaired,
              t.in_hand, t.hangs, t.lost, t.dup, t.torn, t.late, t.unnamed,
              t.leaked_procs + t.orphans, t.orphans, t.leaked_fds, t.leaked_segments);
  std::printf("RESULT: %s\n", t.failed == 0 ? "PASS" : "FAIL");
  return t.failed == 0 ? 0 : 1;
}
