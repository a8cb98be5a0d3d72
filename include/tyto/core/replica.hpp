// ReplicaChange: one change another cluster node made to a swarm (issue 20, DESIGN §9 Cluster).
// Every node holds every swarm: a node's shards record what their announces changed, the NATS
// bridge carries batches of these, and every other node gives each one to the shard owning its
// info_hash, which applies it to its peer store (PeerStore::apply_replica) as if announced here,
// but with no reply, no statistics window counted as a local announce, nothing credited.
//
// Plain and small: it travels in fixed-size SPSC queue messages and in the batch codec.
#pragma once

#include <cstdint>
#include <type_traits>

#include "tyto/core/types.hpp"

namespace tyto {

struct ReplicaChange {
  enum class Kind : std::uint8_t {
    peer,          // a peer announced there: added, or updated (role, time of last announce)
    peer_removed,  // it stopped there (event=stopped; expiry is each node's own)
    completed,     // completions counted there (event=completed, once per peer)
  };
  Kind kind = Kind::peer;
  bool seeder = false;                // peer: left = 0
  std::uint16_t completed_count = 0;  // completed: completions to add
  // peer: the second of its last announce, wherever made, on the clock (now_s) of the store it
  // is given to: at or below 0 when that was before the clock began (the cluster's bridge
  // converts it between nodes through frame Unix time, core/clock.hpp).
  std::int32_t announced_s = 0;
  InfoHash info_hash;
  PeerEndpoint peer;  // peer, peer_removed
};
static_assert(std::is_trivially_copyable_v<ReplicaChange>);
static_assert(sizeof(ReplicaChange) == 48, "kept small: one travels per queue slot");

enum class ReplicaResult : std::uint8_t {
  applied,      // the store changed
  unchanged,    // nothing to do: the peer absent (removal), or as fresh and in the same role
  swarm_limit,  // a new swarm refused: the shard holds swarms_max (counted as swarms_refused)
  peer_limit,   // a new peer refused: the swarm holds peers_per_swarm_max (peers_refused)
  expired,      // the peer is past the peer timeout already: nothing recorded
};

}  // namespace tyto
