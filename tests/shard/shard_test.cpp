// The shard's loop and both front ends, through a real Runtime of two shards on loopback, once
// with the in-memory SwarmStore and once with the ReferenceStore (tests/support): UDP and HTTP
// announces and scrapes whose swarms live on either shard (so forwarding, lent buffers and
// scrape gathering all run), and a sleeping owner woken by a forward.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support/reference_store.hpp"
#include "support/two_shards.hpp"
#include "tyto/core/bytes.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::shard {
namespace {

using testing::client_socket;
using testing::free_port;
using testing::receive;

using Clock = std::chrono::steady_clock;

std::vector<std::uint8_t> round_trip(int fd, std::span<const std::uint8_t> request) {
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::vector<std::uint8_t> reply(2048);
  const ssize_t got = receive(fd, reply.data(), reply.size());
  EXPECT_GT(got, 0) << std::strerror(errno);
  reply.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return reply;
}

// BEP 15 over one connected UDP socket.
class UdpClient {
 public:
  explicit UdpClient(std::uint16_t port) : fd_(client_socket(SOCK_DGRAM, port)) {
    const auto request = testing::udp_connect_request(7);
    const auto reply = round_trip(fd_, request);
    EXPECT_EQ(reply.size(), 16u);
    if (reply.size() == 16) connection_id_ = ByteReader(std::span(reply).subspan(8)).u64();
  }
  ~UdpClient() { close(fd_); }

  struct Announced {
    std::uint32_t leechers = 0;
    std::uint32_t seeders = 0;
    std::vector<std::uint16_t> peer_ports;  // every peer is 127.0.0.1
  };
  Announced announce(const InfoHash& info_hash, std::uint16_t port, std::uint64_t left,
                     std::int32_t numwant = 50, AnnounceEvent event = AnnounceEvent::none) {
    const auto request =
        testing::udp_announce_request(connection_id_, 9, info_hash, port, left, numwant, event);
    const auto reply = round_trip(fd_, request);
    Announced announced;
    EXPECT_GE(reply.size(), 20u);
    if (reply.size() < 20) return announced;
    ByteReader in(reply);
    EXPECT_EQ(in.u32(), 1u) << "an error reply: " << std::string(reply.begin() + 8, reply.end());
    in.u32();
    in.u32();
    announced.leechers = in.u32();
    announced.seeders = in.u32();
    while (in.remaining() >= 6) {
      EXPECT_EQ(in.u32(), 0x7f000001u);
      announced.peer_ports.push_back(in.u16());
    }
    return announced;
  }
  std::vector<ScrapeEntry> scrape(std::span<const InfoHash> info_hashes) {
    std::vector<std::uint8_t> request(16 + 20 * info_hashes.size());
    ByteWriter out(request);
    out.u64(connection_id_);
    out.u32(2);
    out.u32(11);
    for (const InfoHash& hash : info_hashes) out.bytes(hash.bytes);
    const auto reply = round_trip(fd_, request);
    std::vector<ScrapeEntry> entries;
    EXPECT_EQ(reply.size(), 8 + 12 * info_hashes.size());
    ByteReader in(reply);
    in.u64();
    while (in.remaining() >= 12) {
      ScrapeEntry entry;
      entry.seeders = in.u32();
      entry.completed = in.u32();
      entry.leechers = in.u32();
      entries.push_back(entry);
    }
    return entries;
  }

