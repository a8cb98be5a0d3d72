// Ring: one shard's io_uring (DESIGN §4). Created on the thread that uses it (SINGLE_ISSUER),
// with DEFER_TASKRUN so completions run only when the shard asks for them, once per loop turn.
//
// user_data packs an operation kind in the top byte and an index (socket, send slot, ...) in the
// rest, so nothing a completion refers to can dangle (liburing's proxy example does the same).
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

#include "tyto/core/assert.hpp"

namespace tyto::net {

enum class Op : std::uint8_t {
  none = 0,
  udp_recv = 1,    // index: UDP listener
  udp_send = 2,    // index: send slot
  wake = 3,        // a MSG_RING from another shard or the main thread
  wake_sent = 4,   // completion of our own MSG_RING to another ring, or eventfd write
  tcp_accept = 5,  // index: TCP listener
  tcp_recv = 6,    // index: connection slot
  tcp_send = 7,    // index: connection slot
  tcp_cancel = 8,  // completion of a cancel request
  tcp_close = 9,   // index: connection slot; a close linked to the connection's last send
};

inline constexpr std::uint64_t pack_user_data(Op op, std::uint64_t index) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(op)} << 56) | (index & ((1ull << 56) - 1));
}
inline constexpr Op user_data_op(std::uint64_t user_data) noexcept {
  return static_cast<Op>(user_data >> 56);
}
inline constexpr std::uint64_t user_data_index(std::uint64_t user_data) noexcept {
  return user_data & ((1ull << 56) - 1);
}

// Empty when the kernel supports everything tyto uses; otherwise why not, for the operator.
std::string io_uring_support_problem();

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // sq_entries: power of two; the CQ gets 4× as many entries. Returns an error text or "".
  std::string init(unsigned sq_entries, bool single_issuer);

  // Never null: when the SQ is full it submits what is queued first.
  io_uring_sqe* sqe() noexcept;
  // Makes sure the next `count` sqe() calls do not submit in between (a link chain must go in
  // one submission: its last entry ends the chain there). Submits first if fewer are free.
  void reserve(unsigned count) noexcept;

  // Submits queued SQEs and runs deferred completions without waiting.
  void submit() noexcept;
  // Submits, then waits for at least one completion or `timeout_ms`.
  void submit_and_wait(unsigned timeout_ms) noexcept;

  // Calls handle(const io_uring_cqe&) for every ready completion, then frees them in one step.
  template <class Handle>
  unsigned drain(Handle&& handle) noexcept {
    unsigned head;
    unsigned count = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      handle(*cqe);
      ++count;
    }
    io_uring_cq_advance(&ring_, count);
    return count;
  }

  // Posts a wake-up completion (Op::wake) on another ring (IORING_OP_MSG_RING).
  void wake(int target_ring_fd) noexcept;
  // Queues an 8-byte write of 1 to an eventfd (wakes a thread polling it; completes as wake_sent).
  void write_eventfd(int eventfd) noexcept;

  int fd() const noexcept { return ring_.ring_fd; }
  io_uring* raw() noexcept { return &ring_; }
  bool ready() const noexcept { return initialized_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
};

// ProvidedBuffers: a ring of `count` receive buffers of `size` bytes each that the kernel picks
// from (io_uring provided buffers, buffer group `group`), for multishot receives. Mapped by hand:
// liburing 2.3 has no io_uring_setup_buf_ring. Owned by one shard, used on its thread; the
// registration ends with the ring, the mappings with this object (destroy the ring first).
class ProvidedBuffers {
 public:
  // count: a power of two below 2^15.
  ProvidedBuffers(std::uint32_t count, std::uint32_t size, std::uint16_t group) noexcept;
  ~ProvidedBuffers();
  ProvidedBuffers(const ProvidedBuffers&) = delete;
  ProvidedBuffers& operator=(const ProvidedBuffers&) = delete;

  // Maps the buffers, registers them with `ring` and hands every one to the kernel.
  std::string register_with(Ring& ring);

  std::uint16_t group() const noexcept { return group_; }
  std::uint8_t* address(std::uint32_t id) const noexcept {
    TYTO_ASSERT(id < count_);
    return buffers_ + std::size_t{id} * size_;
  }
  // Hands buffer `id` back to the kernel once its data has been used. `id` comes from a CQE.
  void give_back(std::uint32_t id) noexcept {
    io_uring_buf_ring_add(ring_, address(id), size_, static_cast<unsigned short>(id),
                          io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(ring_, 1);
  }

 private:
  std::uint32_t count_;
  std::uint32_t size_;
  std::uint16_t group_;
  io_uring_buf_ring* ring_ = nullptr;  // count_ buffer descriptors
  std::uint8_t* buffers_ = nullptr;    // count_ × size_ bytes
};

}  // namespace tyto::net
