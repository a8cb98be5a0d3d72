// The storage bridge (DESIGN §9): the queues between the shards and the thread that runs the
// storage backend (store/backend.hpp) for the private tracker. A Bridge (bridge.hpp) like the
// ops server's, with these message kinds and policies:
//  - bridge → shard: catalogue changes (store::CatalogueChange), one row each. A removal names the
//    row by what the shard keys it by: a user by passkey, a torrent by info_hash (the bridge keeps
//    a mirror of the catalogue to know them). Users and client rules go to every shard, a torrent
//    to the shard owning its info_hash. Never dropped: what a full queue refuses waits in the
//    bridge's outbox for that shard, in order.
//  - shard → bridge: accounting deltas (store::AccountingDelta). Never dropped: the shard's Ledger
//    keeps a delta summed until the bridge's queue takes it. A delta may carry a durability
//    ticket (storage.sync = "always": a `stopped` announce whose reply the shard holds); the
//    bridge answers `durable` with that ticket once the delta is committed to the database or
//    appended to the storage journal and fsync'd, and only then does the shard reply.
//  - shard → bridge: completions (store::CompletionDelta), when completed counts are persisted.
//    Never dropped: the shard's CompletionTable keeps them summed until the queue takes them.
#pragma once

#include <cstddef>

#include "tyto/shard/bridge.hpp"
#include "tyto/store/accounting.hpp"
#include "tyto/store/catalogue.hpp"

namespace tyto::shard {

struct StorageToShard {
  enum class Kind : std::uint8_t { catalogue_change, durable };
  Kind kind = Kind::catalogue_change;
  store::CatalogueChange change;  // catalogue_change
  std::uint64_t ticket = 0;       // durable
};

struct StorageFromShard {
  enum class Kind : std::uint8_t { delta, completion };
  store::AccountingDelta delta;  // delta
  std::uint64_t ticket = 0;      // delta; 0: nobody waits on it
  Kind kind = Kind::delta;
  store::CompletionDelta completion{};  // completion
};

inline constexpr std::size_t storage_changes_queue_max = 1024;  // per shard
inline constexpr std::size_t storage_deltas_queue_max = 4096;   // per shard
using StorageBridge =
    Bridge<StorageToShard, StorageFromShard, storage_changes_queue_max, storage_deltas_queue_max>;

}  // namespace tyto::shard
