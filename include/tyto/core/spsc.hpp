// SpscQueue<T, capacity>: a bounded single-producer single-consumer ring of fixed-size messages
// between two shards. Never allocates after construction; capacity is a power of two.
//
// Batching: the producer stages messages with try_push() and makes them visible with one
// release store in publish() (once per loop turn); the consumer takes everything visible with
// consume() and frees the slots with one release store at the end. The producer's and the
// consumer's indices, and each side's cached copy of the other's, sit on separate cache lines so
// the two cores never write the same line.
//
// Ownership: exactly one thread calls try_push/publish (the producer shard) and exactly one
// calls consume (the consumer shard); debug builds check it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "tyto/core/assert.hpp"
#include "tyto/core/owner.hpp"

namespace tyto {

inline constexpr std::size_t cache_line_size = 64;

template <class T, std::size_t Capacity>
class SpscQueue {
  static_assert(std::is_trivially_copyable_v<T>, "messages are plain data");
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "capacity is a power of two");

 public:
  static constexpr std::size_t capacity = Capacity;

  SpscQueue() = default;
  SpscQueue(const SpscQueue&) = delete;
  SpscQueue& operator=(const SpscQueue&) = delete;

  // After the producer's or the consumer's thread was joined: another thread may take its side.
  void release_producer() noexcept { producer_.owner.release(); }
  void release_consumer() noexcept { consumer_.owner.release(); }

  // Producer: stage one message. False when the ring is full (caller counts the refusal).
  bool try_push(const T& message) noexcept {
    producer_.owner.check();
    if (producer_.tail_staged - producer_.head_cached == Capacity) {
      producer_.head_cached = head_.value.load(std::memory_order_acquire);
      if (producer_.tail_staged - producer_.head_cached == Capacity) return false;
    }
    slots_[producer_.tail_staged & (Capacity - 1)] = message;
    ++producer_.tail_staged;
    return true;
  }

  // Producer: make every staged message visible. Returns how many became visible.
  std::size_t publish() noexcept {
    producer_.owner.check();
    const std::size_t published = producer_.tail_staged - producer_.tail_published;
    if (published != 0) {
      // seq_cst, not just release: a producer that next checks whether the consumer sleeps
      // (Dekker's pattern, see Shard) must not have that load pass this store.
      tail_.value.store(producer_.tail_staged, std::memory_order_seq_cst);
      producer_.tail_published = producer_.tail_staged;
    }
    return published;
  }

  // Consumer: call `handle(const T&)` for every visible message, then free their slots at once.
  // At most `count_max` messages per call, so one busy producer cannot starve a loop turn.
  template <class Handle>
  std::size_t consume(Handle&& handle, std::size_t count_max = Capacity) noexcept {
    consumer_.owner.check();
    // One acquire load per call: consume() runs once per loop turn, not once per message.
    const std::size_t tail = tail_.value.load(std::memory_order_acquire);
    std::size_t count = tail - consumer_.head;
    if (count > count_max) count = count_max;
    for (std::size_t i = 0; i < count; ++i) {
      handle(slots_[(consumer_.head + i) & (Capacity - 1)]);
    }
    if (count != 0) {
      consumer_.head += count;
      head_.value.store(consumer_.head, std::memory_order_release);
    }
    return count;
  }

  // Consumer, about to sleep: is anything published? seq_cst, paired with publish().
  bool empty_before_sleep() const noexcept {
    return tail_.value.load(std::memory_order_seq_cst) ==
           head_.value.load(std::memory_order_relaxed);
  }

  // Either side: approximate number of published, unconsumed messages (for metrics).
  std::size_t depth_approx() const noexcept {
    return tail_.value.load(std::memory_order_relaxed) -
           head_.value.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(cache_line_size) AtomicIndex {
    std::atomic<std::size_t> value{0};
  };
  struct alignas(cache_line_size) ProducerState {
    std::size_t tail_staged = 0;
    std::size_t tail_published = 0;
    std::size_t head_cached = 0;
    OwnerThread owner;
  };
  struct alignas(cache_line_size) ConsumerState {
    std::size_t head = 0;
    OwnerThread owner;
  };

  AtomicIndex tail_;  // written by the producer only
  AtomicIndex head_;  // written by the consumer only
  ProducerState producer_;
  ConsumerState consumer_;
  alignas(cache_line_size) T slots_[Capacity];
};

}  // namespace tyto
