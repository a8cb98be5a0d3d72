// TimeFrame (core/clock.hpp): the shards' seconds tick with the Unix second, so two processes
// (cluster nodes) started at any moments count the same frame Unix second at the same instant.
#include <gtest/gtest.h>

#include <cstdint>

#include "tyto/core/clock.hpp"

namespace tyto {
namespace {

constexpr std::uint64_t ns_per_s = 1'000'000'000;
constexpr std::uint64_t unix_s = 1'796'000'000;  // 2026-12

TEST(TimeFrame, SecondsTickWithTheUnixSecondWheneverTheProcessBegan) {
  // Both processes read their clocks together: Unix ns and monotonic ns at one instant. The
  // monotonic clock's origin is arbitrary (and the same for both, as on one machine).
  const std::uint64_t monotonic_at_unix_s = 7'000 * ns_per_s + 123'456'789;  // at unix_s exactly
  auto frame_started_at = [&](std::uint64_t offset_ns) {
    return TimeFrame(1, unix_s * ns_per_s + offset_ns, monotonic_at_unix_s + offset_ns);
  };
  const TimeFrame early = frame_started_at(400'000'000);                 // 0.4 s past unix_s
  const TimeFrame late = frame_started_at(3'600 * ns_per_s + 999'000'000);  // an hour on
  EXPECT_EQ(early.now_s(monotonic_at_unix_s + 400'000'000), 1u);  // starts at 1
  EXPECT_EQ(early.unix_at_zero_s(), unix_s - 1);
  for (std::uint64_t at_ns = 3'601 * ns_per_s; at_ns < 3'605 * ns_per_s; at_ns += 50'000'000) {
    const std::uint64_t monotonic_ns = monotonic_at_unix_s + at_ns;
    const std::uint64_t expected_s = unix_s + at_ns / ns_per_s;  // the Unix second then
    ASSERT_EQ(early.unix_at_zero_s() + early.now_s(monotonic_ns), expected_s) << at_ns;
    ASSERT_EQ(late.unix_at_zero_s() + late.now_s(monotonic_ns), expected_s) << at_ns;
    ASSERT_EQ(early.unix_ms(monotonic_ns), unix_s * 1000 + at_ns / 1'000'000) << at_ns;
    ASSERT_EQ(late.unix_ms(monotonic_ns), early.unix_ms(monotonic_ns)) << at_ns;
  }
}

TEST(TimeFrame, ATestSpeedupRunsFromTheEpochSoProcessesStillAgree) {
  const std::uint64_t monotonic_at_unix_s = 50 * ns_per_s;
  const TimeFrame a(60, unix_s * ns_per_s + 250'000'000, monotonic_at_unix_s + 250'000'000);
  const TimeFrame b(60, (unix_s + 1) * ns_per_s + 700'000'000,
                    monotonic_at_unix_s + ns_per_s + 700'000'000);
  EXPECT_EQ(a.speedup(), 60u);
  for (std::uint64_t at_ns = 2 * ns_per_s; at_ns < 4 * ns_per_s; at_ns += 10'000'000) {
    const std::uint64_t monotonic_ns = monotonic_at_unix_s + at_ns;
    // 60 x (Unix time): whole frame seconds.
    const std::uint64_t expected_s = unix_s * 60 + at_ns * 60 / ns_per_s;
    ASSERT_EQ(a.unix_at_zero_s() + a.now_s(monotonic_ns), expected_s) << at_ns;
    ASSERT_EQ(b.unix_at_zero_s() + b.now_s(monotonic_ns), expected_s) << at_ns;
  }
  EXPECT_EQ(TimeFrame(0).speedup(), 1u);  // 0 is taken as 1
}

}  // namespace
}  // namespace tyto
