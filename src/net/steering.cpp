#include "tyto/net/steering.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "tyto/core/assert.hpp"
#include "tyto/core/limits.hpp"

namespace tyto::net {

namespace {

constexpr std::uint32_t payload_action_offset = 8;      // BEP 15: connection_id, then action
constexpr std::uint32_t payload_info_hash_offset = 16;  // then transaction_id, then info_hash
constexpr std::uint32_t action_announce = 1;
constexpr std::uint32_t fall_back = 0xffffffffu;  // >= sockets in the group: the kernel's hash

sock_filter statement(std::uint16_t code, std::uint32_t k) {
  return BPF_STMT(code, k);
}

}  // namespace

std::vector<sock_filter> announce_steering_program(ShardKey key, std::uint32_t shards_count) {
  TYTO_ASSERT(shards_count > 0);
  // The steps of shard_mix (core/hash.hpp), in the accumulator A with X and M[0] as temporaries.
  // Absolute loads are big-endian, as shard_of reads the info_hash's words.
  std::vector<sock_filter> program = {
      statement(BPF_LD | BPF_W | BPF_LEN, 0),
      // Jumps are relative to the next instruction; both land on the last one (fall back).
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, limits::udp_announce_request_size, 0, 23),
      statement(BPF_LD | BPF_W | BPF_ABS, payload_action_offset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, action_announce, 0, 21),
      statement(BPF_LD | BPF_W | BPF_ABS, payload_info_hash_offset),  // word0
      statement(BPF_ALU | BPF_XOR | BPF_K, key.k0),
      statement(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),
      statement(BPF_MISC | BPF_TAX, 0),
      statement(BPF_ALU | BPF_RSH | BPF_K, 15),
      statement(BPF_ALU | BPF_XOR | BPF_X, 0),  // h ^= h >> 15
      statement(BPF_ST, 0),
      statement(BPF_LD | BPF_W | BPF_ABS, payload_info_hash_offset + 4),  // word1
      statement(BPF_ALU | BPF_XOR | BPF_K, key.k1),
      statement(BPF_LDX | BPF_W | BPF_MEM, 0),
      statement(BPF_ALU | BPF_XOR | BPF_X, 0),
      statement(BPF_ALU | BPF_MUL | BPF_K, 0x85EBCA77u),  // h = (h ^ word1 ^ k1) * c
      statement(BPF_MISC | BPF_TAX, 0),
      statement(BPF_ALU | BPF_RSH | BPF_K, 13),
      statement(BPF_ALU | BPF_XOR | BPF_X, 0),  // h ^= h >> 13
      statement(BPF_ALU | BPF_MUL | BPF_K, 0xC2B2AE3Du),
      statement(BPF_MISC | BPF_TAX, 0),
      statement(BPF_ALU | BPF_RSH | BPF_K, 16),
      statement(BPF_ALU | BPF_XOR | BPF_X, 0),  // h ^= h >> 16
      statement(BPF_ALU | BPF_MOD | BPF_K, shards_count),
      statement(BPF_RET | BPF_A, 0),
      statement(BPF_RET | BPF_K, fall_back),
  };
  TYTO_ASSERT(program.size() == 26);  // the jumps above count on this shape
  return program;
}

std::string attach_announce_steering(int fd, ShardKey key, std::uint32_t shards_count) {
  std::vector<sock_filter> program = announce_steering_program(key, shards_count);
  sock_fprog description{};
  description.len = static_cast<unsigned short>(program.size());
  description.filter = program.data();
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &description, sizeof description) != 0) {
    return std::string("SO_ATTACH_REUSEPORT_CBPF: ") + std::strerror(errno);
  }
  return {};
}

}  // namespace tyto::net
