// The steering program run by the kernel itself: sockets in one reuseport group, datagrams sent
// to it, and each announce must arrive on the socket whose index is shard_of(its info_hash).
#include "tyto/net/steering.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "tyto/core/limits.hpp"

namespace tyto::net {
namespace {

class ReuseportGroup {
 public:
  explicit ReuseportGroup(std::uint32_t count) {
    for (std::uint32_t i = 0; i < count; ++i) {
      const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = port_;  // 0 for the first socket: the kernel picks, the rest follow
      EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
      socklen_t size = sizeof address;
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
      port_ = address.sin_port;
      fds_.push_back(fd);
    }
  }
  ~ReuseportGroup() {
    for (int fd : fds_) close(fd);
  }
  int fd(std::uint32_t i) const { return fds_[i]; }
  std::uint16_t port() const { return port_; }  // network order
  std::uint32_t size() const { return static_cast<std::uint32_t>(fds_.size()); }

  // Which socket the next datagram is waiting on (waits up to a second); -1 if none. Reads it.
  int receive_one(std::vector<std::uint8_t>& payload) const {
    std::vector<pollfd> polls;
    for (int fd : fds_) polls.push_back({fd, POLLIN, 0});
    if (poll(polls.data(), polls.size(), 1000) <= 0) return -1;
    for (std::uint32_t i = 0; i < size(); ++i) {
      if ((polls[i].revents & POLLIN) == 0) continue;
      payload.resize(2048);
      const ssize_t got = recv(fds_[i], payload.data(), payload.size(), 0);
      if (got < 0) return -1;
      payload.resize(static_cast<std::size_t>(got));
      return static_cast<int>(i);
    }
    return -1;
  }

 private:
  std::vector<int> fds_;
  std::uint16_t port_ = 0;
};

std::vector<std::uint8_t> announce(const InfoHash& info_hash, std::size_t size) {
  std::vector<std::uint8_t> packet(size, 0);
  packet[11] = 1;  // action announce, big-endian at offset 8
  std::memcpy(packet.data() + 16, info_hash.bytes.data(), sizeof info_hash.bytes);
  return packet;
}

void send_to(int client, std::uint16_t port, const std::vector<std::uint8_t>& packet) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = port;
  ASSERT_EQ(
      sendto(client, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
      static_cast<ssize_t>(packet.size()));
}

TEST(AnnounceSteering, EachAnnounceReachesTheSocketOfItsShard) {
  constexpr std::uint32_t shards = 3;
  ReuseportGroup group(shards);
  const ShardKey key = ShardKey::from_seed(7);
  ASSERT_EQ(attach_announce_steering(group.fd(0), key, shards), "");
  const int client = socket(AF_INET, SOCK_DGRAM, 0);
  std::mt19937_64 random(11);
  std::vector<std::uint32_t> per_socket(shards, 0);
  std::vector<std::uint8_t> payload;
  for (int n = 0; n < 300; ++n) {
    InfoHash info_hash;
    for (auto& byte : info_hash.bytes) byte = static_cast<std::uint8_t>(random());
    // The shortest announce and one with BEP 41 URL data behind it.
    send_to(client, group.port(), announce(info_hash, n % 2 == 0 ? 98 : 140));
    const int socket_index = group.receive_one(payload);
    ASSERT_GE(socket_index, 0) << "announce " << n << " lost";
    ASSERT_EQ(static_cast<std::uint32_t>(socket_index), shard_of(info_hash, key, shards))
        << "announce " << n;
    ++per_socket[static_cast<std::uint32_t>(socket_index)];
  }
  // One client address and port, yet every socket got its swarms' announces: not the 4-tuple.
  for (std::uint32_t count : per_socket) EXPECT_GT(count, 50u);
  close(client);
}

TEST(AnnounceSteering, EverythingElseFallsBackToTheKernelHash) {
  constexpr std::uint32_t shards = 4;
  ReuseportGroup group(shards);
  ASSERT_EQ(attach_announce_steering(group.fd(0), ShardKey::from_seed(3), shards), "");
  std::vector<std::uint8_t> payload;
  // From one client, connects, scrapes, short announces and tiny datagrams all follow the
  // 4-tuple hash: one socket for all of them (a program that returned an index, or 0 after a
  // load past the end, would scatter them or pin them to socket 0 only by chance).
  std::vector<std::vector<std::uint8_t>> packets;
  packets.push_back(std::vector<std::uint8_t>(16, 0));  // connect
  std::vector<std::uint8_t> scrape(16 + 20 * 3, 0xab);
  scrape[8] = scrape[9] = scrape[10] = 0;
  scrape[11] = 2;
  packets.push_back(scrape);
  packets.push_back(announce(InfoHash{}, limits::udp_announce_request_size - 1));  // short
  packets.push_back(std::vector<std::uint8_t>(3, 1));
  packets.push_back({});
  std::vector<int> landed;
  for (int client_number = 0; client_number < 8; ++client_number) {
    const int client = socket(AF_INET, SOCK_DGRAM, 0);
    int first = -1;
    for (const auto& packet : packets) {
      send_to(client, group.port(), packet);
      const int socket_index = group.receive_one(payload);
      ASSERT_GE(socket_index, 0);
      EXPECT_EQ(payload.size(), packet.size());
      if (first < 0) first = socket_index;
      EXPECT_EQ(socket_index, first) << "one client's non-announces took different sockets";
    }
    landed.push_back(first);
    close(client);
  }
  // Eight clients (eight source ports) did not all land on socket 0.
  EXPECT_NE(std::count(landed.begin(), landed.end(), 0), 8);
}

TEST(AnnounceSteering, ProgramShapeHoldsForAnyShardCount) {
  for (std::uint32_t shards : {1u, 2u, 7u, 64u}) {
    const auto program = announce_steering_program(ShardKey::from_seed(shards), shards);
    ASSERT_EQ(program.size(), 26u);
    EXPECT_EQ(program.back().code, BPF_RET | BPF_K);
    EXPECT_EQ(program.back().k, 0xffffffffu);
    EXPECT_EQ(program[program.size() - 3].k, shards);  // the modulus
  }
}

}  // namespace
}  // namespace tyto::net
