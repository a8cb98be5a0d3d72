#include "tyto/net/ring.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace tyto::net {

std::string io_uring_support_problem() {
  io_uring probe_ring{};
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  const int result = io_uring_queue_init_params(8, &probe_ring, &params);
  if (result < 0) {
    if (result == -ENOSYS || result == -EPERM) {
      return "io_uring is not available (" + std::string(std::strerror(-result)) +
             "): tyto needs Linux >= 6.1 with io_uring enabled (sysctl kernel.io_uring_disabled=0)";
    }
    return "io_uring setup with SINGLE_ISSUER|DEFER_TASKRUN failed (" +
           std::string(std::strerror(-result)) + "): tyto needs Linux >= 6.1";
  }
  std::string problem;
  io_uring_probe* probe = io_uring_get_probe_ring(&probe_ring);
  if (probe == nullptr) {
    problem = "cannot probe io_uring opcodes: tyto needs Linux >= 6.1";
  } else {
    const struct {
      int opcode;
      const char* name;
    } needed[] = {{IORING_OP_RECVMSG, "RECVMSG"},
                  {IORING_OP_SENDMSG, "SENDMSG"},
                  {IORING_OP_MSG_RING, "MSG_RING"}};
    for (const auto& op : needed) {
      if (!io_uring_opcode_supported(probe, op.opcode)) {
        problem = std::string("io_uring lacks ") + op.name + ": tyto needs Linux >= 6.1";
        break;
      }
    }
    io_uring_free_probe(probe);
  }
  if (problem.empty() && !(params.features & IORING_FEAT_NODROP)) {
    problem = "io_uring lacks IORING_FEAT_NODROP: tyto needs Linux >= 6.1";
  }
  io_uring_queue_exit(&probe_ring);
  return problem;
}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

std::string Ring::init(unsigned sq_entries, bool single_issuer) {
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  if (single_issuer) params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  params.cq_entries = sq_entries * 4;
  const int result = io_uring_queue_init_params(sq_entries, &ring_, &params);
  if (result < 0) return std::string("io_uring_queue_init: ") + std::strerror(-result);
  initialized_ = true;
  return {};
}

io_uring_sqe* Ring::sqe() noexcept {
  io_uring_sqe* entry = io_uring_get_sqe(&ring_);
  while (entry == nullptr) {
    io_uring_submit(&ring_);
    entry = io_uring_get_sqe(&ring_);
  }
  return entry;
}

void Ring::reserve(unsigned count) noexcept {
  TYTO_ASSERT(count <= ring_.sq.ring_entries);
  while (io_uring_sq_space_left(&ring_) < count) io_uring_submit(&ring_);
}

void Ring::submit() noexcept {
  io_uring_submit_and_get_events(&ring_);
}

void Ring::submit_and_wait(unsigned timeout_ms) noexcept {
  __kernel_timespec timeout{};
  timeout.tv_sec = timeout_ms / 1000;
  timeout.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
  io_uring_cqe* cqe = nullptr;
  io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
}

void Ring::wake(int target_ring_fd) noexcept {
  io_uring_sqe* entry = sqe();
  io_uring_prep_msg_ring(entry, target_ring_fd, 0, pack_user_data(Op::wake, 0), 0);
  io_uring_sqe_set_data64(entry, pack_user_data(Op::wake_sent, 0));
}

void Ring::write_eventfd(int eventfd) noexcept {
  // The kernel reads the 8 bytes when it runs the write: static storage outlives any SQE.
  static constexpr std::uint64_t one = 1;
  io_uring_sqe* entry = sqe();
  io_uring_prep_write(entry, eventfd, &one, sizeof one, 0);
  io_uring_sqe_set_data64(entry, pack_user_data(Op::wake_sent, 0));
}

ProvidedBuffers::ProvidedBuffers(std::uint32_t count, std::uint32_t size,
                                 std::uint16_t group) noexcept
    : count_(count), size_(size), group_(group) {
  TYTO_ASSERT(count > 0 && count < (1u << 15) && (count & (count - 1)) == 0);
}

ProvidedBuffers::~ProvidedBuffers() {
  if (ring_ != nullptr) munmap(ring_, std::size_t{count_} * sizeof(io_uring_buf));
  if (buffers_ != nullptr) munmap(buffers_, std::size_t{count_} * size_);
}

std::string ProvidedBuffers::register_with(Ring& ring) {
  TYTO_ASSERT(ring_ == nullptr);
  auto map = [](std::size_t bytes) {
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    return memory == MAP_FAILED ? nullptr : memory;
  };
  ring_ = static_cast<io_uring_buf_ring*>(map(std::size_t{count_} * sizeof(io_uring_buf)));
  if (ring_ == nullptr) return std::string("mmap buffer ring: ") + std::strerror(errno);
  buffers_ = static_cast<std::uint8_t*>(map(std::size_t{count_} * size_));
  if (buffers_ == nullptr) return std::string("mmap receive buffers: ") + std::strerror(errno);
  io_uring_buf_ring_init(ring_);
  io_uring_buf_reg registration{};
  registration.ring_addr = reinterpret_cast<std::uint64_t>(ring_);
  registration.ring_entries = count_;
  registration.bgid = group_;
  if (const int result = io_uring_register_buf_ring(ring.raw(), &registration, 0); result != 0) {
    return std::string("io_uring_register_buf_ring: ") + std::strerror(-result);
  }
  const int mask = io_uring_buf_ring_mask(count_);
  for (std::uint32_t id = 0; id < count_; ++id) {
    io_uring_buf_ring_add(ring_, address(id), size_, static_cast<unsigned short>(id), mask,
                          static_cast<int>(id));
  }
  io_uring_buf_ring_advance(ring_, static_cast<int>(count_));
  return {};
}

}  // namespace tyto::net
