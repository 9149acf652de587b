// Connection/Pipe transport: length-prefixed frames over a non-blocking AF_UNIX stream socket
// pair, with waits that also watch the peer process (see mpp/pipe.hpp for the semantics).
//
// One end, many readers (issue 16). Every process that inherited an end may poll() and recv() on
// it, so no byte of the stream may ever sit where only one process can see it: a byte read from
// the socket either belongs to the message the reader is handing out, or stays in the end's
// shared stage (a small buffer in the Pipe's MAP_SHARED block, below), which every reader of
// that end sees. The end's read lock (shm::SyncLock, the robust lock behind mpp::Lock) is held
// while a process moves bytes between the socket, the stage and its own message buffer, so two
// readers each take whole messages, none twice. poll() moves socket bytes into the stage (under
// the lock) and hands out nothing.
//
// The lock is also held while waiting: the holder is the one process that sleeps on the socket
// (and the peer's pidfd), the other readers of the end sleep on the lock's futex. Waiting on the
// socket without the lock loses wake-ups: reader A stages two messages, takes one and returns,
// while reader B, which found nothing a moment before, sleeps on a socket that is now empty, with
// its message in the stage (test SeveralReadersOfOneEnd... hung that way). With the rule, every
// unlock hands the lock to a sleeping reader, which looks at the stage before it sleeps again.
//
// Why a shared stage rather than reading exactly one frame per recv (8-byte header, then exactly
// its length): on a stream of small messages the receiver would make two recv(2) calls per
// message where one recv(2) now stages up to kStage bytes (over a hundred 12-byte frames).
// bench_sync's "one-way stream" rows measure it (numbers in the commit message). A frame larger
// than the stage is read by the process that took its header, straight from the socket into that
// process's own buffer and exactly to its end, so nothing is read past it and nothing is copied
// twice.
//
// Why not SOCK_SEQPACKET (the kernel keeps boundaries): a record is limited by the socket's send
// buffer (~208 KiB by default), so big messages would need fragments, whose readers need the same
// lock anyway; and every record costs a socket buffer of its own (~1 KiB of accounting for a
// 12-byte message), which caps how many small messages can be in flight.
//
// Several senders on one end: each holds the stream's send lock for one whole frame. A small
// frame goes out in one write anyway, but a larger one than the socket's free space takes several,
// and before the lock two senders' writes interleaved (two processes sending 320 KiB vectors on one
// end: 1 reader in 10 runs got all 100 intact). Cost: one uncontended CAS and exchange per send.
//
// A reader that dies holding the lock (SIGKILL) is noticed by the next one (SyncLock checks
// whether the holder still exists, within 10-160 ms); the stage and its counters say where the
// stream stands, so the next reader goes on from there. What the dead reader had already taken out
// of the socket for its own message is lost with it; the `skip` count lets the next reader discard
// the rest of that message instead of reading it as frames. One window stays: a reader killed
// between a recv(2) that returned and the store that records those bytes (a few instructions)
// loses bytes the others then miss, so the stream is torn and its later frames fail to decode
// (SerializationError) or end early. A sender killed in the middle of a frame tears the stream
// the same way if another process goes on sending on that end (alone, its death ends the peer's
// stream with QueueClosed, as before).
#include "mpp/pipe.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "mpp/detail/sync_block.hpp"
#include "runtime/fork_hooks.hpp"
#include "shm/sync_lock.hpp"
#include "sys/fd.hpp"
#include "sys/poll.hpp"
#include "sys/proc.hpp"
#include "sys/socket.hpp"

