#include "tyto/core/clock.hpp"

#include <time.h>

namespace tyto {

void CoarseClock::refresh() noexcept {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  now_s_ = static_cast<std::uint32_t>(now.tv_sec);
}

std::uint64_t unix_time_s() noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::uint64_t>(now.tv_sec);
}

}  // namespace tyto
