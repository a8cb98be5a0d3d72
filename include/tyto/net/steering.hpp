// Kernel steering of UDP announces to the shard that owns their swarm (DESIGN §3).
//
// Every shard binds the same UDP addresses with SO_REUSEPORT; without steering the kernel picks
// a socket by the datagram's 4-tuple hash and about (N-1)/N of the announces take a cross-shard
// hop to their owner. With steering, a classic BPF program attached to each address's reuseport
// group (SO_ATTACH_REUSEPORT_CBPF) computes shard_of(info_hash) from the announce payload
// itself, so the announce arrives on the owner's socket. The program returns the socket's index
// in the group, which is the order the sockets were bound: the runtime binds shard 0's sockets
// first, then shard 1's, and so on. Anything that is not an announce (connects, scrapes, short
// or foreign datagrams) gets an index past the end, and the kernel falls back to its hash.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tyto/core/hash.hpp"

namespace tyto::net {

// How UDP datagrams reach a shard: the kernel's 4-tuple hash, or announces steered by info_hash.
enum class UdpSteering : std::uint8_t { hash, info_hash };

// The program: shard_of(info_hash at payload offset 16, key, shards_count) for a datagram of at
// least 98 bytes with action 1 (announce); 0xffffffff (fall back) for anything else.
std::vector<sock_filter> announce_steering_program(ShardKey key, std::uint32_t shards_count);

// Attaches the program to the reuseport group `fd` belongs to. Error text or "".
std::string attach_announce_steering(int fd, ShardKey key, std::uint32_t shards_count);

}  // namespace tyto::net