namespace mpp::detail {

namespace {

// Frame header: payload length, 8 bytes little-endian (the codec already requires a
// little-endian host). Larger than any sane message: a corrupt header must not allocate 2^40.
using FrameLen = std::uint64_t;
constexpr std::size_t kHeader = sizeof(FrameLen);
constexpr FrameLen kMaxFrame = FrameLen{1} << 40;
// docs/wire-format.md: a stream transport starts with the codec's wire version.
constexpr std::size_t kVersionBytes = sizeof(std::uint32_t);

// Bytes of one stream that a reader has taken out of the socket but not yet handed out. Sized so
// that the whole PipeShared fits one page (one pre-faulted page per Pipe, as before).
constexpr std::size_t kStage = 1872;

// One direction of the pipe, shared by every process that sends or receives on it. The lock
// words sit on cache lines of their own: a sender and a reader in two processes do not bounce
// each other's line on every message. All fields after read_lock are read and written only by
// its holder.
struct Stream {
  // Held by a sender for one whole frame: a frame larger than the socket's free space goes out in
  // several writes, which two senders' writes must not interleave with.
  alignas(64) shm::SyncLock send_lock;
  // Held by a reader while it moves bytes of this stream (and while it waits for them).
  alignas(64) shm::SyncLock read_lock;
  std::uint32_t begin;  // stage[begin, end): stream bytes not yet handed out
  std::uint32_t end;
  std::uint32_t version_ok;  // the stream's 4-byte wire version was read and checked
  std::uint64_t skip;        // bytes of a frame body still in the socket that go to nobody
                             // (a reader died inside it), or that the holder is reading now
  alignas(8) std::byte stage[kStage];
};

// Who uses each end, so that the peer can watch that process, and both directions.
struct PipeShared {
  std::atomic<std::int32_t> user[2];
  Stream to[2];  // to[i]: the bytes end i receives (end 1 - i sends them)
};
static_assert(std::atomic<std::int32_t>::is_always_lock_free,
              "pipe end users are read across processes and must be lock-free");
static_assert(sizeof(PipeShared) <= 4096, "a Pipe's shared state is one page");
static_assert(kStage < (std::uint64_t{1} << 32), "stage offsets are 32-bit");

// getpid() is a system call (~1 us here) and would be paid on every send/recv; the cache is
// cleared in fork children by a fork hook (memory only, as hooks require).
std::atomic<pid_t> g_pid{0};
void forget_pid(void*) noexcept { g_pid.store(0, std::memory_order_relaxed); }
// Registered during static initialization, not by a function-local static on first use: such a
// static's guard can be caught half-way by a fork in another thread, and the child then blocks
// on it forever (issue 16, part 1). register_fork_child_hook only touches constant-initialized
// state (a fixed table of atomics), so the order of static initializers does not matter.
[[maybe_unused]] const std::size_t g_pid_hook = register_fork_child_hook(&forget_pid, nullptr);
pid_t my_pid() {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {
    p = sys::self_pid();
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}

// Holds a stream's send or read lock for one scope. A waiter that finds the holder dead takes
// the lock over (the read state then says how far that holder got; nothing else to repair).
class StreamGuard {
 public:
  explicit StreamGuard(shm::SyncLock& lock) : lock_(lock) { check(lock_.lock()); }
  // Waits at most `timeout` (<= 0: a try); held() says whether it got the lock.
  StreamGuard(shm::SyncLock& lock, std::chrono::nanoseconds timeout) : lock_(lock) {
    check(lock_.lock_for(timeout));
  }
  ~StreamGuard() {
    if (held_) (void)lock_.unlock();
  }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;
  [[nodiscard]] bool held() const noexcept { return held_; }

 private:
  void check(shm::Acquire a) {
    if (a == shm::Acquire::already_owned)  // only a signal handler using the same end can
      throw std::logic_error("Connection re-entered by the thread that is using it");
    held_ = a != shm::Acquire::timed_out;
  }
  shm::SyncLock& lock_;
  bool held_ = false;
};

}  // namespace

class ConnectionCore {
 public:
  ConnectionCore(sys::Fd fd, std::shared_ptr<void> keep, PipeShared* shared, int end, bool can_read,
                 bool can_write)
      : fd_(std::move(fd)),
        keep_(std::move(keep)),
        shared_(shared),
        in_(&shared->to[end]),
        out_(&shared->to[1 - end]),
        end_(end),
        can_read_(can_read),
        can_write_(can_write) {}

  std::byte* send_buffer(std::size_t n) {
    check_open();
    if (!can_write_) throw std::logic_error("send on the receive-only end of a one-way Pipe");
    sbuf_.resize(kHeader + n);
    const FrameLen len = n;
    std::memcpy(sbuf_.data(), &len, kHeader);
    return sbuf_.data() + kHeader;
  }

