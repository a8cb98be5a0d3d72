// Waking a shard that sleeps in the kernel (io_uring_submit_and_wait): the one mechanism every
// producer uses — other shards (from their own rings), the runtime's controlling thread and the
// bridges (each from a Waker, a small ring of its own).
//
// Presence is the consumer's side: `sleeping` is set by the shard before its last look at its
// queues; a producer publishes first, then takes the flag (both seq_cst), so either it sees the
// flag and wakes the shard with a MSG_RING, or the shard sees its messages before sleeping.
#pragma once

#include <atomic>
#include <string>

#include "tyto/core/spsc.hpp"
#include "tyto/net/ring.hpp"

namespace tyto::shard {

struct Presence {
  alignas(cache_line_size) std::atomic<bool> sleeping{false};
  std::atomic<int> ring_fd{-1};  // -1 until the shard's ring exists
};

// Posts a wake-up from `from` to `target` if the target announced a sleep; true if it did. The
// caller has published its messages (seq_cst) before calling, and submits `from` afterwards.
inline bool wake_if_sleeping(net::Ring& from, Presence& target) noexcept {
  if (!target.sleeping.load(std::memory_order_seq_cst) ||
      !target.sleeping.exchange(false, std::memory_order_seq_cst)) {
    return false;
  }
  const int fd = target.ring_fd.load(std::memory_order_acquire);
  if (fd >= 0) from.wake(fd);
  return true;
}

// A non-shard thread's way to wake shards: its own small ring (not SINGLE_ISSUER-bound to a
// shard). Used by one thread at a time.
class Waker {
 public:
  // Error text or ""; without a ring, wake-ups are skipped (shards still tick once a second).
  std::string init() { return ring_.init(64, false); }
  bool wake_if_sleeping(Presence& target) noexcept {
    return ring_.ready() && shard::wake_if_sleeping(ring_, target);
  }
  // Wakes `target` whether or not it sleeps (a wake-up of an awake shard costs it one CQE).
  void wake(Presence& target) noexcept {
    const int fd = target.ring_fd.load(std::memory_order_acquire);
    if (ring_.ready() && fd >= 0) ring_.wake(fd);
  }
  // Sends the queued wake-ups and reaps the completions of earlier ones.
  void flush() noexcept {
    if (!ring_.ready()) return;
    ring_.submit();
    ring_.drain([](const io_uring_cqe&) {});
  }

 private:
  net::Ring ring_;
};

}  // namespace tyto::shard
