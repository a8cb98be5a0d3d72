// One shard's UDP side (DESIGN §4): a socket per listen address (SO_REUSEPORT, so every shard
// binds the same addresses and the kernel spreads datagrams), one provided-buffer ring that all
// of the shard's multishot RECVMSGs draw from, and a pool of send slots for replies.
//
// Ownership: everything here belongs to one shard and is touched only on its thread.
// Lifetimes: a received buffer is parsed, what is kept is copied, and the buffer is recycled in
// the same loop turn; a send slot is held from acquire_send_slot() until its send completes
// (sent(), or flush() in sendmmsg mode) or it is given back with release_send_slot().
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/counter_field.hpp"
#include "tyto/core/limits.hpp"
#include "tyto/core/types.hpp"
#include "tyto/net/address.hpp"
#include "tyto/net/ring.hpp"

namespace tyto::net {

// Where a reply goes and which local address it leaves from. Plain data: it travels inside
// cross-shard messages so the owning shard can answer from its own socket.
struct UdpRoute {
  sockaddr_in6 peer{};       // a sockaddr_in when peer_family == AF_INET
  in6_addr local_address{};  // the datagram's destination (IPv4 in the first 4 bytes)
  std::uint32_t local_ifindex = 0;
  std::uint16_t listener = 0;     // index into the listen addresses
  std::uint16_t peer_family = 0;  // AF_INET or AF_INET6
  bool has_local_address = false;
};

struct Datagram {
  std::span<const std::uint8_t> payload;
  PeerEndpoint source;
  UdpRoute route;
};

// How replies leave: one SENDMSG SQE each (submitted with the turn's single io_uring_enter), or
// staged and sent with one sendmmsg(2) per socket per 64 replies and at the end of the loop turn
// (a long turn does not hold its first replies back until its last request is done).
enum class UdpSendMode : std::uint8_t { uring, sendmmsg };

struct UdpCounters {
  std::uint64_t datagrams_received = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t datagrams_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t dropped_truncated = 0;     // larger than a receive buffer
  std::uint64_t dropped_no_buffer = 0;     // the buffer ring ran dry (-ENOBUFS)
  std::uint64_t dropped_bad_source = 0;    // unusable source address
  std::uint64_t dropped_no_send_slot = 0;  // every send slot in flight
  std::uint64_t send_errors = 0;
  std::uint64_t receive_rearms = 0;

  static constexpr CounterField<UdpCounters> fields[] = {
      {&UdpCounters::datagrams_received, "udp_datagrams_received", "UDP datagrams received"},
      {&UdpCounters::bytes_received, "udp_bytes_received", "UDP payload bytes received"},
      {&UdpCounters::datagrams_sent, "udp_datagrams_sent", "UDP datagrams sent"},
      {&UdpCounters::bytes_sent, "udp_bytes_sent", "UDP payload bytes sent"},
      {&UdpCounters::dropped_truncated, "udp_dropped_truncated",
       "UDP datagrams dropped: larger than a buffer"},
      {&UdpCounters::dropped_no_buffer, "udp_dropped_no_buffer",
       "UDP receives that found the buffer ring empty (-ENOBUFS; re-armed)"},
      {&UdpCounters::dropped_bad_source, "udp_dropped_bad_source",
       "UDP datagrams dropped: unusable source address"},
      {&UdpCounters::dropped_no_send_slot, "udp_dropped_no_send_slot",
       "UDP replies dropped: every send slot in flight"},
      {&UdpCounters::send_errors, "udp_send_errors", "UDP replies whose send failed"},
      {&UdpCounters::receive_rearms, "udp_receive_rearms",
       "UDP multishot receives armed again after they ended"},
  };
};
static_assert(counter_fields_complete<UdpCounters>(), "each field has exactly one row in fields");

class UdpSockets {
 public:
  static constexpr std::uint32_t buffer_size = 2048;
  static constexpr std::uint32_t buffers_count = 4096;  // per shard; power of two
  static constexpr std::uint32_t send_slots_count = 4096;
  static constexpr std::uint16_t buffer_group = 1;