  void send_commit() {
    mark_user();
    StreamGuard guard(out_->send_lock);  // the frame goes out whole, whatever other senders do
    const std::byte* p = sbuf_.data();
    std::size_t left = sbuf_.size();
    while (left > 0) {
      long r = sys::send_some(fd_.get(), p, left);
      if (r < 0) throw QueueClosed("pipe peer closed");
      if (r == 0) {
        if (wait_ready(/*write=*/true, -1) == Wait::peer_gone) throw QueueClosed("pipe peer died");
        continue;
      }
      p += r;
      left -= static_cast<std::size_t>(r);
    }
  }

  // Takes exactly one message. The caller holds the end's read lock while it waits (see the top
  // of this file: whoever holds it watches the socket for every reader of the end).
  std::span<const std::byte> recv() {
    check_open();
    if (!can_read_) throw std::logic_error("recv on the send-only end of a one-way Pipe");
    mark_user();
    StreamGuard guard(in_->read_lock);
    bool peer_gone = false;
    for (;;) {
      const Got g = take_message();
      if (g == Got::ok) return {rbuf_.data(), msg_len_};
      // End of stream, or a dead peer and nothing more from it: what it sent was delivered.
      if (g == Got::eof || peer_gone)
        throw QueueClosed(in_->end == in_->begin ? "pipe peer closed"
                                                 : "pipe peer closed in the middle of a message");
      // A dead peer's last bytes may still be in flight: one more take before giving up.
      if (wait_ready(false, -1) == Wait::peer_gone) peer_gone = true;
    }
  }

  // Hands out nothing: socket bytes go to the shared stage, where every reader of the end finds
  // them. Waits with the read lock held, like recv().
  bool poll(std::chrono::milliseconds timeout) {
    check_open();
    if (!can_read_) throw std::logic_error("poll on the send-only end of a one-way Pipe");
    mark_user();
    using namespace std::chrono;
    const auto deadline = steady_clock::now() + timeout;
    auto left = [&] {
      return std::max(nanoseconds(0), duration_cast<nanoseconds>(deadline - steady_clock::now()));
    };
    // Another process inside recv() or poll() on this end holds the lock for as long as it waits:
    // whatever arrives meanwhile is its to take, so nothing is there for us (a race, as with two
    // readers of one Python Connection).
    StreamGuard guard(in_->read_lock, left());
    if (!guard.held()) return false;
    for (bool last_look = false;;) {
      // A message (possibly partial) or the end of the stream: recv() will not block.
      if (stage_some() != Got::empty) return true;
      if (last_look) return false;
      // Even with no time left, a dead peer makes poll() true (recv() would throw at once).
      const Wait w = wait_ready(false, left().count());
      if (w == Wait::peer_gone) return true;
      if (w == Wait::timeout || steady_clock::now() >= deadline) last_look = true;
    }
  }

  void close() noexcept {
    if (!fd_) return;
    // Only the end's user shuts the socket down for every holder: the parent closing its unused
    // copy of a child's end (Python's idiom) must not cut the child off.
    if (shared_->user[end_].load(std::memory_order_relaxed) == my_pid()) {
      sys::shutdown_direction(fd_.get(), 0);
      sys::shutdown_direction(fd_.get(), 1);
    }
    fd_.reset();
    peer_pidfd_.reset();
  }

  bool closed() const noexcept { return !fd_; }

 private:
  void check_open() const {
    if (!fd_) throw std::logic_error("use of a closed Connection");
  }

  void mark_user() {
    const pid_t me = my_pid();
    if (shared_->user[end_].load(std::memory_order_relaxed) != me)
      shared_->user[end_].store(me, std::memory_order_relaxed);
  }

  // ---- Under the end's read lock -----------------------------------------------------------
  // ok: done (the bytes asked for are staged, or a message was taken); empty: the socket has
  // nothing more now; eof: the socket is at end of stream.
  enum class Got { ok, empty, eof };

  // Reads whatever the socket holds into stage[end, kStage) once. Never blocks.
  Got read_into_stage() {
    Stream& s = *in_;
    if (s.begin > 0) {  // keep what is staged at the front, so the rest has room
      std::memmove(s.stage, s.stage + s.begin, s.end - s.begin);
      s.end -= s.begin;
      s.begin = 0;
    }
    const long r = sys::recv_some(fd_.get(), s.stage + s.end, kStage - s.end);
    if (r == 0) return Got::empty;
    if (r < 0) return Got::eof;
    s.end += static_cast<std::uint32_t>(r);
    return Got::ok;
  }

