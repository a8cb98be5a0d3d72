// The bridge between a non-shard thread and a shard, with a shard that echoes: every message
// comes back exactly once and in order through queues that fill up both ways (the bridge sends
// faster than the shard drains; the bridge stops reading so the shard must keep its answers),
// and each side, asleep in the kernel, is woken by the other at once. Runs under TSan too.
#include <poll.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <thread>

#include "tyto/shard/bridge.hpp"

namespace tyto::shard {
namespace {

using Clock = std::chrono::steady_clock;

struct Echo {
  std::uint64_t value = 0;
};
constexpr std::size_t queue_capacity = 4;  // small, so both directions fill
using EchoBridge = Bridge<Echo, Echo, queue_capacity, queue_capacity>;

// A shard's loop reduced to the bridge's part: drain, answer (keeping what does not fit, never
// dropping it), publish, sleep in the kernel when idle exactly as Shard::turn does.
class EchoShard {
 public:
  explicit EchoShard(EchoBridge& bridge) : bridge_(bridge) {
    thread_ = std::thread([this] { run(); });
    while (presence_.ring_fd.load() < 0) std::this_thread::yield();
  }
  ~EchoShard() {
    stopping_.store(true, std::memory_order_seq_cst);
    Waker waker;
    EXPECT_EQ(waker.init(), "");
    waker.wake(presence_);
    waker.flush();
    thread_.join();
  }
  Presence& presence() noexcept { return presence_; }
  std::uint64_t sleeps() const noexcept { return sleeps_.load(); }

 private:
  void run() {
    net::Ring ring;
    ASSERT_EQ(ring.init(64, true), "");
    presence_.ring_fd.store(ring.fd());
    std::deque<Echo> unanswered;
    while (!stopping_.load(std::memory_order_seq_cst)) {
      std::size_t work = bridge_.drain(0, [&](const Echo& echo) { unanswered.push_back(echo); });
      while (!unanswered.empty() && bridge_.answer(0, unanswered.front())) {
        unanswered.pop_front();
        ++work;
      }
      bridge_.publish_answers(0, ring);
      work += ring.drain([](const io_uring_cqe&) {});
      if (work != 0 || !unanswered.empty()) {
        ring.submit();
        if (!unanswered.empty()) std::this_thread::yield();  // the bridge has no room yet
        continue;
      }
      presence_.sleeping.store(true, std::memory_order_seq_cst);
      if (!bridge_.waiting(0) && !stopping_.load(std::memory_order_seq_cst)) {
        sleeps_.fetch_add(1);
        ring.submit_and_wait(1000);
      } else {
        ring.submit();
      }
      presence_.sleeping.store(false, std::memory_order_relaxed);
    }
  }

  EchoBridge& bridge_;
  Presence presence_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> sleeps_{0};
  std::thread thread_;
};

class BridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(bridge_.init(1), "");
    ASSERT_EQ(waker_.init(), "");
    shard_ = std::make_unique<EchoShard>(bridge_);
  }
  // The bridge thread's loop: send `count` values from next_send_, taking answers as they come
  // (checking order), sleeping in poll on the bridge's eventfd when it can do nothing else.
  void echo(std::uint64_t count, bool read_answers = true) {
    const std::uint64_t end = next_send_ + count;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while ((next_send_ < end || (read_answers && next_answer_ < end)) && Clock::now() < deadline) {
      bool sent = false;
      while (next_send_ < end && bridge_.send(0, Echo{next_send_})) {
        ++next_send_;
        sent = true;
      }
      if (sent) bridge_.publish(std::span(&shard_->presence(), 1), waker_);
      if (!read_answers) {
        if (next_send_ < end) std::this_thread::yield();
        continue;
      }
      const std::size_t got = bridge_.receive([this](std::uint32_t shard, const Echo& echo) {
        EXPECT_EQ(shard, 0u);
        EXPECT_EQ(echo.value, next_answer_);  // exactly once, in order
        ++next_answer_;
      });
      if (got == 0 && !sent && bridge_.prepare_sleep()) {
        pollfd polled{bridge_.wake_fd(), POLLIN, 0};
        poll(&polled, 1, 2000);
        bridge_.woke();
      }
    }
  }

  EchoBridge bridge_;
  Waker waker_;
  std::unique_ptr<EchoShard> shard_;
  std::uint64_t next_send_ = 0;
  std::uint64_t next_answer_ = 0;
};

TEST_F(BridgeTest, EveryMessageComesBackOnceInOrderThroughFullQueues) {
  echo(20000);
  EXPECT_EQ(next_answer_, 20000u);
}

TEST_F(BridgeTest, AShardKeepsItsAnswersWhileTheBridgeDoesNotRead) {
  // 3 × capacity sent without reading: the shard's answer queue fills and it must keep the rest.
  echo(3 * queue_capacity, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(next_answer_, 0u);
  echo(0);  // now read everything
  EXPECT_EQ(next_answer_, 3 * queue_capacity);
}

TEST_F(BridgeTest, EachSideAsleepIsWokenAtOnce) {
  auto slowest = Clock::duration::zero();
  for (int round = 0; round < 5; ++round) {
    // Long enough for the shard to sleep (its wait is 1 s) and for the bridge to be in poll
    // (2 s) when the answer comes: without either wake-up a round trip takes about a second.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto start = Clock::now();
    echo(1);
    slowest = std::max(slowest, Clock::now() - start);
  }
  EXPECT_EQ(next_answer_, 5u);
  EXPECT_GE(shard_->sleeps(), 5u);
  EXPECT_LT(slowest, std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace tyto::shard
