// Zero heap allocations per announce through the whole path (DESIGN §8): a Runtime of two shards
// on loopback, UDP and keep-alive HTTP announces parsed, routed (half of the swarms live on the
// other shard: forwards, lent buffers), applied and answered. Global operator new is replaced to
// count; after a warm-up that creates the swarms, peers and connection buffers, thousands more
// announces must not allocate at all. The test's client side allocates nothing while counting
// (fixed buffers, requests built during the warm-up).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <charconv>
#include <cstring>

#include <string>
#include <string_view>
#include <vector>

#include "support/counting_allocator.hpp"
#include "support/two_shards.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::shard {
namespace {

using testing::client_socket;
using testing::free_port;
using testing::receive;

constexpr std::uint32_t swarms_count = 16;
constexpr std::uint32_t peers_per_swarm = 8;

using UdpAnnounce = std::array<std::uint8_t, limits::udp_announce_request_size>;

// One UDP announce round trip; true when answered with action 1 (announce).
bool udp_round_trip(int fd, const UdpAnnounce& request) {
  std::uint8_t reply[1500];
  if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size()))
    return false;
  const ssize_t got = receive(fd, reply, sizeof reply);
  return got >= 20 && reply[3] == 1;
}

// One HTTP announce round trip on a keep-alive connection; true when a whole 200 response with a
// peer list came back.
bool http_round_trip(int fd, const std::string& request) {
  if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size()))
    return false;
  char reply[4096];
  std::size_t size = 0;
  while (size < sizeof reply) {
    const ssize_t got = receive(fd, reply + size, sizeof reply - size);
    if (got <= 0) return false;
    size += static_cast<std::size_t>(got);
    const std::string_view text(reply, size);
    const auto head_end = text.find("\r\n\r\n");
    const auto length_at = text.find("Content-Length: ");
    if (head_end == std::string_view::npos || length_at == std::string_view::npos) continue;
    std::size_t length = 0;
    std::from_chars(text.data() + length_at + 16, text.data() + head_end, length);
    if (size < head_end + 4 + length) continue;
    return text.starts_with("HTTP/1.1 200") && text.find("5:peers") != std::string_view::npos;
  }
  return false;
}

TEST(ShardAllocations, UdpAndHttpAnnouncesThroughTwoShardsAllocateNothing) {
  const std::uint16_t udp_port = free_port(SOCK_DGRAM);
  const std::uint16_t http_port = free_port(SOCK_STREAM);
  RuntimeConfig config = testing::two_shards(udp_port, http_port);
  config.shard.http_connections_max = 16;
  Runtime runtime(std::move(config));
  ASSERT_EQ(runtime.start(), "");

  // UDP: connect once, then build every announce (the connection id stays valid ≥ 2 minutes).
  const int udp = client_socket(SOCK_DGRAM, udp_port);
  const auto connect_request = testing::udp_connect_request(1);
  std::uint8_t connect_reply[16];
  ASSERT_EQ(send(udp, connect_request.data(), 16, 0), 16);
  ASSERT_EQ(receive(udp, connect_reply, 16), 16);
  std::uint64_t connection_id = 0;
  for (int i = 8; i < 16; ++i) connection_id = connection_id << 8 | connect_reply[i];
  std::vector<UdpAnnounce> udp_requests;
  std::vector<std::string> http_requests;
  for (const InfoHash& info_hash : testing::swarms_on_both_shards(runtime, swarms_count)) {
    std::string hash_text;
    for (std::uint8_t byte : info_hash.bytes) hash_text += fmt::format("%{:02x}", byte);
    for (std::uint32_t peer = 0; peer < peers_per_swarm; ++peer) {
      const UdpAnnounce request = testing::udp_announce_request(
          connection_id, peer, info_hash, static_cast<std::uint16_t>(6000 + peer), peer % 2);
      udp_requests.push_back(request);
      http_requests.push_back(fmt::format(
          "GET /announce?info_hash={}&peer_id=-TY0001-{:012}&port={}&uploaded=0&downloaded=0"
          "&left={}&compact=1 HTTP/1.1\r\nHost: t\r\n\r\n",
          hash_text, peer, 7000 + peer, peer % 2));
    }
  }
  const int http = client_socket(SOCK_STREAM, http_port);
  for (int round = 0; round < 3; ++round) {  // warm-up: swarms, peers, buffers, connection
    for (const auto& request : udp_requests) ASSERT_TRUE(udp_round_trip(udp, request));
    for (const auto& request : http_requests) ASSERT_TRUE(http_round_trip(http, request));
  }

  const std::uint64_t before = testing::allocations_count();
  std::uint32_t answered = 0;
  for (int round = 0; round < 20; ++round) {
    for (const auto& request : udp_requests) answered += udp_round_trip(udp, request);
    for (const auto& request : http_requests) answered += http_round_trip(http, request);
  }
  const std::uint64_t counted = testing::allocations_count() - before;
  EXPECT_EQ(answered, 20u * 2 * swarms_count * peers_per_swarm);
  EXPECT_EQ(counted, 0u);
  close(http);
  close(udp);
  runtime.stop();
  EXPECT_GT(runtime.totals().shard.announces_forwarded, 0u);
}