  // Makes `need` (<= kStage) bytes available at stage[begin]. Never blocks.
  Got stage_at_least(std::size_t need) {
    while (in_->end - in_->begin < need) {
      const Got g = read_into_stage();
      if (g != Got::ok) return g;
    }
    return Got::ok;
  }

  // Discards the rest of a body whose reader died, then reads and checks the wire version.
  Got catch_up() {
    Stream& s = *in_;
    while (s.skip > 0) {  // the stage is empty whenever skip is set: use it as scratch
      const long r = sys::recv_some(
          fd_.get(), s.stage, static_cast<std::size_t>(std::min<std::uint64_t>(s.skip, kStage)));
      if (r == 0) return Got::empty;
      if (r < 0) return Got::eof;
      s.skip -= static_cast<std::uint64_t>(r);
    }
    if (s.version_ok != 0) return Got::ok;
    const Got g = stage_at_least(kVersionBytes);
    if (g != Got::ok) return g;
    // Both ends come from one Pipe() call in one binary, so a mismatch means corrupted bytes.
    std::uint32_t v;
    std::memcpy(&v, s.stage + s.begin, sizeof v);
    if (v != codec::kWireVersion)
      throw SerializationError("pipe peer uses another codec wire version");
    s.begin += kVersionBytes;
    s.version_ok = 1;
    return Got::ok;
  }

  // For poll(): ok when a message (possibly partial) is staged. Never blocks.
  Got stage_some() {
    const Got g = catch_up();
    if (g != Got::ok) return g;
    if (in_->end > in_->begin) return Got::ok;
    return read_into_stage();
  }

  // Takes the next message into rbuf_ (msg_len_ bytes). Never blocks before the message's header
  // is staged; a message that fits the stage is taken only once it is staged whole (until then
  // its bytes wait there for whichever reader comes next). A larger one is this reader's as soon
  // as its header is: it reads the body to its end, waiting for the sender if need be.
  Got take_message() {
    Stream& s = *in_;
    Got g = catch_up();
    if (g == Got::ok) g = stage_at_least(kHeader);
    if (g != Got::ok) return g;
    FrameLen len;
    std::memcpy(&len, s.stage + s.begin, kHeader);
    if (len > kMaxFrame) throw SerializationError("pipe frame length out of range");
    const auto n = static_cast<std::size_t>(len);
    if (kHeader + n <= kStage) {
      g = stage_at_least(kHeader + n);
      if (g != Got::ok) return g;
      if (rbuf_.size() < n) rbuf_.resize(n);
      std::memcpy(rbuf_.data(), s.stage + s.begin + kHeader, n);
      s.begin += static_cast<std::uint32_t>(kHeader + n);
      msg_len_ = n;
      return Got::ok;
    }
    if (rbuf_.size() < n) rbuf_.resize(n);  // before touching the state: bad_alloc leaves it be
    const std::size_t staged = s.end - s.begin - kHeader;
    std::memcpy(rbuf_.data(), s.stage + s.begin + kHeader, staged);
    s.skip = n - staged;  // from here on, the body is this reader's (or nobody's if it dies)
    s.begin = s.end = 0;
    bool peer_gone = false;
    while (s.skip > 0) {
      const long r =
          sys::recv_some(fd_.get(), rbuf_.data() + (n - s.skip), static_cast<std::size_t>(s.skip));
      if (r > 0) {
        s.skip -= static_cast<std::uint64_t>(r);
        continue;
      }
      if (r < 0 || peer_gone) throw QueueClosed("pipe peer closed in the middle of a message");
      // Readers of this end wait on the lock meanwhile: the body is ours alone.
      if (wait_ready(false, -1) == Wait::peer_gone) peer_gone = true;  // then one more read
    }
    msg_len_ = n;
    return Got::ok;
  }

