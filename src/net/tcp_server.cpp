#include "tyto/net/tcp_server.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tyto/core/assert.hpp"

namespace tyto::net {

namespace {
std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}
}  // namespace

TcpServer::~TcpServer() {
  for (Listener& listener : listeners_) {
    if (listener.fd >= 0) ::close(listener.fd);
  }
  for (Connection& connection : connections_) {
    // A linked close may have run already: its number may belong to another shard by now.
    if (connection.fd >= 0 && !connection.close_in_flight) ::close(connection.fd);
    if (connection.input != nullptr) arena_.deallocate(connection.input, input_size_max);
    if (connection.output != nullptr) arena_.deallocate(connection.output, output_size_max);
  }
}

std::string TcpServer::open(Ring& ring, std::span<const SocketAddress> listen_addresses,
                            std::uint32_t connections_max) {
  TYTO_ASSERT(connections_max > 0 && connections_max < (1u << 24));
  for (const SocketAddress& address : listen_addresses) {
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_text("socket");
    listeners_.push_back({fd});
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      return errno_text("SO_REUSEPORT");
    }
    if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    // Accepted sockets inherit it: one syscall fewer per connection.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Accept once the first bytes are in (nginx's "deferred"): the single-shot first receive
    // then completes inline instead of arming a poll and waiting for a wake-up. A client silent
    // for 1 s is accepted all the same, when it answers the SYN-ACK the kernel sends again.
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
    if (bind(fd, address.get(), address.size) != 0)
      return errno_text("bind " + address.to_string());
    if (listen(fd, 4096) != 0) return errno_text("listen " + address.to_string());
  }
  if (std::string error = buffers_.register_with(ring); !error.empty()) return error;
  connections_.resize(connections_max);
  free_connections_.reserve(connections_max);
  for (std::uint32_t i = connections_max; i-- > 0;) free_connections_.push_back(i);
  return {};
}

void TcpServer::arm_all(Ring& ring) noexcept {
  for (std::uint32_t i = 0; i < listeners_.size(); ++i) arm_accept(ring, i);
}

void TcpServer::arm_accept(Ring& ring, std::uint32_t listener) noexcept {
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_multishot_accept(sqe, listeners_[listener].fd, nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::tcp_accept, listener));
}

void TcpServer::arm_receive(Ring& ring, std::uint32_t index, bool multishot) noexcept {
  Connection& connection = connections_[index];
  TYTO_ASSERT(!connection.receive_armed && !connection.close_in_flight);
  io_uring_sqe* sqe = ring.sqe();
  if (multishot) {
    io_uring_prep_recv_multishot(sqe, connection.fd, nullptr, 0, 0);
  } else {
    io_uring_prep_recv(sqe, connection.fd, nullptr, 0, 0);
  }
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = buffers_.group();
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::tcp_recv, index));
  connection.receive_armed = true;
}

void TcpServer::on_accept(Ring& ring, const io_uring_cqe& cqe, std::uint32_t now_s) noexcept {
  const auto listener = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  TYTO_ASSERT(listener < listeners_.size());
  if (!(cqe.flags & IORING_CQE_F_MORE)) arm_accept(ring, listener);
  if (cqe.res < 0) return;
  const int fd = cqe.res;
  if (free_connections_.empty()) {
    ++counters_.refused_full;
    ::close(fd);
    return;
  }
  sockaddr_storage address{};
  socklen_t address_size = sizeof address;
  std::optional<PeerEndpoint> peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &address_size) == 0) {
    peer = endpoint_of(reinterpret_cast<sockaddr*>(&address), address_size);
  }
  if (!peer) {
    ::close(fd);
    return;
  }
  const std::uint32_t index = free_connections_.back();
  free_connections_.pop_back();
  Connection& connection = connections_[index];
  TYTO_ASSERT(connection.fd < 0 && !connection.receive_armed && !connection.send_in_flight);
  TYTO_ASSERT(!connection.close_in_flight);
  connection.fd = fd;
  connection.peer = *peer;
  connection.last_active_s = now_s;
  connection.closing = false;
  connection.close_after_flush = false;
  connection.draining = false;
  connection.client_done = false;
  ++open_count_;
  ++counters_.accepted;
  // Single-shot: if this first input is the client's only request, no receive is left armed
  // when the answer goes, and the close can follow the send at once (send_and_close).
  arm_receive(ring, index, false);
}

