#include "tyto/core/log.hpp"

#include <unistd.h>

#include <string>

#include "tyto/core/clock.hpp"

namespace tyto::log {

namespace detail {
std::atomic<Level> current_level{Level::info};
}  // namespace detail

void set_level(Level level) noexcept {
  detail::current_level.store(level, std::memory_order_relaxed);
}

Level level() noexcept {
  return detail::current_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message) noexcept {
  static constexpr std::string_view names[] = {"error", "warning", "info", "debug"};
  try {
    std::string line = "tyto: ";
    line += names[static_cast<std::size_t>(level)];
    line += ": ";
    line += message;
    line += '\n';
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
  } catch (...) {  // out of memory while logging: the line is lost, the process is not
  }
}

bool RateLimit::allow(std::uint64_t now_s, std::uint64_t& suppressed) noexcept {
  if (now_s != window_s_) {
    window_s_ = now_s;
    in_window_ = 0;
  }
  if (in_window_ == per_second) {
    ++suppressed_;
    return false;
  }
  ++in_window_;
  suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

namespace detail {
void write_limited(Level level, RateLimit& limit, std::string_view message) noexcept {
  std::uint64_t suppressed = 0;
  if (!limit.allow(unix_time_s(), suppressed)) return;
  if (suppressed == 0) {
    write(level, message);
    return;
  }
  try {
    write(level, fmt::format("{} ({} similar messages suppressed)", message, suppressed));
  } catch (...) {
  }
}
}  // namespace detail

}  // namespace tyto::log
