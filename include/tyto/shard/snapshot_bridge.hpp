// The snapshot bridge: how the snapshot writer thread (app/snapshot_writer.hpp) gets every
// shard's swarms while the shards run (periodic snapshots, README "Snapshots"), without locks
// and without reading shard memory. It is a Bridge (bridge.hpp) like every other non-shard
// thread's.
//
//  - The writer sends each shard a SnapshotRequest with a new generation. The shard (turn())
//    serialises its own swarms a bounded slice per loop turn (PeerStore::append_snapshot_slice;
//    at most snapshot_turn_budget of work per turn) into a piece buffer it owns.
//  - A piece of about snapshot_piece_bytes goes to the writer as a SnapshotPiece message: the
//    pointer's ownership moves with the message (the shard never touches it again; the receiver
//    deletes it). The last piece of a generation says so (last).
//  - Overload policy: a piece that finds the writer's queue full stays with the shard, which
//    stops slicing until the next turn finds room (its memory stays bounded to one piece).
//    A request that finds the shard's queue full is not sent (the writer counts a failure and
//    tries again at the next interval). A new generation abandons the old one: the shard starts
//    over; the writer frees pieces of a generation it no longer waits for.
//  - After the writer thread and the shards stopped, whatever is still queued is freed by
//    SnapshotWriter::discard_pieces (the owner of each queued pointer is the queue then).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "tyto/shard/bridge.hpp"

namespace tyto::shard {

struct SnapshotRequest {
  std::uint64_t generation = 0;
  std::uint32_t piece_bytes = 0;  // 0: snapshot_piece_bytes (the cluster's are one NATS message)
};

struct SnapshotPiece {
  std::uint64_t generation = 0;
  std::vector<std::uint8_t>* bytes = nullptr;  // owned by the receiver once taken
  std::uint64_t swarms = 0;                    // swarms begun in this piece (the header's count)
  bool last = false;                           // the shard's last piece of this generation
  // The shard's now_s when every record of the piece was cut (a piece never spans two): the
  // records' ages count from it, so a cluster's warm-up restores each peer's stamp exactly.
  std::uint32_t cut_s = 0;
};

inline constexpr std::size_t snapshot_piece_bytes = std::size_t{1} << 20;
// One slice's budget; a turn takes slices until snapshot_turn_budget is spent (at least one).
inline constexpr std::size_t snapshot_slice_bytes = std::size_t{1} << 10;
inline constexpr auto snapshot_turn_budget = std::chrono::microseconds(200);
static_assert(snapshot_slice_bytes * 4 <= snapshot_piece_bytes, "a piece holds several slices");

// A request at a time (4 leave room for one abandoned); 64 pieces (64 MiB) in flight per shard.
// Two of these: the snapshot writer's (ShardDirectory::snapshot) and the cluster's, which serves
// a warm-up to another node (ShardDirectory::cluster_snapshot, cluster_bridge.hpp).
using SnapshotBridge = Bridge<SnapshotRequest, SnapshotPiece, 4, 64>;

}  // namespace tyto::shard