 private:
  int fd_;
  std::uint64_t connection_id_ = 0;
};

std::string percent_encoded(const InfoHash& info_hash) {
  std::string text;
  for (std::uint8_t byte : info_hash.bytes) text += fmt::format("%{:02x}", byte);
  return text;
}

constexpr std::uint8_t swarms_count = 8;

// How many whole HTTP responses (head and Content-Length body) `text` starts with.
int complete_responses(std::string_view text) {
  int count = 0;
  for (;;) {
    const auto head_end = text.find("\r\n\r\n");
    const auto length_at = text.find("Content-Length: ");
    if (head_end == std::string_view::npos || length_at > head_end) return count;
    std::size_t length = 0;
    std::from_chars(text.data() + length_at + 16, text.data() + head_end, length);
    if (text.size() < head_end + 4 + length) return count;
    text.remove_prefix(head_end + 4 + length);
    ++count;
  }
}

enum class StoreKind { memory, reference };

class ShardTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    udp_port_ = free_port(SOCK_DGRAM);
    http_port_ = free_port(SOCK_STREAM);
    RuntimeConfig config = testing::two_shards(udp_port_, http_port_);
    if (GetParam() == StoreKind::reference) {
      config.shard.make_peer_store = [](const store::StoreLimits& limits, const HashSecret&,
                                        std::uint64_t) {
        return std::make_unique<testing::ReferenceStore>(limits);
      };
    }
    runtime_ = std::make_unique<Runtime>(std::move(config));
    ASSERT_EQ(runtime_->start(), "");
    swarms_ = testing::swarms_on_both_shards(*runtime_, swarms_count);
  }

  // The totals once the shards stopped.
  ShardTotals stop() {
    runtime_->stop();
    return runtime_->totals();
  }

  std::uint16_t udp_port_ = 0;
  std::uint16_t http_port_ = 0;
  std::unique_ptr<Runtime> runtime_;
  std::vector<InfoHash> swarms_;  // owned alternately by shard 0 and shard 1
};

TEST_P(ShardTest, UdpAnnouncesAndScrapesReachTheOwningShard) {
  UdpClient client(udp_port_);
  for (const InfoHash& swarm : swarms_) {
    const auto leecher = client.announce(swarm, 6001, 100);
    EXPECT_EQ(leecher.leechers, 1u);
    EXPECT_TRUE(leecher.peer_ports.empty());
    const auto seeder = client.announce(swarm, 6002, 0);
    EXPECT_EQ(seeder.seeders, 1u);
    EXPECT_EQ(seeder.leechers, 1u);
    EXPECT_EQ(seeder.peer_ports, std::vector<std::uint16_t>{6001});
  }
  const auto entries = client.scrape(swarms_);
  ASSERT_EQ(entries.size(), swarms_.size());
  for (const ScrapeEntry& entry : entries) EXPECT_EQ(entry, (ScrapeEntry{1, 1, 0}));
  const ShardTotals totals = stop();
  EXPECT_EQ(totals.shard.udp_announces, 2u * swarms_count);
  EXPECT_GT(totals.shard.announces_forwarded, 0u);
  EXPECT_GT(totals.shard.scrape_parts_forwarded, 0u);
  EXPECT_EQ(totals.store.announces, 2u * swarms_count);
  EXPECT_EQ(totals.store.seeders, swarms_count);
}

// Two announces pipelined on one keep-alive connection per swarm: answered in order, the second
// listing the first, whichever shard owns the swarm.
TEST_P(ShardTest, HttpAnnouncesArePipelinedAndAnsweredInOrder) {
  const int fd = client_socket(SOCK_STREAM, http_port_);
  for (const InfoHash& swarm : swarms_) {
    const std::string hash = percent_encoded(swarm);
    std::string requests;
    for (const auto& [port, left] : {std::pair{7001, 5}, std::pair{7002, 0}}) {
      requests += fmt::format(
          "GET /announce?info_hash={}&peer_id=-TY0001-{:012}&port={}&uploaded=0&downloaded=0"
          "&left={}&compact=1 HTTP/1.1\r\nHost: t\r\n\r\n",
          hash, port, port, left);
    }
    ASSERT_EQ(send(fd, requests.data(), requests.size(), 0), static_cast<ssize_t>(requests.size()));
    std::string replies;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && complete_responses(replies) < 2) {
      char buffer[4096];
      const ssize_t got = receive(fd, buffer, sizeof buffer);
      if (got <= 0) break;
      replies.append(buffer, static_cast<std::size_t>(got));
    }
    const auto second = replies.find("HTTP/1.1 200", 1);
    ASSERT_NE(second, std::string::npos) << replies;
    const std::string first_reply = replies.substr(0, second);
    const std::string second_reply = replies.substr(second);
    // Keys in bencode order: complete, external ip (BEP 24), incomplete, ...
    for (const char* key : {"8:completei0e", "10:incompletei1e"}) {
      EXPECT_NE(first_reply.find(key), std::string::npos) << key << " in " << first_reply;
    }
    for (const char* key : {"8:completei1e", "10:incompletei1e"}) {
      EXPECT_NE(second_reply.find(key), std::string::npos) << key << " in " << second_reply;
    }
    // The seeder gets the leecher: 127.0.0.1:7001 in compact form.
    EXPECT_NE(second_reply.find(std::string("5:peers6:\x7f\x00\x00\x01\x1b\x59", 15)),
              std::string::npos);
  }
  close(fd);
  const ShardTotals totals = stop();
  EXPECT_EQ(totals.shard.http_announces, 2u * swarms_count);
  EXPECT_GT(totals.shard.announces_forwarded, 0u);
  EXPECT_EQ(totals.shard.http_failures, 0u);
}

