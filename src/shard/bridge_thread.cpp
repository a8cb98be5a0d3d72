#include "tyto/shard/bridge_thread.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tyto/core/log.hpp"

namespace tyto::shard {

namespace {
// With nothing to wait for, the loop still turns once a second.
constexpr auto idle_turn = std::chrono::seconds(1);
}  // namespace

std::string BridgeThread::start(const char* name, Doorbell doorbell, Client& client) {
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) return std::string("eventfd: ") + std::strerror(errno);
  doorbell_ = std::move(doorbell);
  thread_ = std::thread([this, name, &client] { run(name, client); });
  return {};
}

void BridgeThread::stop() noexcept {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (stop_fd_ >= 0) close(stop_fd_);
  stop_fd_ = -1;
}

void BridgeThread::run(const char* name, Client& client) noexcept {
  std::vector<pollfd> polled;
  constexpr std::size_t own_count = 2;  // stop, then the bridge's eventfd
  for (;;) {
    polled.assign({{stop_fd_, POLLIN, 0}, {doorbell_.wake_fd, POLLIN, 0}});
    auto wake_at = Clock::now() + idle_turn;
    client.watch(polled, wake_at);
    const auto wait_ms =
        std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now()).count();
    // An answer published after prepare_sleep rings the eventfd; one before it is seen here.
    const int timeout_ms =
        doorbell_.prepare_sleep() ? static_cast<int>(std::clamp<long>(wait_ms, 0, 1000)) : 0;
    const int ready = poll(polled.data(), polled.size(), timeout_ms);
    const int poll_errno = errno;  // before woke() reads the eventfd (EAGAIN when not rung)
    doorbell_.woke();
    if (ready < 0) {
      // EINTR comes, for one, from the privilege drop: glibc signals every thread to setuid.
      if (poll_errno != EINTR) {
        TYTO_LOG(log::Level::error, "{}: poll: {}", name, std::strerror(poll_errno));
        return;
      }
      for (pollfd& entry : polled) entry.revents = 0;
    }
    if (ready > 0 && polled[0].revents != 0) return;
    client.turn(std::span<const pollfd>(polled).subspan(own_count));
  }
}

}  // namespace tyto::shard
