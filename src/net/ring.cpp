#include "tyto/net/ring.hpp"

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

}  // namespace tyto::net
