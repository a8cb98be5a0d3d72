// Ring: one shard's io_uring (DESIGN §4). Created on the thread that uses it (SINGLE_ISSUER),
// with DEFER_TASKRUN so completions run only when the shard asks for them, once per loop turn.
//
// user_data packs an operation kind in the top byte and an index (socket, send slot, ...) in the
// rest, so nothing a completion refers to can dangle (liburing's proxy example does the same).
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

namespace tyto::net {

enum class Op : std::uint8_t {
  none = 0,
  udp_recv = 1,    // index: UDP listener
  udp_send = 2,    // index: send slot
  wake = 3,        // a MSG_RING from another shard or the main thread
  wake_sent = 4,   // completion of our own MSG_RING to another ring
  tcp_accept = 5,  // index: TCP listener
  tcp_recv = 6,    // index: connection slot
  tcp_send = 7,    // index: connection slot
  tcp_cancel = 8,  // completion of a cancel request
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

  int fd() const noexcept { return ring_.ring_fd; }
  io_uring* raw() noexcept { return &ring_; }
  bool ready() const noexcept { return initialized_; }

 private:
  io_uring ring_{};
  bool initialized_ = false;
};

}  // namespace tyto::net