// numwant 0 asks for the counts and no peers (BEP 15: -1 is the default; HTTP: absent is).
TEST_P(ShardTest, NumwantZeroGetsTheCountsAndNoPeers) {
  UdpClient client(udp_port_);
  for (const InfoHash& swarm : swarms_) {
    client.announce(swarm, 6001, 100);
    const auto none = client.announce(swarm, 6002, 0, 0);
    EXPECT_EQ(none.seeders, 1u);
    EXPECT_EQ(none.leechers, 1u);
    EXPECT_TRUE(none.peer_ports.empty());
    EXPECT_EQ(client.announce(swarm, 6003, 0, -1).peer_ports, std::vector<std::uint16_t>{6001});
  }
  const int fd = client_socket(SOCK_STREAM, http_port_);
  for (const char* numwant : {"&numwant=0", ""}) {
    const std::string request = fmt::format(
        "GET /announce?info_hash={}&peer_id=-TY0001-000000007004&port=7004&uploaded=0"
        "&downloaded=0&left=0&compact=1{} HTTP/1.1\r\nHost: t\r\n\r\n",
        percent_encoded(swarms_[1]), numwant);
    ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    std::string reply;
    char buffer[4096];
    while (complete_responses(reply) < 1) {
      const ssize_t got = receive(fd, buffer, sizeof buffer);
      ASSERT_GT(got, 0);
      reply.append(buffer, static_cast<std::size_t>(got));
    }
    EXPECT_NE(reply.find("10:incompletei1e"), std::string::npos) << reply;
    // Without numwant the seeder gets the one leecher (6 bytes); with numwant=0, none.
    EXPECT_NE(reply.find(*numwant != 0 ? "5:peers0:" : "5:peers6:"), std::string::npos) << reply;
  }
  close(fd);
}

// The completed count outlives the swarm's last peer (issue 21): a scrape still says it.
TEST_P(ShardTest, ACompletedCountOutlivesTheLastPeer) {
  UdpClient client(udp_port_);
  for (const InfoHash& swarm : swarms_) {
    client.announce(swarm, 6001, 100, 50, AnnounceEvent::started);
    client.announce(swarm, 6001, 0, 50, AnnounceEvent::completed);
    const auto stopped = client.announce(swarm, 6001, 0, 50, AnnounceEvent::stopped);
    EXPECT_EQ(stopped.seeders + stopped.leechers, 0u);
  }
  for (const ScrapeEntry& entry : client.scrape(swarms_)) {
    EXPECT_EQ(entry, (ScrapeEntry{0, 0, 1}));
  }
}

// An owner asleep in the kernel (its 1 s idle wait) is woken by the forward at once.
TEST_P(ShardTest, AForwardWakesASleepingOwner) {
  UdpClient client(udp_port_);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // both shards go to sleep
  auto slowest = Clock::duration::zero();
  for (const InfoHash& swarm : swarms_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // asleep again
    const auto start = Clock::now();
    EXPECT_EQ(client.announce(swarm, 6001, 0).seeders, 1u);
    slowest = std::max(slowest, Clock::now() - start);
  }
  const ShardTotals totals = stop();
  EXPECT_GT(totals.shard.announces_forwarded, 0u);
  EXPECT_GT(totals.shard.wakeups_sent, 0u);
  EXPECT_GT(totals.shard.sleeps, 0u);
  // Without the wake-up, a forwarded announce waits for the owner's next tick (up to 1 s).
  EXPECT_LT(slowest, std::chrono::milliseconds(500));
}

INSTANTIATE_TEST_SUITE_P(Stores, ShardTest,
                         ::testing::Values(StoreKind::memory, StoreKind::reference),
                         [](const auto& info) {
                           return info.param == StoreKind::memory ? "memory" : "reference";
                         });

}  // namespace
}  // namespace tyto::shard
