#include "tyto/net/udp_socket.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tyto/core/assert.hpp"

namespace tyto::net {

namespace {

constexpr std::size_t receive_control_size = 64;  // fits IP_PKTINFO and IPV6_PKTINFO
// The name area is sized to a multiple of 8 so the control messages after it stay aligned.
constexpr std::size_t receive_name_size = (sizeof(sockaddr_in6) + 7) / 8 * 8;
static_assert((sizeof(io_uring_recvmsg_out) + receive_name_size) % alignof(cmsghdr) == 0);
static_assert(CMSG_SPACE(sizeof(in6_pktinfo)) <= receive_control_size);
static_assert(CMSG_SPACE(sizeof(in_pktinfo)) <= receive_control_size);
// A buffer holds the recvmsg header, the source name, the control data and the payload; the
// largest valid request (a 74-hash scrape, 1496 bytes) must fit. Larger datagrams are dropped.
static_assert(sizeof(io_uring_recvmsg_out) + receive_name_size + receive_control_size +
                  limits::udp_scrape_request_header_size +
                  limits::info_hash_size * limits::udp_scrape_hashes_max <=
              UdpSockets::buffer_size);

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

int set_option(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

}  // namespace

UdpSockets::~UdpSockets() {
  for (Socket& socket : sockets_) {
    if (socket.fd >= 0) close(socket.fd);
  }
}

std::string UdpSockets::bind(std::span<const SocketAddress> listen_addresses) {
  for (const SocketAddress& address : listen_addresses) {
    Socket socket;
    socket.family = address.family();
    socket.fd = ::socket(socket.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (socket.fd < 0) return errno_text("socket");
    sockets_.push_back(socket);
    const int fd = socket.fd;
    if (set_option(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0) return errno_text("SO_REUSEPORT");
    // Larger socket buffers absorb bursts between loop turns (capped by net.core.rmem_max).
    set_option(fd, SOL_SOCKET, SO_RCVBUF, 8 << 20);
    set_option(fd, SOL_SOCKET, SO_SNDBUF, 8 << 20);
    // [::] and 0.0.0.0 are separate listeners: no IPv4-mapped traffic on IPv6 sockets.
    if (socket.family == AF_INET6 && set_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) != 0) {
      return errno_text("IPV6_V6ONLY");
    }
    // A wildcard socket learns which local address each request came to (PKTINFO), so its
    // reply leaves from that address. A socket bound to one address always replies from it:
    // it asks for nothing, and its replies carry no control message (less kernel work per
    // datagram both ways).
    const bool wants_local_address = address.is_wildcard();
    if (wants_local_address && socket.family == AF_INET6 &&
        set_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) != 0) {
      return errno_text("IPV6_RECVPKTINFO");
    }
    if (wants_local_address && socket.family == AF_INET &&
        set_option(fd, IPPROTO_IP, IP_PKTINFO, 1) != 0) {
      return errno_text("IP_PKTINFO");
    }
    if (::bind(fd, address.get(), address.size) != 0) {
      return errno_text(("bind " + address.to_string()).c_str());
    }
    Socket& stored = sockets_.back();
    stored.receive_header.msg_namelen = receive_name_size;
    stored.receive_header.msg_controllen = receive_control_size;
  }
  return {};
}

std::string UdpSockets::open(Ring& ring) {
  if (std::string error = buffers_.register_with(ring); !error.empty()) return error;

  send_slots_.resize(send_slots_count);
  for (Socket& socket : sockets_) socket.staged.reserve(send_slots_count);
  free_send_slots_.reserve(send_slots_count);
  for (std::uint32_t slot = send_slots_count; slot-- > 0;) free_send_slots_.push_back(slot);
  return {};
}

void UdpSockets::arm(Ring& ring, std::uint32_t socket_index) noexcept {
  TYTO_ASSERT(socket_index < sockets_.size());
  Socket& socket = sockets_[socket_index];
  io_uring_sqe* entry = ring.sqe();
  io_uring_prep_recvmsg_multishot(entry, socket.fd, &socket.receive_header, 0);
  entry->flags |= IOSQE_BUFFER_SELECT;
  entry->buf_group = buffers_.group();
  io_uring_sqe_set_data64(entry, pack_user_data(Op::udp_recv, socket_index));
}

void UdpSockets::arm_all(Ring& ring) noexcept {
  for (std::uint32_t i = 0; i < sockets_.size(); ++i) arm(ring, i);
}

std::optional<Datagram> UdpSockets::receive(Ring& ring, const io_uring_cqe& cqe) noexcept {
  const auto socket_index = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  TYTO_ASSERT(socket_index < sockets_.size());
  if (!(cqe.flags & IORING_CQE_F_MORE)) {  // the multishot ended (error, ENOBUFS, ...): re-arm
    ++counters_.receive_rearms;
    arm(ring, socket_index);
  }
  if (cqe.res < 0) {
    if (cqe.res == -ENOBUFS) ++counters_.dropped_no_buffer;
    return std::nullopt;
  }
  if (!(cqe.flags & IORING_CQE_F_BUFFER)) return std::nullopt;
  Socket& socket = sockets_[socket_index];
  auto* out = received_header(cqe);
  if (out == nullptr) {
    ++counters_.dropped_truncated;
    return std::nullopt;
  }
  ++counters_.datagrams_received;
  if (out->flags & MSG_TRUNC) {
    ++counters_.dropped_truncated;
    return std::nullopt;
  }
  Datagram datagram;
  const auto* name = static_cast<const sockaddr*>(io_uring_recvmsg_name(out));
  const socklen_t name_size = out->namelen;
  const auto source = endpoint_of(name, std::min<socklen_t>(name_size, sizeof(sockaddr_in6)));
  if (!source || name_size > sizeof(sockaddr_in6) || name->sa_family != socket.family) {
    ++counters_.dropped_bad_source;
    return std::nullopt;
  }
  datagram.source = *source;
  std::memcpy(&datagram.route.peer, name, name_size);
  datagram.route.peer_family = static_cast<std::uint16_t>(socket.family);
  datagram.route.listener = static_cast<std::uint16_t>(socket_index);
  for (cmsghdr* control = io_uring_recvmsg_cmsg_firsthdr(out, &socket.receive_header);
       control != nullptr;
       control = io_uring_recvmsg_cmsg_nexthdr(out, &socket.receive_header, control)) {
    if (control->cmsg_level == IPPROTO_IP && control->cmsg_type == IP_PKTINFO &&
        control->cmsg_len >= CMSG_LEN(sizeof(in_pktinfo))) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(control), sizeof info);
      std::memcpy(&datagram.route.local_address, &info.ipi_addr, sizeof info.ipi_addr);
      datagram.route.has_local_address = true;
    } else if (control->cmsg_level == IPPROTO_IPV6 && control->cmsg_type == IPV6_PKTINFO &&
               control->cmsg_len >= CMSG_LEN(sizeof(in6_pktinfo))) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(control), sizeof info);
      datagram.route.local_address = info.ipi6_addr;
      datagram.route.local_ifindex = info.ipi6_ifindex;
      datagram.route.has_local_address = true;
    }
  }
  const auto* payload =
      static_cast<const std::uint8_t*>(io_uring_recvmsg_payload(out, &socket.receive_header));
  const std::uint32_t payload_size =
      io_uring_recvmsg_payload_length(out, cqe.res, &socket.receive_header);
  counters_.bytes_received += payload_size;
  datagram.payload = {payload, payload_size};
  return datagram;
}