std::optional<ConnectionRef> TcpServer::on_receive(Ring& ring, const io_uring_cqe& cqe,
                                                   std::uint32_t now_s) noexcept {
  const auto index = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  TYTO_ASSERT(index < connections_.size());
  Connection& connection = connections_[index];
  const bool has_buffer = cqe.flags & IORING_CQE_F_BUFFER;
  const std::uint32_t buffer_id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
  const bool more = cqe.flags & IORING_CQE_F_MORE;
  if (!more) connection.receive_armed = false;
  const ConnectionRef ref{index, connection.generation};
  std::optional<ConnectionRef> result;
  if (connection.closing) {
    // Already closed for the shard: only bookkeeping.
  } else if (connection.draining) {
    // Answered and half-closed: what still arrives is discarded until the peer's FIN (or
    // drain_timeout_s), so unread bytes do not turn the close into a reset that loses the answer.
    if (cqe.res > 0) {
      counters_.bytes_received += static_cast<std::uint32_t>(cqe.res);
    } else if (!more) {
      close(ring, ref);
    }
  } else if (cqe.res > 0 && has_buffer) {
    const auto size = static_cast<std::uint32_t>(cqe.res);
    counters_.bytes_received += size;
    connection.last_active_s = now_s;
    if (size > input_size_max - connection.input_size) {
      ++counters_.closed_input_overflow;
      close(ring, ref);
    } else {
      if (connection.input == nullptr) {
        connection.input = static_cast<std::uint8_t*>(arena_.allocate(input_size_max));
      }
      std::memcpy(connection.input + connection.input_size, buffers_.address(buffer_id), size);
      connection.input_size += size;
      result = ref;
    }
  } else if (cqe.res == -ENOBUFS) {
    ++counters_.receive_no_buffer;  // re-armed below; the data waits in the socket
  } else if (!more) {
    close(ring, ref);  // EOF or error
  }
  if (has_buffer) buffers_.give_back(buffer_id);
  if (connection.fd < 0) return result;  // close() already released the slot
  if (connection.closing) {
    release(ring, index);
    return result;
  }
  // With new input the caller looks at it first and then calls receive_more (which knows
  // whether more can come); without, the receive goes on at once.
  if (!more && !connection.receive_armed && !result) arm_receive(ring, index, true);
  return result;
}

void TcpServer::on_send(Ring& ring, const io_uring_cqe& cqe) noexcept {
  const auto index = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  TYTO_ASSERT(index < connections_.size());
  Connection& connection = connections_[index];
  TYTO_ASSERT(connection.send_in_flight);
  connection.send_in_flight = false;
  if (connection.closing) {
    release(ring, index);
    return;
  }
  const ConnectionRef ref{index, connection.generation};
  if (cqe.res < 0) {
    ++counters_.send_errors;
    close(ring, ref);
    return;
  }
  counters_.bytes_sent += static_cast<std::uint64_t>(cqe.res);
  connection.output_sent += static_cast<std::uint32_t>(cqe.res);
  TYTO_ASSERT(connection.output_sent <= connection.output_size);
  if (connection.output_sent < connection.output_size) {
    start_send(ring, index);  // partial send, or more output appended meanwhile
    return;
  }
  connection.output_size = 0;
  connection.output_sent = 0;
  arena_.deallocate(connection.output, output_size_max);
  connection.output = nullptr;
  if (connection.close_after_flush) finish(ring, ref);
}

void TcpServer::receive_more(Ring& ring, ConnectionRef ref) noexcept {
  Connection* connection = get(ref);
  if (connection == nullptr || connection->receive_armed || connection->close_in_flight) return;
  // Nothing more comes from a client that is done; left-over input breaks its promise, so
  // that connection is drained like any other.
  if (connection->client_done && connection->input_size == 0) return;
  arm_receive(ring, ref.index, true);
}

void TcpServer::client_done(ConnectionRef ref) noexcept {
  Connection* connection = get(ref);
  TYTO_ASSERT(connection != nullptr);
  connection->client_done = true;
}

void TcpServer::finish(Ring& ring, ConnectionRef ref) noexcept {
  Connection* connection = get(ref);
  if (connection == nullptr) return;
  if (!connection->receive_armed || connection->draining) {
    close(ring, ref);
    return;
  }
  // Our FIN goes after the answer. A system call: the ring's SHUTDOWN always goes through a
  // kernel worker thread (it cannot run without blocking), which costs more.
  shutdown(connection->fd, SHUT_WR);
  connection->draining = true;
  if (connection->input != nullptr) arena_.deallocate(connection->input, input_size_max);
  connection->input = nullptr;
  connection->input_size = 0;
}

