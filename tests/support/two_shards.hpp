// Helpers for tests that run a real Runtime of two shards on loopback: free ports, connected
// client sockets, and swarms picked so that both shards own some (the shard key is random per
// run, so a fixed list of info_hashes could all land on one shard).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "tyto/core/bytes.hpp"
#include "tyto/proto/udp.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::testing {

// A port nothing listens on right now (bound to 0, read back, closed).
inline std::uint16_t free_port(int type) {
  const int probe = socket(AF_INET, type, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size);
  close(probe);
  return ntohs(address.sin_port);
}

// A socket connected to 127.0.0.1:port, with a 5 s receive timeout.
inline int client_socket(int type, std::uint16_t port) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

// recv(2), again when a signal interrupted it (io_uring's task work may signal any thread that
// submitted to a ring, and a real client retries too).
inline ssize_t receive(int fd, void* buffer, std::size_t size) {
  ssize_t got;
  do {
    got = recv(fd, buffer, size, 0);
  } while (got < 0 && errno == EINTR);
  return got;
}

// Two shards on the first allowed CPU, UDP and HTTP on 127.0.0.1 at the given ports.
inline shard::RuntimeConfig two_shards(std::uint16_t udp_port, std::uint16_t http_port) {
  shard::RuntimeConfig config;
  config.cores = {shard::allowed_cpus()[0], shard::allowed_cpus()[0]};
  config.shard.udp_listeners = {
      *net::parse_socket_address("127.0.0.1:" + std::to_string(udp_port))};
  config.shard.http_listeners = {
      *net::parse_socket_address("127.0.0.1:" + std::to_string(http_port))};
  config.shard.http_connections_max = 64;
  return config;
}

// `count` info_hashes (count even), owned alternately by shard 0 and shard 1.
inline std::vector<InfoHash> swarms_on_both_shards(const shard::Runtime& runtime,
                                                   std::size_t count) {
  std::vector<InfoHash> picked;
  for (std::uint32_t n = 0; picked.size() < count; ++n) {
    InfoHash hash;
    for (std::size_t i = 0; i < hash.bytes.size(); ++i)
      hash.bytes[i] = static_cast<std::uint8_t>((n >> (8 * (i % 4))) * 31 + i);
    if (runtime.owner_of(hash) == picked.size() % 2) picked.push_back(hash);
  }
  return picked;
}

// BEP 15 client requests, as a client writes them.
inline std::array<std::uint8_t, 16> udp_connect_request(std::uint32_t transaction_id) {
  std::array<std::uint8_t, 16> request{};
  ByteWriter out(request);
  out.u64(proto::udp::protocol_id);
  out.u32(0);
  out.u32(transaction_id);
  return request;
}

// An announce of the peer at the sender's address and `port` (event: BEP 15's numbers).
inline std::array<std::uint8_t, limits::udp_announce_request_size> udp_announce_request(
    std::uint64_t connection_id, std::uint32_t transaction_id, const InfoHash& info_hash,
    std::uint16_t port, std::uint64_t left_bytes, std::int32_t numwant = 50,
    AnnounceEvent event = AnnounceEvent::none) {
  std::array<std::uint8_t, limits::udp_announce_request_size> request{};
  ByteWriter out(request);
  out.u64(connection_id);
  out.u32(1);
  out.u32(transaction_id);
  out.bytes(info_hash.bytes);
  for (int i = 0; i < 20; ++i) out.u8(static_cast<std::uint8_t>(port + i));  // peer_id
  out.u64(0);                                                                // downloaded
  out.u64(left_bytes);
  out.u64(0);  // uploaded
  out.u32(static_cast<std::uint32_t>(event));
  out.u32(0);  // ip
  out.u32(0);  // key
  out.i32(numwant);
  out.u16(port);
  TYTO_ASSERT(out.ok() && out.remaining() == 0);
  return request;
}

}  // namespace tyto::testing
