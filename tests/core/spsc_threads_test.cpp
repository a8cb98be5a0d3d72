// Two threads, one producer and one consumer, pass ten million sequenced messages; every message
// arrives once, in order, intact. Run under ThreadSanitizer in CI (suite 'tsan').
#include <gtest/gtest.h>

#include <thread>

#include "tyto/core/spsc.hpp"

namespace tyto {
namespace {

struct Message {
  std::uint64_t sequence;
  std::uint64_t check;  // derived from sequence: a torn or stale slot shows up here
};

TEST(SpscQueueThreads, DeliversEveryMessageOnceInOrder) {
#if defined(__SANITIZE_THREAD__)
  constexpr std::uint64_t messages = 1'000'000;
#else
  constexpr std::uint64_t messages = 10'000'000;
#endif
  static SpscQueue<Message, 1024> queue;
  std::thread producer([] {
    std::uint64_t next = 0;
    while (next < messages) {
      // Stage a batch, publish once: the shard loop's pattern.
      for (int i = 0; i < 64 && next < messages; ++i) {
        if (!queue.try_push(Message{next, next * 0x9E3779B97F4A7C15ull})) break;
        ++next;
      }
      queue.publish();
    }
  });
  std::uint64_t expected = 0;
  bool intact = true;
  while (expected < messages) {
    queue.consume([&](const Message& m) {
      intact = intact && m.sequence == expected && m.check == expected * 0x9E3779B97F4A7C15ull;
      ++expected;
    });
  }
  producer.join();
  EXPECT_TRUE(intact);
  EXPECT_EQ(expected, messages);
  EXPECT_EQ(queue.depth_approx(), 0u);
}

}  // namespace
}  // namespace tyto
