// PeerStore: the storage boundary (DESIGN §9). The shard talks to a peer store only through
// these operations on core's plain types; the in-memory SwarmStore is the default, and external
// stores plug in by satisfying the same concept without touching proto or net.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>

#include "tyto/core/request.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {

template <class Store>
concept PeerStore = requires(Store& store, const Store& view, const AnnounceRequest& request,
                             const InfoHash& info_hash, std::uint32_t now_s,
                             std::span<std::uint8_t> peers_out) {
  { store.announce(request, now_s, peers_out) }
  noexcept->std::same_as<AnnounceReply>;
  { view.scrape(info_hash) }
  noexcept->std::same_as<ScrapeEntry>;
  { store.expire_step(now_s) }
  noexcept;
  { view.counters() }
  noexcept->std::convertible_to<const StoreCounters&>;
};

static_assert(PeerStore<SwarmStore>);

}  // namespace tyto::swarm
