// Logging: levels, one write(2) per line (lines from several threads never interleave and no
// stdio lock is taken), and a per-call-site rate limit for anything a remote peer can trigger.
//   TYTO_LOG(log::Level::info, "loaded {} entries from {}", count, path);
//   TYTO_LOG_LIMITED(log::Level::debug, "malformed datagram from {}", address);
// A message below the configured level costs one relaxed atomic load and formats nothing.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <cstdint>
#include <string_view>

namespace tyto::log {

enum class Level : std::uint8_t { error, warning, info, debug };

void set_level(Level level) noexcept;
Level level() noexcept;
inline bool enabled(Level level) noexcept;
// Writes "tyto: LEVEL: message\n" to stderr.
void write(Level level, std::string_view message) noexcept;

// At most `per_second` messages per second from one call site on one thread; the rest are
// counted and the next message that passes says how many were suppressed.
class RateLimit {
 public:
  static constexpr std::uint32_t per_second = 10;
  // True when a message at now_s may be written; `suppressed` is then set to the count dropped
  // since the last one written.
  bool allow(std::uint64_t now_s, std::uint64_t& suppressed) noexcept;

 private:
  std::uint64_t window_s_ = 0;
  std::uint32_t in_window_ = 0;
  std::uint64_t suppressed_ = 0;
};

namespace detail {
extern std::atomic<Level> current_level;
void write_limited(Level level, RateLimit& limit, std::string_view message) noexcept;
}  // namespace detail

inline bool enabled(Level level) noexcept {
  return level <= detail::current_level.load(std::memory_order_relaxed);
}

}  // namespace tyto::log

#define TYTO_LOG(level, ...)                                 \
  do {                                                       \
    if (::tyto::log::enabled(level)) {                       \
      ::tyto::log::write(level, ::fmt::format(__VA_ARGS__)); \
    }                                                        \
  } while (false)

#define TYTO_LOG_LIMITED(level, ...)                                                          \
  do {                                                                                        \
    if (::tyto::log::enabled(level)) {                                                        \
      static thread_local ::tyto::log::RateLimit tyto_log_limit_;                             \
      ::tyto::log::detail::write_limited(level, tyto_log_limit_, ::fmt::format(__VA_ARGS__)); \
    }                                                                                         \
  } while (false)
