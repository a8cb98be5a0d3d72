#include "tyto/core/spsc.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace tyto {
namespace {

struct Message {
  std::uint64_t sequence;
  std::uint32_t payload[6];
};

TEST(SpscQueue, StagedMessagesAreInvisibleUntilPublished) {
  SpscQueue<Message, 8> queue;
  ASSERT_TRUE(queue.try_push(Message{1, {}}));
  std::size_t seen = 0;
  EXPECT_EQ(queue.consume([&](const Message&) { ++seen; }), 0u);
  EXPECT_EQ(queue.publish(), 1u);
  EXPECT_EQ(queue.consume([&](const Message& m) { seen += m.sequence; }), 1u);
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(queue.publish(), 0u);
}

TEST(SpscQueue, RefusesWhenFullAndRecoversAfterConsume) {
  SpscQueue<Message, 4> queue;
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(queue.try_push(Message{i, {}}));
  EXPECT_FALSE(queue.try_push(Message{99, {}}));
  queue.publish();
  EXPECT_EQ(queue.depth_approx(), 4u);
  std::vector<std::uint64_t> order;
  EXPECT_EQ(queue.consume([&](const Message& m) { order.push_back(m.sequence); }, 3), 3u);
  EXPECT_EQ(order, (std::vector<std::uint64_t>{0, 1, 2}));
  for (std::uint64_t i = 4; i < 7; ++i) ASSERT_TRUE(queue.try_push(Message{i, {}}));
  EXPECT_FALSE(queue.try_push(Message{99, {}}));
  queue.publish();
  queue.consume([&](const Message& m) { order.push_back(m.sequence); });
  EXPECT_EQ(order, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(SpscQueue, IndicesLiveOnSeparateCacheLines) {
  EXPECT_GE(sizeof(SpscQueue<Message, 4>), 4 * cache_line_size);
  EXPECT_EQ(alignof(SpscQueue<Message, 4>), cache_line_size);
}

}  // namespace
}  // namespace tyto
