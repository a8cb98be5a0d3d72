// Coarse shard-local time in whole seconds. The shard reads the clock once per loop turn and
// passes `now_s` down; nothing below the shard reads a clock itself, so tests replay exactly
// with a ManualClock. Seconds since the process's time frame began (TimeFrame): 32 bits last
// 136 years.
#pragma once

#include <cstdint>

namespace tyto {

// CLOCK_MONOTONIC_COARSE in nanoseconds (no syscall: vDSO). Call once per loop turn.
class CoarseClock {
 public:
  void refresh() noexcept;
  std::uint64_t now_ns() const noexcept { return now_ns_; }

 private:
  std::uint64_t now_ns_ = 0;
};

class ManualClock {
 public:
  explicit ManualClock(std::uint32_t start_s = 1) noexcept : now_s_(start_s) {}
  void advance(std::uint32_t seconds) noexcept { now_s_ += seconds; }
  std::uint32_t now_s() const noexcept { return now_s_; }

 private:
  std::uint32_t now_s_;
};

// The process's time frame (DESIGN §9 "Cluster": agreement). now_s counts whole seconds from 1
// at start and ticks when the Unix clock's second does: the Unix and monotonic clocks are read
// together once (both coarse, so updated by the same tick), the monotonic clock alone after
// that. So what follows from time alone, a peer's expiry above all, changes at the same moment
// on every cluster node whose clocks agree (NTP: milliseconds), whenever each started.
// At a test speedup k the frame runs k times the Unix clock counted from the epoch ("frame Unix
// time", the real one at k = 1): nodes run at the same k still agree with each other.
class TimeFrame {
 public:
  TimeFrame() noexcept : TimeFrame(1) {}
  explicit TimeFrame(std::uint32_t speedup) noexcept;  // reads the clocks
  // A frame from given readings (tests): Unix and monotonic nanoseconds at the same instant.
  TimeFrame(std::uint32_t speedup, std::uint64_t unix_ns, std::uint64_t monotonic_ns) noexcept;

  // now_s at a CoarseClock reading: 1 at the start, never 0.
  std::uint32_t now_s(std::uint64_t monotonic_ns) const noexcept;
  // Frame Unix time at a CoarseClock reading, in milliseconds.
  std::uint64_t unix_ms(std::uint64_t monotonic_ns) const noexcept;
  // The frame Unix second that now_s 0 stands for: frame Unix second = unix_at_zero_s + now_s.
  std::uint64_t unix_at_zero_s() const noexcept { return unix_at_zero_s_; }
  std::uint32_t speedup() const noexcept { return speedup_; }

 private:
  std::uint32_t speedup_ = 1;
  std::uint64_t origin_monotonic_ns_ = 0;
  // Frame Unix time at origin_monotonic_ns_: whole seconds (less one: now_s starts at 1) and the
  // nanoseconds past them.
  std::uint64_t unix_at_zero_s_ = 0;
  std::uint64_t origin_fraction_ns_ = 0;
};

// Wall-clock seconds since the Unix epoch, for things that must survive a restart
// (snapshots, uptime). Not for the hot path's sense of "now".
std::uint64_t unix_time_s() noexcept;

}  // namespace tyto
