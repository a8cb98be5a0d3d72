#include "tyto/proto/connection_id.hpp"

#include <gtest/gtest.h>

#include <random>

namespace tyto::proto {
namespace {

const std::array<std::uint8_t, 16> key_a{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const std::array<std::uint8_t, 16> key_b{16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1};

PeerEndpoint client(std::uint8_t last, std::uint16_t port = 5000) {
  return PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{192, 0, 2, last}, port);
}

TEST(ConnectionIds, ValidForAtLeastTwoMinutesAndAtMostThree) {
  const auto ids = ConnectionIds::from_key(key_a);
  for (std::uint64_t issued_s : {1000u, 1019u, 1079u, 60u * 65535 + 30}) {  // incl. the 16-bit wrap
    const std::uint64_t id = ids.issue(client(1), issued_s);
    EXPECT_TRUE(ids.valid(id, client(1), issued_s));
    EXPECT_TRUE(ids.valid(id, client(1), issued_s + 120));
    EXPECT_FALSE(ids.valid(id, client(1), issued_s + 181));
    EXPECT_FALSE(ids.valid(id, client(1), issued_s + 3600));
  }
}

TEST(ConnectionIds, BoundToTheClientIpAndTheKey) {
  const auto ids = ConnectionIds::from_key(key_a);
  const std::uint64_t id = ids.issue(client(1), 5000);
  EXPECT_TRUE(ids.valid(id, client(1, 6000), 5000));  // same IP, another socket: still valid
  EXPECT_FALSE(ids.valid(id, client(2), 5000));
  const PeerEndpoint v6 = PeerEndpoint::ipv6(std::array<std::uint8_t, 16>{0x20, 1}, 5000);
  EXPECT_FALSE(ids.valid(id, v6, 5000));
  EXPECT_FALSE(ConnectionIds::from_key(key_b).valid(id, client(1), 5000));
}

TEST(ConnectionIds, ForgedIdsAreRefused) {
  const auto ids = ConnectionIds::from_key(key_a);
  std::mt19937_64 random(1);
  int accepted = 0;
  for (int i = 0; i < 1'000'000; ++i) accepted += ids.valid(random(), client(1), 100000);
  EXPECT_EQ(accepted, 0);
}

}  // namespace
}  // namespace tyto::proto
