// mpp/pipe.hpp: a two-ended message channel between processes, like Python's multiprocessing.Pipe.
//
// What: Pipe<T>(duplex) returns two Connection<T> handles over a connected AF_UNIX socket pair.
// Duplex (default): both ends send and receive. One-way (duplex = false): the FIRST end only
// receives and the SECOND only sends (Python's order: `auto [reader, writer] = Pipe<T>(false)`).
// Messages are whole values of any codec type (<mpp/codec.hpp>), delivered in order.
//
// Lifetime: a Connection is a handle; copies in one process share one file descriptor, which is
// closed by close() (for every copy in this process) or when the last copy goes away. Children
// forked after Pipe() inherit both ends, like Python; a process normally uses ONE end.
//
// One end, several processes: any process holding an end may use it, like two processes holding
// one Python Connection. recv() takes exactly one message, whichever process calls it; poll()
// takes none (a child that only polls and exits leaves every message for the others). Processes
// receiving on one end concurrently each get whole messages, every message goes to exactly one
// of them, and each gets its messages in the order they were sent. Processes sending on one end
// concurrently never interleave their messages' bytes, large messages included. Bytes a reader
// has taken out of the socket beyond its own message stay in shared memory that every reader of
// the end sees (a page per Pipe), so nothing is private to a process between calls.
//
// End-of-stream semantics (recv never hangs on a gone peer): an end is "used" by the last process
// that sent, received or polled on it. recv() delivers every message already sent, then throws
// mpp::QueueClosed when the peer end is finished, i.e. when any of these holds:
//   - the process using the peer end called close() on it (the socket is shut down for everyone);
//   - every copy of the peer end's descriptor is closed (all holders closed it or exited);
//   - the process using the peer end died (SIGKILL included), even if other processes, e.g. the
//     creator, still hold copies of that end (each wait also watches the peer's pidfd).
// A peer end that no process has used yet has no known user: then only the first two apply, so
// close the ends a process does not use (as in Python) if a child may die before its first send.
// Several processes using one end are still watched as one, the last of them: if that one exits
// while another is not done sending, the receivers' recv() throws QueueClosed once they have taken
// what was sent. Keep every user of an end alive until the other side is done with it.
// A message cut short by the peer's death also ends in QueueClosed. send() to a finished peer
// throws QueueClosed (never SIGPIPE) and never blocks forever on a full socket of a dead peer.
//
// Fork / threads: safe to use different ends, or one end, from different processes (above); one
// end must not be used by two threads of one process at once (like Python). Memory ordering: a
// value received happens after it was sent (the kernel orders the bytes).
//
// Death inside a call: a process killed inside recv() (SIGKILL) loses at most the message it was
// taking; the next reader of the end takes over within 10-160 ms and goes on with the next
// message. One window of a few instructions (between a read(2) and recording it) can instead tear
// the stream, and so can a sender killed in the middle of a large message while another process
// goes on sending on that end: later messages then fail to decode (SerializationError).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <utility>

#include "mpp/codec.hpp"
#include "mpp/detail/export.hpp"
#include "mpp/errors.hpp"

namespace mpp {

namespace detail {
class ConnectionCore;
struct ConnectionPair {
  std::shared_ptr<ConnectionCore> first;
  std::shared_ptr<ConnectionCore> second;
};
// Throws std::system_error ("cannot create pipe").
[[nodiscard]] MPP_API ConnectionPair make_connection_pair(bool duplex);
// A buffer of n payload bytes to encode into, owned by the core (valid until the next call).
// Throws std::logic_error (closed, or a receive-only end).
[[nodiscard]] MPP_API std::byte* conn_send_buffer(ConnectionCore& c, std::size_t n);
// Sends the framed buffer. Blocks while the socket is full. Throws QueueClosed, system_error.
MPP_API void conn_send_commit(ConnectionCore& c);
// Blocks for the next message; the span is valid until the next recv. Throws QueueClosed,
// logic_error (closed, or a send-only end), system_error, SerializationError (bad frame).
[[nodiscard]] MPP_API std::span<const std::byte> conn_recv(ConnectionCore& c);
[[nodiscard]] MPP_API bool conn_poll(ConnectionCore& c, std::chrono::milliseconds timeout);
MPP_API void conn_close(ConnectionCore& c) noexcept;
[[nodiscard]] MPP_API bool conn_closed(const ConnectionCore& c) noexcept;
}  // namespace detail

// One end of a Pipe: send() and recv() of T values (Python's multiprocessing.connection).
template <class T>
class Connection {
  static_assert(codec::Codable<T>,
                "mpp::Connection<T>: T must be a codec type (see mpp/codec.hpp for how to opt in)");

 public:
  // Encodes and sends one value, whole even while other processes send on this end (they wait
  // for it). Blocks while the socket buffer is full. Throws mpp::QueueClosed (peer finished),
  // std::logic_error (this end is closed or receive-only), SerializationError.
  void send(const T& value) {
    const std::size_t n = codec::encoded_size(value);
    std::byte* out = detail::conn_send_buffer(*core_, n);
    (void)codec::encode_to(out, value);
    detail::conn_send_commit(*core_);
  }

  // Blocks until a message arrives, and takes exactly that one (the next stays for any process
  // that reads this end). While it waits, other processes' recv()/poll() on this end wait for it.
  // Throws mpp::QueueClosed once the peer is finished and every sent message was received;
  // std::logic_error (closed or send-only end); SerializationError.
  [[nodiscard]] T recv() { return codec::decode<T>(detail::conn_recv(*core_)); }

  // Blocks at most `timeout` (0: not at all); consumes nothing. True if recv() would not block: a
  // message is there (possibly still arriving), or the peer is finished (recv() then throws). With
  // several readers on this end it is a snapshot: another process may take the message first, and
  // while another process waits inside recv() on this end, poll() is false (what arrives is that
  // process's). Throws std::logic_error on a closed or send-only end.
  [[nodiscard]] bool poll(std::chrono::milliseconds timeout = {}) const {
    return detail::conn_poll(*core_, timeout);
  }

  // Closes this process's end for every copy of the handle in this process. If this process is
  // the end's user, the peer's recv() ends with QueueClosed after draining. Idempotent; never
  // blocks, never throws.
  void close() noexcept { detail::conn_close(*core_); }
  [[nodiscard]] bool closed() const noexcept { return detail::conn_closed(*core_); }

 private:
  template <class U>
  friend std::pair<Connection<U>, Connection<U>> Pipe(bool duplex);
  explicit Connection(std::shared_ptr<detail::ConnectionCore> core) : core_(std::move(core)) {}
  std::shared_ptr<detail::ConnectionCore> core_;
};

// Creates a connected pair. Throws std::system_error ("cannot create pipe").
template <class T>
[[nodiscard]] std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true) {
  auto p = detail::make_connection_pair(duplex);
  return {Connection<T>(std::move(p.first)), Connection<T>(std::move(p.second))};
}

}  // namespace mpp