  UdpSockets() = default;
  ~UdpSockets();
  UdpSockets(const UdpSockets&) = delete;
  UdpSockets& operator=(const UdpSockets&) = delete;

  // Binds one socket per listen address (SO_REUSEPORT). Any thread may call it, before open();
  // the runtime binds shard by shard so each socket's index in its reuseport group is its
  // shard's index (net/steering.hpp). Error text or "".
  std::string bind(std::span<const SocketAddress> listen_addresses);
  // Registers the buffer ring with the shard's ring (after bind, on the shard's thread).
  std::string open(Ring& ring);
  int fd(std::uint32_t socket_index) const noexcept { return sockets_[socket_index].fd; }
  // Arms a multishot RECVMSG on every socket.
  void arm_all(Ring& ring) noexcept;

  // Handles a completion of Op::udp_recv. Returns the datagram if there is one; its payload
  // stays valid until recycle(cqe) is called. Re-arms the socket when the kernel ended the
  // multishot.
  std::optional<Datagram> receive(Ring& ring, const io_uring_cqe& cqe) noexcept;
  void recycle(const io_uring_cqe& cqe) noexcept;

  // A reply buffer of limits::udp_reply_size_max bytes, or nullopt when all are in flight
  // (the caller drops the request and it is counted).
  std::optional<std::uint32_t> acquire_send_slot() noexcept;
  std::span<std::uint8_t> send_buffer(std::uint32_t slot) noexcept;
  // Sends the slot's first `size` bytes to `route`, from the route's local address: queues a
  // SENDMSG SQE, or (sendmmsg mode) stages it for flush().
  void send(Ring& ring, std::uint32_t slot, std::size_t size, const UdpRoute& route) noexcept;
  static constexpr std::size_t sendmmsg_batch_max = 64;
  // sendmmsg mode: sends everything staged, one sendmmsg per socket; frees the slots.
  void flush() noexcept;
  void set_send_mode(UdpSendMode mode) noexcept { send_mode_ = mode; }
  // Handles a completion of Op::udp_send: frees the slot.
  void sent(const io_uring_cqe& cqe) noexcept;
  // Gives a slot back without sending (e.g. nothing to answer).
  void release_send_slot(std::uint32_t slot) noexcept;

  const UdpCounters& counters() const noexcept { return counters_; }
  std::size_t sockets_count() const noexcept { return sockets_.size(); }
  // No reply staged or in the kernel's hands (every send slot is free).
  bool sends_idle() const noexcept { return free_send_slots_.size() == send_slots_.size(); }

 private:
  struct Socket {
    int fd = -1;
    int family = 0;
    msghdr receive_header{};            // template for multishot RECVMSG: name and control sizes
    std::vector<std::uint32_t> staged;  // sendmmsg mode: slots to send this turn
  };
  struct SendSlot {
    msghdr header{};
    iovec vector{};
    sockaddr_in6 peer{};
    alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(in6_pktinfo))]{};
    std::uint8_t payload[limits::udp_reply_size_max];
  };

  void arm(Ring& ring, std::uint32_t socket_index) noexcept;
  // The kernel's header in a completion's buffer, checked against the socket's template; null
  // when the completion carries no buffer or the buffer does not hold what the header says.
  io_uring_recvmsg_out* received_header(const io_uring_cqe& cqe) noexcept;
  void flush(Socket& socket) noexcept;
  void prepare(SendSlot& entry, std::size_t size, const UdpRoute& route) noexcept;

  std::vector<Socket> sockets_;
  ProvidedBuffers buffers_{buffers_count, buffer_size, buffer_group};
  std::vector<SendSlot> send_slots_;
  std::vector<std::uint32_t> free_send_slots_;
  UdpCounters counters_;
  UdpSendMode send_mode_ = UdpSendMode::uring;
};

}  // namespace tyto::net