io_uring_recvmsg_out* UdpSockets::received_header(const io_uring_cqe& cqe) noexcept {
  const auto socket_index = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  if (cqe.res < 0 || !(cqe.flags & IORING_CQE_F_BUFFER) || socket_index >= sockets_.size()) {
    return nullptr;
  }
  const std::uint32_t buffer_id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
  return io_uring_recvmsg_validate(buffers_.address(buffer_id), cqe.res,
                                   &sockets_[socket_index].receive_header);
}

void UdpSockets::recycle(const io_uring_cqe& cqe) noexcept {
  if (!(cqe.flags & IORING_CQE_F_BUFFER)) return;
  const std::uint32_t buffer_id = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
  buffers_.give_back(buffer_id);
}

std::optional<std::uint32_t> UdpSockets::acquire_send_slot() noexcept {
  if (free_send_slots_.empty()) {
    ++counters_.dropped_no_send_slot;
    return std::nullopt;
  }
  const std::uint32_t slot = free_send_slots_.back();
  free_send_slots_.pop_back();
  return slot;
}

std::span<std::uint8_t> UdpSockets::send_buffer(std::uint32_t slot) noexcept {
  TYTO_ASSERT(slot < send_slots_.size());
  return send_slots_[slot].payload;
}

void UdpSockets::release_send_slot(std::uint32_t slot) noexcept {
  TYTO_ASSERT(slot < send_slots_.size());
  TYTO_ASSERT(free_send_slots_.size() < send_slots_count);
  free_send_slots_.push_back(slot);
}