  // Follows the process that uses the peer end; opens a pidfd only when that process changes, so
  // the steady state costs no system call.
  void refresh_peer() {
    pid_t peer = shared_->user[1 - end_].load(std::memory_order_relaxed);
    if (peer == my_pid()) peer = 0;  // we use both ends: nothing to watch
    if (peer == peer_pid_) return;
    peer_pid_ = peer;
    peer_pidfd_.reset();
    if (peer != 0) peer_pidfd_ = sys::open_pidfd(peer);
  }

  enum class Wait { ready, peer_gone, timeout };

  // Sleeps until the socket is ready (or hung up), the peer's process ends, or the timeout
  // (ns; negative = forever).
  Wait wait_ready(bool write, long long timeout_ns) {
    using namespace std::chrono;
    const bool forever = timeout_ns < 0;
    const auto deadline =
        forever ? steady_clock::time_point::max() : steady_clock::now() + nanoseconds(timeout_ns);
    for (;;) {
      refresh_peer();
      nanoseconds t = forever
                          ? nanoseconds(-1)
                          : std::max(nanoseconds(0),
                                     duration_cast<nanoseconds>(deadline - steady_clock::now()));
      // Without a pidfd (no known peer yet, or no pidfd_open), wake up now and then to look.
      const bool watch = peer_pidfd_.valid();
      if (!watch && (t.count() < 0 || t > milliseconds(100))) t = milliseconds(100);
      auto r = sys::poll_two(fd_.get(), write, watch ? peer_pidfd_.get() : -1, t);
      if (r == sys::Ready::fd) return Wait::ready;
      if (r == sys::Ready::other) return Wait::peer_gone;  // a pidfd polls readable at exit
      if (!watch && peer_pid_ != 0 && !sys::process_alive(peer_pid_)) return Wait::peer_gone;
      if (!forever && steady_clock::now() >= deadline) return Wait::timeout;
    }
  }

  sys::Fd fd_;
  std::shared_ptr<void> keep_;
  PipeShared* shared_;
  Stream* in_;   // what this end receives (shared with every process that reads it)
  Stream* out_;  // what this end sends
  int end_;
  bool can_read_;
  bool can_write_;
  std::vector<std::byte> sbuf_;
  std::vector<std::byte> rbuf_;  // the message handed out by the last recv()
  std::size_t msg_len_ = 0;
  pid_t peer_pid_ = 0;
  sys::Fd peer_pidfd_;
};

ConnectionPair make_connection_pair(bool duplex) {
  auto fds = sys::make_socket_pair();
  auto block = allocate_shared_block(sizeof(PipeShared));
  auto* shared = new (block.base) PipeShared{};
  for (Stream& s : shared->to) {
    s.send_lock.init(shm::SyncLock::Kind::errorcheck);
    s.read_lock.init(shm::SyncLock::Kind::errorcheck);
  }
  // The wire version opens each direction (docs/wire-format.md); the sockets are fresh, so these
  // 4-byte sends cannot block or fall short.
  const std::uint32_t version = codec::kWireVersion;
  if (sys::send_some(fds.b.get(), &version, sizeof version) != sizeof version ||
      (duplex && sys::send_some(fds.a.get(), &version, sizeof version) != sizeof version))
    throw std::system_error(EIO, std::generic_category(), "cannot create pipe");
  if (!duplex) {
    sys::shutdown_direction(fds.a.get(), 1);  // first end: receive only
    sys::shutdown_direction(fds.b.get(), 0);  // second end: send only
  }
  return {std::make_shared<ConnectionCore>(std::move(fds.a), block.keep, shared, 0, true, duplex),
          std::make_shared<ConnectionCore>(std::move(fds.b), block.keep, shared, 1, duplex, true)};
}

std::byte* conn_send_buffer(ConnectionCore& c, std::size_t n) { return c.send_buffer(n); }
void conn_send_commit(ConnectionCore& c) { c.send_commit(); }
std::span<const std::byte> conn_recv(ConnectionCore& c) { return c.recv(); }
bool conn_poll(ConnectionCore& c, std::chrono::milliseconds timeout) { return c.poll(timeout); }
void conn_close(ConnectionCore& c) noexcept { c.close(); }
bool conn_closed(const ConnectionCore& c) noexcept { return c.closed(); }

}  // namespace mpp::detail
