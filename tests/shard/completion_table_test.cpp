// CompletionTable (shard/completion_table.hpp): persisted bases and counted completions add up,
// pending counts are never dropped when the bridge has no room, a full table refuses and counts.
#include "tyto/shard/completion_table.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace tyto::shard {
namespace {

InfoHash hash_number(std::uint32_t number) {
  InfoHash made;
  std::memcpy(made.bytes.data(), &number, sizeof number);
  return made;
}

std::vector<store::CompletionDelta> take(CompletionTable& table, std::size_t room) {
  std::vector<store::CompletionDelta> taken;
  table.flush(
      [&](const store::CompletionDelta& completion) {
        if (taken.size() == room) return false;
        taken.push_back(completion);
        return true;
      },
      SIZE_MAX);
  return taken;
}

TEST(CompletionTable, PersistedBasePlusCountedSinceAndOnlyTheCountedArePending) {
  CompletionTable table(16, HashSecret::random());
  EXPECT_TRUE(table.restore({hash_number(1), 40}));
  EXPECT_EQ(table.completed(hash_number(1)), 40u);
  EXPECT_EQ(table.completed(hash_number(2)), 0u);
  EXPECT_EQ(table.pending_count(), 0u);
  EXPECT_TRUE(table.count(hash_number(1)));
  EXPECT_TRUE(table.count(hash_number(2)));
  EXPECT_TRUE(table.count(hash_number(1)));
  EXPECT_EQ(table.completed(hash_number(1)), 42u);
  EXPECT_EQ(table.completed(hash_number(2)), 1u);
  EXPECT_EQ(table.pending_count(), 2u);
  const std::vector<store::CompletionDelta> expected = {{hash_number(1), 2}, {hash_number(2), 1}};
  EXPECT_EQ(take(table, SIZE_MAX), expected);  // oldest first, summed
  EXPECT_EQ(table.pending_count(), 0u);
  EXPECT_TRUE(take(table, SIZE_MAX).empty());
  EXPECT_EQ(table.completed(hash_number(1)), 42u);  // handing on changes no total
}

TEST(CompletionTable, WhatTheBridgeHasNoRoomForStaysSummed) {
  CompletionTable table(16, HashSecret::random());
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(table.count(hash_number(i)));
  EXPECT_EQ(take(table, 2).size(), 2u);
  EXPECT_EQ(table.pending_count(), 3u);
  ASSERT_TRUE(table.count(hash_number(4)));  // still queued: summed, not queued twice
  ASSERT_TRUE(table.count(hash_number(0)));  // handed on before: queued again, at the back
  const std::vector<store::CompletionDelta> expected = {
      {hash_number(2), 1}, {hash_number(3), 1}, {hash_number(4), 2}, {hash_number(0), 1}};
  EXPECT_EQ(take(table, SIZE_MAX), expected);
}

TEST(CompletionTable, AFullTableRefusesNewTorrentsAndCountsThem) {
  CompletionTable table(3, HashSecret::random());
  EXPECT_TRUE(table.restore({hash_number(1), 1}));
  EXPECT_TRUE(table.count(hash_number(2)));
  EXPECT_TRUE(table.count(hash_number(3)));
  EXPECT_FALSE(table.count(hash_number(4)));
  EXPECT_FALSE(table.restore({hash_number(5), 1}));
  EXPECT_EQ(table.refused(), 2u);
  EXPECT_TRUE(table.count(hash_number(1)));  // a torrent held still counts
  EXPECT_EQ(table.completed(hash_number(1)), 2u);
  EXPECT_EQ(table.completed(hash_number(4)), 0u);
  EXPECT_EQ(table.size(), 3u);
}

TEST(CompletionTable, ManyTorrentsAcrossChunksAndTheQueueRingWrap) {
  constexpr std::uint32_t torrents = 10000;
  CompletionTable table(torrents, HashSecret::random());
  for (std::uint32_t round = 0; round < 3; ++round) {
    for (std::uint32_t i = 0; i < torrents; ++i) {
      ASSERT_TRUE(table.count(hash_number(i)));
      if (i % 4096 == 0) table.prepare();
    }
    const auto taken = take(table, SIZE_MAX);
    ASSERT_EQ(taken.size(), torrents);
    for (std::uint32_t i = 0; i < torrents; ++i)
      ASSERT_EQ(taken[i], (store::CompletionDelta{hash_number(i), 1}));
  }
  for (std::uint32_t i = 0; i < torrents; ++i) ASSERT_EQ(table.completed(hash_number(i)), 3u);
}

}  // namespace
}  // namespace tyto::shard
