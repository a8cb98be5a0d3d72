#include "tyto/core/clock.hpp"

#include <time.h>

#include <algorithm>

namespace tyto {
namespace {
constexpr std::uint64_t ns_per_s = 1'000'000'000;

std::uint64_t read_ns(clockid_t clock) noexcept {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * ns_per_s + static_cast<std::uint64_t>(now.tv_nsec);
}
}  // namespace

void CoarseClock::refresh() noexcept { now_ns_ = read_ns(CLOCK_MONOTONIC_COARSE); }

TimeFrame::TimeFrame(std::uint32_t speedup) noexcept
    : TimeFrame(speedup, read_ns(CLOCK_REALTIME_COARSE), read_ns(CLOCK_MONOTONIC_COARSE)) {}

TimeFrame::TimeFrame(std::uint32_t speedup, std::uint64_t unix_ns,
                     std::uint64_t monotonic_ns) noexcept
    : speedup_(std::max<std::uint32_t>(1, speedup)), origin_monotonic_ns_(monotonic_ns) {
  // k × Unix time needs more than 64 bits of nanoseconds at any k above 9.
  const unsigned __int128 frame_ns = static_cast<unsigned __int128>(unix_ns) * speedup_;
  unix_at_zero_s_ = static_cast<std::uint64_t>(frame_ns / ns_per_s) - 1;
  origin_fraction_ns_ = static_cast<std::uint64_t>(frame_ns % ns_per_s);
}

std::uint32_t TimeFrame::now_s(std::uint64_t monotonic_ns) const noexcept {
  const std::uint64_t elapsed_ns =
      monotonic_ns > origin_monotonic_ns_ ? monotonic_ns - origin_monotonic_ns_ : 0;
  return static_cast<std::uint32_t>(1 + (origin_fraction_ns_ + elapsed_ns * speedup_) / ns_per_s);
}

std::uint64_t TimeFrame::unix_ms(std::uint64_t monotonic_ns) const noexcept {
  const std::uint64_t elapsed_ns =
      monotonic_ns > origin_monotonic_ns_ ? monotonic_ns - origin_monotonic_ns_ : 0;
  return unix_at_zero_s_ * 1000 + (ns_per_s + origin_fraction_ns_ + elapsed_ns * speedup_) / 1'000'000;
}

std::uint64_t unix_time_s() noexcept { return read_ns(CLOCK_REALTIME) / ns_per_s; }

}  // namespace tyto