void UdpSockets::prepare(SendSlot& entry, std::size_t size, const UdpRoute& route) noexcept {
  entry.peer = route.peer;
  entry.vector = {entry.payload, size};
  entry.header = {};
  entry.header.msg_name = &entry.peer;
  entry.header.msg_namelen =
      route.peer_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  entry.header.msg_iov = &entry.vector;
  entry.header.msg_iovlen = 1;
  if (route.has_local_address) {
    // Reply from the address the client used, even on a wildcard-bound socket.
    entry.header.msg_control = entry.control;
    cmsghdr* control = reinterpret_cast<cmsghdr*>(entry.control);
    if (route.peer_family == AF_INET) {
      entry.header.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
      control->cmsg_level = IPPROTO_IP;
      control->cmsg_type = IP_PKTINFO;
      control->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo info{};
      std::memcpy(&info.ipi_spec_dst, &route.local_address, sizeof info.ipi_spec_dst);
      std::memcpy(CMSG_DATA(control), &info, sizeof info);
    } else {
      entry.header.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
      control->cmsg_level = IPPROTO_IPV6;
      control->cmsg_type = IPV6_PKTINFO;
      control->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
      in6_pktinfo info{};
      info.ipi6_addr = route.local_address;
      info.ipi6_ifindex = route.local_ifindex;
      std::memcpy(CMSG_DATA(control), &info, sizeof info);
    }
  }
}

void UdpSockets::send(Ring& ring, std::uint32_t slot, std::size_t size,
                      const UdpRoute& route) noexcept {
  TYTO_ASSERT(slot < send_slots_.size());
  TYTO_ASSERT(size <= limits::udp_reply_size_max);
  TYTO_ASSERT(route.listener < sockets_.size());
  Socket& socket = sockets_[route.listener];
  TYTO_ASSERT(socket.family == route.peer_family);
  prepare(send_slots_[slot], size, route);
  if (send_mode_ == UdpSendMode::sendmmsg) {
    socket.staged.push_back(slot);  // capacity reserved for every slot: no allocation
    if (socket.staged.size() >= sendmmsg_batch_max) flush(socket);
    return;
  }
  io_uring_sqe* sqe = ring.sqe();
  SendSlot& entry = send_slots_[slot];
  if (entry.header.msg_controllen == 0) {
    // No control message: a SEND with the destination (Linux >= 6.1), which spares the kernel
    // copying in a msghdr and an iovec.
    io_uring_prep_send(sqe, socket.fd, entry.payload, size, 0);
    io_uring_prep_send_set_addr(sqe, static_cast<const sockaddr*>(entry.header.msg_name),
                                static_cast<std::uint16_t>(entry.header.msg_namelen));
  } else {
    io_uring_prep_sendmsg(sqe, socket.fd, &entry.header, 0);
  }
  io_uring_sqe_set_data64(sqe, pack_user_data(Op::udp_send, slot));
}

void UdpSockets::flush() noexcept {
  for (Socket& socket : sockets_) flush(socket);
}

void UdpSockets::flush(Socket& socket) noexcept {
  mmsghdr batch[sendmmsg_batch_max];
  for (std::size_t done = 0; done < socket.staged.size();) {
    const std::size_t count = std::min(sendmmsg_batch_max, socket.staged.size() - done);
    for (std::size_t i = 0; i < count; ++i) {
      batch[i].msg_hdr = send_slots_[socket.staged[done + i]].header;
      batch[i].msg_len = 0;
    }
    const int sent = sendmmsg(socket.fd, batch, static_cast<unsigned>(count), MSG_DONTWAIT);
    if (sent <= 0) {  // the batch was refused (full socket buffer): dropped, counted, never block
      counters_.send_errors += count;
      done += count;
      continue;
    }
    for (int i = 0; i < sent; ++i) counters_.bytes_sent += batch[i].msg_len;
    counters_.datagrams_sent += static_cast<std::uint64_t>(sent);
    done += static_cast<std::size_t>(sent);  // a partial batch: the rest goes in the next call
  }
  for (std::uint32_t slot : socket.staged) release_send_slot(slot);
  socket.staged.clear();
}

void UdpSockets::sent(const io_uring_cqe& cqe) noexcept {
  const auto slot = static_cast<std::uint32_t>(user_data_index(cqe.user_data));
  if (cqe.res < 0) {
    ++counters_.send_errors;
  } else {
    ++counters_.datagrams_sent;
    counters_.bytes_sent += static_cast<std::uint64_t>(cqe.res);
  }
  release_send_slot(slot);
}

}  // namespace tyto::net