TcpServer::Connection* TcpServer::get(ConnectionRef ref) noexcept {
  if (ref.index >= connections_.size()) return nullptr;
  Connection& connection = connections_[ref.index];
  if (connection.fd < 0 || connection.closing || connection.generation != ref.generation) {
    return nullptr;
  }
  return &connection;
}

const TcpServer::Connection* TcpServer::get(ConnectionRef ref) const noexcept {
  return const_cast<TcpServer*>(this)->get(ref);
}

bool TcpServer::alive(ConnectionRef ref) const noexcept {
  return get(ref) != nullptr;
}

bool TcpServer::serving(ConnectionRef ref) const noexcept {
  const Connection* connection = get(ref);
  return connection != nullptr && !connection->close_after_flush;
}

std::span<const std::uint8_t> TcpServer::input(ConnectionRef ref) const noexcept {
  const Connection* connection = get(ref);
  if (connection == nullptr || connection->input == nullptr) return {};
  return {connection->input, connection->input_size};
}

void TcpServer::consume_input(ConnectionRef ref, std::size_t size) noexcept {
  Connection* connection = get(ref);
  TYTO_ASSERT(connection != nullptr && size <= connection->input_size);
  const std::size_t rest = connection->input_size - size;
  if (rest == 0) {
    arena_.deallocate(connection->input, input_size_max);
    connection->input = nullptr;
  } else {
    std::memmove(connection->input, connection->input + size, rest);
  }
  connection->input_size = static_cast<std::uint32_t>(rest);
}

const PeerEndpoint& TcpServer::peer(ConnectionRef ref) const noexcept {
  const Connection* connection = get(ref);
  TYTO_ASSERT(connection != nullptr);
  return connection->peer;
}

std::span<std::uint8_t> TcpServer::output_space(ConnectionRef ref, std::size_t size) noexcept {
  Connection* connection = get(ref);
  if (connection == nullptr || size > output_size_max - connection->output_size) return {};
  if (connection->output == nullptr) {
    connection->output = static_cast<std::uint8_t*>(arena_.allocate(output_size_max));
  }
  return {connection->output + connection->output_size, size};
}

void TcpServer::commit_output(ConnectionRef ref, std::size_t size) noexcept {
  Connection* connection = get(ref);
  TYTO_ASSERT(connection != nullptr && connection->output != nullptr);
  TYTO_ASSERT(size <= output_size_max - connection->output_size);
  connection->output_size += static_cast<std::uint32_t>(size);
}

std::size_t TcpServer::output_room(ConnectionRef ref) const noexcept {
  const Connection* connection = get(ref);
  return connection == nullptr ? 0 : output_size_max - connection->output_size;
}

void TcpServer::start_send(Ring& ring, std::uint32_t index) noexcept {
  Connection& connection = connections_[index];
  TYTO_ASSERT(!connection.send_in_flight && connection.output_sent < connection.output_size);
  // The client's last request answered, nothing unread and no receive holding the socket: a
  // plain close after the answer loses nothing (no unread bytes, so a FIN, not a reset).
  if (connection.close_after_flush && connection.client_done && !connection.receive_armed &&
      connection.input_size == 0 && !connection.draining) {
    send_and_close(ring, index);
    return;
  }
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_send(sqe, connection.fd, connection.output + connection.output_sent,
                     connection.output_size - connection.output_sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::tcp_send, index));
  connection.send_in_flight = true;
}

void TcpServer::send_and_close(Ring& ring, std::uint32_t index) noexcept {
  Connection& connection = connections_[index];
  const std::uint32_t size = connection.output_size - connection.output_sent;
  // Both entries in one submission: a submission ending after the send would end its link.
  ring.reserve(2);
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_send(sqe, connection.fd, connection.output + connection.output_sent, size,
                     MSG_NOSIGNAL | MSG_WAITALL | MSG_MORE);
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::tcp_send, index));
  sqe->flags |= IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS;
  sqe = ring.sqe();
  io_uring_prep_close(sqe, connection.fd);
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::tcp_close, index));
  connection.send_in_flight = true;
  connection.close_in_flight = true;
  counters_.bytes_sent += size;  // the send's own completion comes only when it fails
  ++counters_.closed_linked;
  mark_closed(connection);
}

