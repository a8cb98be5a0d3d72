// TcpServer: one shard's TCP side for HTTP (DESIGN §4): a SO_REUSEPORT listening socket per
// address with a multishot ACCEPT, a fixed table of connections, a multishot RECV per connection
// drawing from the shard's TCP buffer ring, and at most one SEND in flight per connection.
// A connection's first receive is single-shot: when that one request is all the client sends
// (HTTP "Connection: close", or HTTP/1.0), its answer goes out with the CLOSE linked behind it
// (one submission, no half-close, no wait for the client's FIN); otherwise the multishot receive
// is armed once the shard has looked at the first input.
//
// It knows nothing of HTTP: the shard reads a connection's input (bytes not yet consumed),
// consumes what it parsed, appends response bytes, and asks for a flush or a close.
//
// Ownership: one shard; connections never move between shards. The shard names a connection by
// (index, generation): closing bumps the generation, so a late cross-shard answer for a closed
// connection is ignored. Completions carry only the index: a slot is reused only after its
// receive and send completions have all arrived. Memory: input and output buffers are taken from
// the shard's arena only while a connection has partial input or unsent output, so idle connections
// cost only their table entry.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/arena.hpp"
#include "tyto/core/counter_field.hpp"
#include "tyto/core/types.hpp"
#include "tyto/net/address.hpp"
#include "tyto/net/ring.hpp"

namespace tyto::net {

struct ConnectionRef {
  std::uint32_t index = 0;
  std::uint32_t generation = 0;
  friend bool operator==(const ConnectionRef&, const ConnectionRef&) = default;
};

struct TcpCounters {
  std::uint64_t accepted = 0;
  std::uint64_t refused_full = 0;  // accepted then closed: connection table full
  std::uint64_t closed = 0;
  std::uint64_t closed_idle = 0;  // idle timeout (includes slow partial heads)
  std::uint64_t closed_input_overflow = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t receive_no_buffer = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t closed_linked = 0;  // closed by a CLOSE linked to the last answer's SEND

  static constexpr CounterField<TcpCounters> fields[] = {
      {&TcpCounters::accepted, "tcp_accepted", "TCP connections accepted"},
      {&TcpCounters::refused_full, "tcp_refused_full",
       "TCP connections closed at once: table full"},
      {&TcpCounters::closed, "tcp_closed", "TCP connections closed"},
      {&TcpCounters::closed_idle, "tcp_closed_idle", "TCP connections closed idle or stalled"},
      {&TcpCounters::closed_input_overflow, "tcp_closed_input_overflow",
       "TCP connections closed: unconsumed input over the buffer limit"},
      {&TcpCounters::bytes_received, "tcp_bytes_received", "TCP bytes received"},
      {&TcpCounters::bytes_sent, "tcp_bytes_sent", "TCP bytes sent"},
      {&TcpCounters::receive_no_buffer, "tcp_receive_no_buffer",
       "TCP receives that found the buffer ring empty (-ENOBUFS; re-armed)"},
      {&TcpCounters::send_errors, "tcp_send_errors",
       "TCP sends that failed (the connection is closed)"},
      {&TcpCounters::closed_linked, "tcp_closed_linked",
       "TCP connections closed by a close linked to the answer (the client's last request)"},
  };
};
static_assert(counter_fields_complete<TcpCounters>(), "each field has exactly one row in fields");

class TcpServer {
 public:
  static constexpr std::uint32_t buffer_size = 4096;
  static constexpr std::uint32_t buffers_count = 2048;  // per shard; power of two
  static constexpr std::uint16_t buffer_group = 2;
  // Grace after a half-close (answered, FIN sent) for the client's FIN, counted from its last
  // bytes.
  static constexpr std::uint32_t drain_timeout_s = 5;
  // Both come from the arena's largest class, so steady state makes no heap calls.
  static constexpr std::uint32_t input_size_max = SlabArena::block_size_max;  // partial + pipelined
  static constexpr std::uint32_t output_size_max = SlabArena::block_size_max;  // unsent responses

  TcpServer() = default;
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  std::string open(Ring& ring, std::span<const SocketAddress> listen_addresses,
                   std::uint32_t connections_max);
  void arm_all(Ring& ring) noexcept;

