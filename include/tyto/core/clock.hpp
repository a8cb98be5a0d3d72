// Coarse shard-local time in whole seconds. The shard reads the clock once per loop turn and
// passes `now_s` down; nothing below the shard reads a clock itself, so tests replay exactly
// with a ManualClock. Seconds since an arbitrary per-process origin (CLOCK_MONOTONIC_COARSE):
// 32 bits last 136 years.
#pragma once

#include <cstdint>

namespace tyto {

class CoarseClock {
 public:
  // Reads the kernel's coarse monotonic clock (no syscall: vDSO). Call once per loop turn.
  void refresh() noexcept;
  std::uint32_t now_s() const noexcept { return now_s_; }

 private:
  std::uint32_t now_s_ = 0;
};

class ManualClock {
 public:
  explicit ManualClock(std::uint32_t start_s = 1) noexcept : now_s_(start_s) {}
  void advance(std::uint32_t seconds) noexcept { now_s_ += seconds; }
  std::uint32_t now_s() const noexcept { return now_s_; }

 private:
  std::uint32_t now_s_;
};

// Wall-clock seconds since the Unix epoch, for things that must survive a restart
// (connection-id time slots, snapshots). Not for the hot path's sense of "now".
std::uint64_t unix_time_s() noexcept;

}  // namespace tyto
