#include "tyto/core/log.hpp"

#include <gtest/gtest.h>

namespace tyto::log {
namespace {

TEST(RateLimit, TenPerSecondThenCountsWhatItDropped) {
  RateLimit limit;
  std::uint64_t suppressed = 99;
  for (std::uint32_t i = 0; i < RateLimit::per_second; ++i) {
    ASSERT_TRUE(limit.allow(1000, suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 25; ++i) EXPECT_FALSE(limit.allow(1000, suppressed));
  ASSERT_TRUE(limit.allow(1001, suppressed));  // a new second
  EXPECT_EQ(suppressed, 25u);                  // says what was dropped
  ASSERT_TRUE(limit.allow(1001, suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(Log, LevelsFilter) {
  const Level saved = level();
  set_level(Level::warning);
  EXPECT_TRUE(enabled(Level::error));
  EXPECT_TRUE(enabled(Level::warning));
  EXPECT_FALSE(enabled(Level::info));
  EXPECT_FALSE(enabled(Level::debug));
  set_level(Level::debug);
  EXPECT_TRUE(enabled(Level::debug));
  set_level(saved);
}

}  // namespace
}  // namespace tyto::log