  // Op::tcp_accept completion: registers the connection and arms its receive.
  void on_accept(Ring& ring, const io_uring_cqe& cqe, std::uint32_t now_s) noexcept;
  // Op::tcp_recv completion: appends what arrived to the connection's input. Returns the
  // connection when it has new input to look at; nullopt when the completion was stale, the peer
  // closed, or input overflowed (the connection is then closed). After looking at a returned
  // connection's input, call receive_more: the receive may have ended with it.
  std::optional<ConnectionRef> on_receive(Ring& ring, const io_uring_cqe& cqe,
                                          std::uint32_t now_s) noexcept;
  // Op::tcp_send completion.
  void on_send(Ring& ring, const io_uring_cqe& cqe) noexcept;
  // Op::tcp_close completion (the close linked to a last send): the slot is free.
  void on_close(Ring& ring, const io_uring_cqe& cqe) noexcept;
  // Arms the connection's (multishot) receive when none is armed and more input may come.
  void receive_more(Ring& ring, ConnectionRef connection) noexcept;
  // The client said the request just consumed is its last (HTTP "Connection: close", or
  // HTTP/1.0 without keep-alive; RFC 9112 §9.6: it sends no further request). With no input
  // left and no receive armed, the answer then closes the connection: SEND and CLOSE linked.
  void client_done(ConnectionRef connection) noexcept;

  bool alive(ConnectionRef connection) const noexcept;
  // Alive and not closing after its pending output: requests may still be answered.
  bool serving(ConnectionRef connection) const noexcept;
  // The current reference for a slot (for completions, which carry only the index).
  ConnectionRef ref(std::uint32_t index) const noexcept {
    return {index, index < connections_.size() ? connections_[index].generation : 0};
  }
  std::span<const std::uint8_t> input(ConnectionRef connection) const noexcept;
  void consume_input(ConnectionRef connection, std::size_t size) noexcept;
  // The peer's address (ip, port) as the TCP connection sees it.
  const PeerEndpoint& peer(ConnectionRef connection) const noexcept;
  // Room for `size` more response bytes, or an empty span when the output is full.
  std::span<std::uint8_t> output_space(ConnectionRef connection, std::size_t size) noexcept;
  void commit_output(ConnectionRef connection, std::size_t size) noexcept;
  // What output_space can still give. Sent bytes are reclaimed only once all output is sent,
  // so while sends are in flight this is less than the buffer minus what is unsent.
  std::size_t output_room(ConnectionRef connection) const noexcept;
  // Sends pending output (if no send is in flight). close_after: close once it is all sent.
  void flush(Ring& ring, ConnectionRef connection, bool close_after) noexcept;
  void close(Ring& ring, ConnectionRef connection) noexcept;
  // Closes connections idle for longer than idle_timeout_s (half-closed ones after
  // drain_timeout_s) and trims the buffer arena. Call once per second.
  void close_idle(Ring& ring, std::uint32_t now_s, std::uint32_t idle_timeout_s) noexcept;

  const TcpCounters& counters() const noexcept { return counters_; }
  std::uint32_t open_connections() const noexcept { return open_count_; }
  // No connection has output waiting or a send in flight. O(connections): for stopping only.
  bool sends_idle() const noexcept;

 private:
  struct Connection {
    int fd = -1;
    std::uint32_t generation = 0;
    std::uint32_t last_active_s = 0;
    PeerEndpoint peer;
    std::uint8_t* input = nullptr;  // arena block of input_size_max while non-empty
    std::uint32_t input_size = 0;
    std::uint8_t* output = nullptr;  // arena block of output_size_max while non-empty
    std::uint32_t output_size = 0;
    std::uint32_t output_sent = 0;  // bytes of output already handed to the kernel
    bool send_in_flight = false;
    bool close_in_flight = false;  // a CLOSE linked to the send in flight
    bool receive_armed = false;
    bool client_done = false;  // the client sends no further request (client_done())
    bool close_after_flush = false;
    bool draining = false;  // answered and half-closed: input discarded until the peer's FIN
    bool closing = false;   // closed for the shard; waiting for in-flight completions
  };
  struct Listener {
    int fd = -1;
  };

  Connection* get(ConnectionRef connection) noexcept;
  const Connection* get(ConnectionRef connection) const noexcept;
  void arm_accept(Ring& ring, std::uint32_t listener) noexcept;
  void arm_receive(Ring& ring, std::uint32_t index, bool multishot) noexcept;
  void start_send(Ring& ring, std::uint32_t index) noexcept;
  // The last answer and the close in one submission: SEND (all of it, MSG_WAITALL; no CQE when
  // it succeeds) hard-linked to CLOSE, so the close runs even when the send fails.
  void send_and_close(Ring& ring, std::uint32_t index) noexcept;
  // Closed for the shard: its references go stale; the slot waits for pending completions.
  void mark_closed(Connection& connection) noexcept;
  // Gives the slot back; its descriptor is closed already.
  void free_slot(std::uint32_t index) noexcept;
  // After the last answer of a closing connection: half-close and drain, or close at once.
  void finish(Ring& ring, ConnectionRef connection) noexcept;
  void release(Ring& ring, std::uint32_t index) noexcept;

  std::vector<Listener> listeners_;
  std::vector<Connection> connections_;
  std::vector<std::uint32_t> free_connections_;
  ProvidedBuffers buffers_{buffers_count, buffer_size, buffer_group};
  SlabArena arena_;
  std::uint32_t open_count_ = 0;
  TcpCounters counters_;
};

}  // namespace tyto::net