// With completed counts persisted (storage.uri not memory:): an announce that counts a
// completion also counts it in the owner's completion table and hands it to the storage
// bridge, allocating nothing. Nobody drains the bridge here, so its queue fills and the counts
// then wait, summed, in the tables: both paths are measured.
TEST(ShardAllocations, CountedCompletionsAllocateNothing) {
  const std::uint16_t udp_port = free_port(SOCK_DGRAM);
  const std::uint16_t http_port = free_port(SOCK_STREAM);
  RuntimeConfig config = testing::two_shards(udp_port, http_port);
  config.shard.completions_persisted = true;
  config.shard.completions_max = 1024;
  Runtime runtime(std::move(config));
  ASSERT_EQ(runtime.start(), "");
  const int udp = client_socket(SOCK_DGRAM, udp_port);
  const auto connect_request = testing::udp_connect_request(1);
  std::uint8_t connect_reply[16];
  ASSERT_EQ(send(udp, connect_request.data(), 16, 0), 16);
  ASSERT_EQ(receive(udp, connect_reply, 16), 16);
  std::uint64_t connection_id = 0;
  for (int i = 8; i < 16; ++i) connection_id = connection_id << 8 | connect_reply[i];
  // Each peer completes, then stops: its next `completed` is a new peer's, counted again.
  std::vector<UdpAnnounce> requests;
  for (const InfoHash& info_hash : testing::swarms_on_both_shards(runtime, swarms_count)) {
    for (std::uint32_t peer = 0; peer < peers_per_swarm; ++peer) {
      const auto port = static_cast<std::uint16_t>(6000 + peer);
      requests.push_back(testing::udp_announce_request(connection_id, peer, info_hash, port, 0, 50,
                                                       AnnounceEvent::completed));
      requests.push_back(testing::udp_announce_request(connection_id, peer, info_hash, port, 0, 50,
                                                       AnnounceEvent::stopped));
    }
  }
  for (int round = 0; round < 3; ++round) {
    for (const auto& request : requests) ASSERT_TRUE(udp_round_trip(udp, request));
  }
  const std::uint64_t before = testing::allocations_count();
  std::uint32_t answered = 0;
  // 83 rounds of 64 completions per shard in all: past each shard's bridge queue of 4096.
  constexpr std::uint32_t rounds = 80;
  for (std::uint32_t round = 0; round < rounds; ++round) {
    for (const auto& request : requests) answered += udp_round_trip(udp, request);
  }
  const std::uint64_t counted = testing::allocations_count() - before;
  EXPECT_EQ(answered, rounds * 2 * swarms_count * peers_per_swarm);
  EXPECT_EQ(counted, 0u);
  close(udp);
  runtime.stop();
  const ShardTotals totals = runtime.totals();
  EXPECT_EQ(totals.private_tracker.completions_handed, 2 * storage_deltas_queue_max);
  EXPECT_EQ(totals.private_tracker.completions_torrents, swarms_count);
  EXPECT_EQ(totals.private_tracker.completions_waiting, swarms_count);
}

}  // namespace
}  // namespace tyto::shard
