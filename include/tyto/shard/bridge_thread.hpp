// BridgeThread: the thread a bridge (bridge.hpp) runs its outside client on — the ops server's
// HTTP connections today; a database or NATS client next. It owns the thread, a stop eventfd and
// the one poll loop: each turn the client names the descriptors it waits on and its nearest
// deadline, the thread sleeps in poll on those, the bridge's eventfd (a shard answered) and the
// stop eventfd, then hands the client what is ready. The client never blocks anywhere else, so
// the shards' answers, the client's sockets and stopping are all seen within one poll.
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace tyto::shard {

class BridgeThread {
 public:
  using Clock = std::chrono::steady_clock;

  class Client {
   public:
    virtual ~Client() = default;
    // Before each poll: append the descriptors to wait on; lower wake_at to the nearest deadline.
    virtual void watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) = 0;
    // After the poll (descriptors ready, an answer from a shard, or a deadline): `polled` is what
    // watch() appended, with revents filled in.
    virtual void turn(std::span<const pollfd> polled) = 0;
  };

  // How the loop sleeps on a bridge: its eventfd, and its prepare_sleep / woke (bridge.hpp).
  struct Doorbell {
    int wake_fd = -1;
    std::function<bool()> prepare_sleep;
    std::function<void()> woke;
  };
  template <class Bridge>
  static Doorbell doorbell_of(Bridge& bridge) {
    return {bridge.wake_fd(), [&bridge] { return bridge.prepare_sleep(); },
            [&bridge] { bridge.woke(); }};
  }

  BridgeThread() = default;
  ~BridgeThread() { stop(); }
  BridgeThread(const BridgeThread&) = delete;
  BridgeThread& operator=(const BridgeThread&) = delete;

  // Starts the loop on a new thread; `name` for the log. Error text or "".
  std::string start(const char* name, Doorbell doorbell, Client& client);
  // Wakes the loop, waits for it to leave; idempotent.
  void stop() noexcept;

 private:
  void run(const char* name, Client& client) noexcept;

  Doorbell doorbell_;
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace tyto::shard
