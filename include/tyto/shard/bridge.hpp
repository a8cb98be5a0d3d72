// Bridges (DESIGN §9): how a thread that is not a shard — the ops server today; a storage
// backend's client (SQLite, libpq) and the NATS client next — talks to every shard. It is the one
// way a non-shard thread reaches shard state; nothing else reads shard memory.
//
// Bridge<ToShard, ToBridge, ...>: per shard one bounded SPSC queue pair of fixed-size plain
// messages, bridge → shard (`ToShard`) and shard → bridge (`ToBridge`).
//  - The bridge thread runs its client's event loop and may sleep in poll/epoll on the client's
//    sockets plus wake_fd() (an eventfd). It stages with send(), makes a batch visible with
//    publish(), which wakes every shard it sent to that sleeps in the kernel (a MSG_RING from the
//    bridge's own Waker, exactly as shards wake each other), and takes answers with receive().
//  - A shard drains its inbound queue once per loop turn (drain()), stages answers with
//    answer() and makes them visible at the end of the turn with publish_answers(), which wakes a
//    sleeping bridge by queueing an eventfd write on the shard's own ring (no system call of the
//    shard's: it goes out with the turn's submit).
//  - Sleeping, both ways, is Dekker's pattern: the sleeper sets its flag, then looks at its queues
//    once more; the producer publishes, then reads the flag (every access seq_cst), so one of
//    them sees the other and no message waits for a timeout.
// Never a lock, never an allocation after init(). A full queue refuses (send/answer return
// false); what happens then is each message kind's policy, stated where the kind is declared:
//  - ops questions and answers (control.hpp): a question that does not fit is not asked (the
//    operator gets 503); an answer that does not fit is dropped and counted, and the question
//    times out. Nothing else depends on them.
//  - accounting deltas (private tracker): never dropped. The shard keeps them summed in its own
//    fixed table and offers them again next turn until the bridge has room.
//  - replication deltas (cluster_bridge.hpp): dropped and counted under overload; a peer's next
//    announce repairs what was lost.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tyto/core/assert.hpp"
#include "tyto/core/spsc.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/shard/waker.hpp"

namespace tyto::shard {

template <class ToShard, class ToBridge, std::size_t ToShardCapacity, std::size_t ToBridgeCapacity>
class Bridge {
 public:
  Bridge() = default;
  ~Bridge() {
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Before any thread uses it: one queue pair per shard, and the bridge's eventfd.
  std::string init(std::uint32_t shards_count) {
    TYTO_ASSERT(shards_.empty());
    for (std::uint32_t i = 0; i < shards_count; ++i) shards_.push_back(std::make_unique<Pair>());
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return std::string("bridge eventfd: ") + std::strerror(errno);
    return {};
  }

  // --- The bridge thread ---
  // Stages one message for `shard`; false when its queue is full (the caller applies the
  // message kind's policy).
  bool send(std::uint32_t shard, const ToShard& message) noexcept {
    return pair(shard).to_shard.try_push(message);
  }
  // Publishes what send() staged and wakes the shards that got something and sleep.
  void publish(std::span<Presence> shards, Waker& waker) noexcept {
    TYTO_ASSERT(shards.size() == shards_.size());
    bool woke = false;
    for (std::uint32_t i = 0; i < shards_.size(); ++i) {
      if (shards_[i]->to_shard.publish() != 0) woke |= waker.wake_if_sleeping(shards[i]);
    }
    if (woke) waker.flush();
  }
  // Calls handle(shard, const ToBridge&) for every answer published so far.
  template <class Handle>
  std::size_t receive(Handle&& handle) noexcept {
    std::size_t count = 0;
    for (std::uint32_t i = 0; i < shards_.size(); ++i) {
      count += shards_[i]->to_bridge.consume([&](const ToBridge& answer) { handle(i, answer); });
    }
    return count;
  }
  // Before sleeping in poll on wake_fd() (and the client's own descriptors): true when the
  // bridge may sleep; false when an answer came meanwhile (then receive() first). After the
  // poll, call woke().
  bool prepare_sleep() noexcept {
    bridge_sleeping_.store(true, std::memory_order_seq_cst);
    for (const auto& queues : shards_) {
      if (!queues->to_bridge.empty_before_sleep()) {
        bridge_sleeping_.store(false, std::memory_order_relaxed);
        return false;
      }
    }
    return true;
  }
  void woke() noexcept {
    bridge_sleeping_.store(false, std::memory_order_relaxed);
    std::uint64_t count;
    [[maybe_unused]] const auto got = ::read(wake_fd_, &count, sizeof count);  // reset
  }
  int wake_fd() const noexcept { return wake_fd_; }
  // After the bridge thread was joined: the calling thread becomes the bridge side (a last
  // receive() once the thread that ran the client is gone).
  void release_bridge_side() noexcept {
    for (const auto& queues : shards_) {
      queues->to_shard.release_producer();
      queues->to_bridge.release_consumer();
    }
  }

  // --- A shard (each shard touches only its own pair) ---
  // At most count_max messages per call (a turn's share of a busy bridge).
  template <class Handle>
  std::size_t drain(std::uint32_t shard, Handle&& handle,
                    std::size_t count_max = ToShardCapacity) noexcept {
    return pair(shard).to_shard.consume(handle, count_max);
  }
  // Stages an answer; false when the bridge's queue is full (the caller keeps it and retries).
  bool answer(std::uint32_t shard, const ToBridge& message) noexcept {
    return pair(shard).to_bridge.try_push(message);
  }
  // End of the shard's turn: publishes its answers; wakes a sleeping bridge through `ring`.
  void publish_answers(std::uint32_t shard, net::Ring& ring) noexcept {
    if (pair(shard).to_bridge.publish() == 0) return;
    if (bridge_sleeping_.load(std::memory_order_seq_cst) &&
        bridge_sleeping_.exchange(false, std::memory_order_seq_cst)) {
      ring.write_eventfd(wake_fd_);
    }
  }
  // Whether a shard about to sleep has anything to drain (seq_cst, paired with publish()).
  bool waiting(std::uint32_t shard) const noexcept {
    return !shards_[shard]->to_shard.empty_before_sleep();
  }

 private:
  struct Pair {
    SpscQueue<ToShard, ToShardCapacity> to_shard;
    SpscQueue<ToBridge, ToBridgeCapacity> to_bridge;
  };
  Pair& pair(std::uint32_t shard) noexcept {
    TYTO_ASSERT(shard < shards_.size());
    return *shards_[shard];
  }

  std::vector<std::unique_ptr<Pair>> shards_;
  alignas(cache_line_size) std::atomic<bool> bridge_sleeping_{false};
  int wake_fd_ = -1;
};

}  // namespace tyto::shard