void TcpServer::on_close(Ring& ring, const io_uring_cqe& cqe) noexcept {
  const auto index = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  TYTO_ASSERT(index < connections_.size());
  Connection& connection = connections_[index];
  TYTO_ASSERT(connection.close_in_flight && connection.closing && !connection.receive_armed);
  connection.close_in_flight = false;
  connection.send_in_flight = false;  // done: a failed send posts its completion before this
  if (cqe.res < 0) {
    // Not run (cancelled): the descriptor is still ours to close.
    io_uring_sqe* sqe = ring.sqe();
    io_uring_prep_close(sqe, connection.fd);
    io_uring_sqe_set_data64(sqe, pack_user_data(Op::none, index));
  }
  free_slot(index);
}

void TcpServer::flush(Ring& ring, ConnectionRef ref, bool close_after) noexcept {
  Connection* connection = get(ref);
  if (connection == nullptr || connection->draining) return;
  connection->close_after_flush |= close_after;
  if (connection->send_in_flight) return;  // on_send continues with what was appended
  if (connection->output_sent < connection->output_size) {
    start_send(ring, ref.index);
  } else if (connection->close_after_flush) {
    finish(ring, ref);
  }
}

void TcpServer::mark_closed(Connection& connection) noexcept {
  connection.closing = true;
  ++connection.generation;  // the shard's references to it go stale now
  ++counters_.closed;
  --open_count_;
}

void TcpServer::close(Ring& ring, ConnectionRef ref) noexcept {
  Connection* connection = get(ref);
  if (connection == nullptr) return;
  mark_closed(*connection);
  // Ends the multishot receive (it completes with EOF); the fd is closed in release(). Without
  // one armed (the usual end: the client's FIN after our answer) there is nothing to end.
  if (connection->receive_armed) {
    shutdown(connection->fd, SHUT_RDWR);
    io_uring_sqe* sqe = ring.sqe();
    io_uring_prep_cancel64(sqe, pack_user_data(Op::tcp_recv, ref.index), 0);
    io_uring_sqe_set_data64(sqe, pack_user_data(Op::tcp_cancel, ref.index));
  }
  release(ring, ref.index);
}

void TcpServer::release(Ring& ring, std::uint32_t index) noexcept {
  Connection& connection = connections_[index];
  TYTO_ASSERT(connection.closing);
  // Completions pending (a linked close frees the slot itself, in on_close).
  if (connection.receive_armed || connection.send_in_flight || connection.close_in_flight) return;
  // A CLOSE in the ring, submitted with the turn's other entries instead of a system call of its
  // own (a socket has no flush, so it runs inline). The slot is free at once: the descriptor
  // stays taken until the close runs, and nothing else in the ring names it by number.
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_close(sqe, connection.fd);
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::none, index));
  free_slot(index);
}

void TcpServer::free_slot(std::uint32_t index) noexcept {
  Connection& connection = connections_[index];
  connection.fd = -1;
  if (connection.input != nullptr) arena_.deallocate(connection.input, input_size_max);
  if (connection.output != nullptr) arena_.deallocate(connection.output, output_size_max);
  connection.input = nullptr;
  connection.output = nullptr;
  connection.input_size = connection.output_size = connection.output_sent = 0;
  connection.closing = false;
  connection.draining = false;
  connection.client_done = false;
  free_connections_.push_back(index);
}

void TcpServer::close_idle(Ring& ring, std::uint32_t now_s, std::uint32_t idle_timeout_s) noexcept {
  arena_.trim();  // buffers of connections gone this second: their empty slabs go back
  for (std::uint32_t index = 0; index < connections_.size(); ++index) {
    Connection& connection = connections_[index];
    if (connection.fd < 0 || connection.closing) continue;
    // A half-closed connection only waits for the client's FIN: it gets a shorter grace, so
    // clients that never close cannot hold the connection table for the idle timeout.
    const std::uint32_t timeout_s =
        connection.draining ? std::min(idle_timeout_s, drain_timeout_s) : idle_timeout_s;
    if (now_s - connection.last_active_s > timeout_s) {
      ++counters_.closed_idle;
      close(ring, {index, connection.generation});
    }
  }
}

bool TcpServer::sends_idle() const noexcept {
  for (const Connection& connection : connections_) {
    if (connection.fd >= 0 && !connection.closing &&
        (connection.send_in_flight || connection.output_sent < connection.output_size)) {
      return false;
    }
  }
  return true;
}

}  // namespace tyto::net
