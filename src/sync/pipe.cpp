// Connection/Pipe transport: length-prefixed frames over a non-blocking AF_UNIX stream socket
// pair, with waits that also watch the peer process (see mpp/pipe.hpp for the semantics).
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

#include "mpp/detail/fork_hooks.hpp"
#include "mpp/detail/sync_block.hpp"
#include "sys/fd.hpp"
#include "sys/proc.hpp"
#include "sys/sync_sys.hpp"

namespace mpp::detail {

namespace {

// Frame header: payload length, 8 bytes little-endian (the codec already requires a
// little-endian host). Larger than any sane message: a corrupt header must not allocate 2^64.
using FrameLen = std::uint64_t;
constexpr std::size_t kHeader = sizeof(FrameLen);
constexpr FrameLen kMaxFrame = FrameLen{1} << 40;

// Who uses each end, in shared memory so that the peer can watch that process.
struct PipeShared {
  std::atomic<std::int32_t> user[2];
};
static_assert(std::atomic<std::int32_t>::is_always_lock_free,
              "pipe end users are read across processes and must be lock-free");

// getpid() is a system call (~1 us here) and would be paid on every send/recv; the cache is
// cleared in fork children by a fork hook (memory only, as hooks require).
std::atomic<pid_t> g_pid{0};
void forget_pid(void*) noexcept { g_pid.store(0, std::memory_order_relaxed); }
pid_t my_pid() {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {
    static const std::size_t hook = register_fork_child_hook(&forget_pid, nullptr);
    (void)hook;
    p = sys::self_pid();
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}

}  // namespace

class ConnectionCore {
 public:
  ConnectionCore(sys::Fd fd, std::shared_ptr<void> keep, PipeShared* shared, int end, bool can_read,
                 bool can_write)
      : fd_(std::move(fd)),
        keep_(std::move(keep)),
        shared_(shared),
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

  std::span<const std::byte> recv() {
    check_open();
    if (!can_read_) throw std::logic_error("recv on the send-only end of a one-way Pipe");
    mark_user();
    consume_previous();
    if (!version_ok_) {
      fill(sizeof(std::uint32_t), true);
      skip_version();
    }
    fill(kHeader, /*at_message_start=*/true);
    FrameLen len;
    std::memcpy(&len, rbuf_.data() + rpos_, kHeader);
    if (len > kMaxFrame) throw SerializationError("pipe frame length out of range");
    fill(kHeader + static_cast<std::size_t>(len), false);
    const std::byte* msg = rbuf_.data() + rpos_ + kHeader;
    last_ = kHeader + static_cast<std::size_t>(len);
    return {msg, static_cast<std::size_t>(len)};
  }

  bool poll(std::chrono::milliseconds timeout) {
    check_open();
    if (!can_read_) throw std::logic_error("poll on the send-only end of a one-way Pipe");
    mark_user();
    consume_previous();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      skip_version();
      // A message (possibly partial) or the end of the stream: recv() will not block.
      if ((version_ok_ && rlen_ > rpos_) || eof_) return true;
      if (read_more() != 0) continue;
      if (eof_) return true;
      const auto left = std::max(std::chrono::nanoseconds(0),
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     deadline - std::chrono::steady_clock::now()));
      const Wait w = wait_ready(false, left.count());
      if (w == Wait::peer_gone) return true;
      if (w == Wait::timeout) {
        if (read_more() != 0) continue;
        return eof_;
      }
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

  // docs/wire-format.md: a stream transport starts with the codec's wire version. Both ends come
  // from one Pipe() call in one binary, so a mismatch means corrupted bytes, not an old peer.
  void skip_version() {
    if (version_ok_ || rlen_ - rpos_ < sizeof(std::uint32_t)) return;
    std::uint32_t v;
    std::memcpy(&v, rbuf_.data() + rpos_, sizeof v);
    if (v != codec::kWireVersion)
      throw SerializationError("pipe peer uses another codec wire version");
    rpos_ += sizeof v;
    version_ok_ = true;
  }

  void consume_previous() {
    rpos_ += last_;
    last_ = 0;
    if (rpos_ == rlen_) rpos_ = rlen_ = 0;
  }

  // Reads what is there without blocking; returns bytes read, sets eof_ on end of stream.
  std::size_t read_more() {
    if (eof_) return 0;
    if (rbuf_.size() - rlen_ < 4096) {
      if (rpos_ > 0) {  // compact before growing
        std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rlen_ - rpos_);
        rlen_ -= rpos_;
        rpos_ = 0;
      }
      if (rbuf_.size() - rlen_ < 4096) rbuf_.resize(std::max<std::size_t>(rbuf_.size() * 2, 65536));
    }
    long r = sys::recv_some(fd_.get(), rbuf_.data() + rlen_, rbuf_.size() - rlen_);
    if (r < 0) {
      eof_ = true;
      return 0;
    }
    rlen_ += static_cast<std::size_t>(r);
    return static_cast<std::size_t>(r);
  }

  // Makes `need` bytes available at rpos_, blocking as needed.
  void fill(std::size_t need, bool at_message_start) {
    if (rbuf_.size() < rpos_ + need) {
      if (rlen_ > rpos_) std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rlen_ - rpos_);
      rlen_ -= rpos_;
      rpos_ = 0;
      if (rbuf_.size() < need) rbuf_.resize(need);
    }
    while (rlen_ - rpos_ < need) {
      if (read_more() != 0) continue;
      if (!eof_ && wait_ready(false, -1) != Wait::peer_gone) continue;
      // End of stream or a dead peer: whatever it sent before is still delivered.
      while (rlen_ - rpos_ < need && read_more() != 0) {
      }
      if (rlen_ - rpos_ >= need) return;
      const bool clean = at_message_start && rlen_ == rpos_;
      throw QueueClosed(clean ? "pipe peer closed" : "pipe peer closed in the middle of a message");
    }
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
  int end_;
  bool can_read_;
  bool can_write_;
  bool eof_ = false;
  bool version_ok_ = false;
  std::vector<std::byte> sbuf_;
  std::vector<std::byte> rbuf_;
  std::size_t rpos_ = 0;
  std::size_t rlen_ = 0;
  std::size_t last_ = 0;  // size of the frame handed out by the previous recv()
  pid_t peer_pid_ = 0;
  sys::Fd peer_pidfd_;
};

ConnectionPair make_connection_pair(bool duplex) {
  auto fds = sys::make_socket_pair();
  auto block = allocate_shared_block(sizeof(PipeShared));
  auto* shared = new (block.base) PipeShared{};
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
