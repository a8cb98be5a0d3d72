// Protocol-neutral announce and scrape requests and replies: what proto produces from UDP and
// HTTP bytes and what the peer store (swarm) consumes. No protocol framing lives here.
#pragma once

#include <cstdint>

#include "tyto/core/types.hpp"

namespace tyto {

// Numbering of BEP 15; HTTP's event strings map onto it.
enum class AnnounceEvent : std::uint8_t { none = 0, completed = 1, started = 2, stopped = 3 };

struct AnnounceRequest {
  InfoHash info_hash;
  PeerId peer_id;
  PeerEndpoint peer;  // where other peers reach this one (after proxy/`ip` rules)
  std::uint64_t uploaded_bytes = 0;
  std::uint64_t downloaded_bytes = 0;
  std::uint64_t left_bytes = 0;  // 0 makes a seeder
  AnnounceEvent event = AnnounceEvent::none;
  std::int32_t numwant = -1;  // as sent; negative means the tracker's default, 0 none
  std::uint32_t key = 0;
};

// How many peers an announce gets: a negative numwant (BEP 15's -1; HTTP without the parameter)
// is the tracker's default, 0 is none (libtorrent sends it with `stopped`; monitors announce for
// the counts alone), and no request gets more than the maximum. Both protocols apply this; UDP
// then fits the datagram.
inline std::uint32_t peers_wanted(std::int32_t numwant, std::uint32_t numwant_default,
                                  std::uint32_t numwant_max) noexcept {
  const std::uint32_t wanted = numwant < 0 ? numwant_default : static_cast<std::uint32_t>(numwant);
  return wanted < numwant_max ? wanted : numwant_max;
}

enum class AnnounceStatus : std::uint8_t {
  ok,
  swarm_limit,  // new swarm refused: the shard holds swarms_max swarms
  peer_limit,   // new peer refused: the swarm holds peers_max peers
  // Private tracker, decided by the owner before the store sees the announce (nothing recorded):
  torrent_unregistered,  // not in the catalogue's torrents
  user_torrent_full,     // the user has peers_per_user_torrent_max active peers in the torrent
  ledger_full,           // the shard's accounting table is full: no new peer can be accounted
};

// Counts after the announce was applied. `peers_count` peers of the requester's family were
// written, in wire format, to the caller's buffer.
struct AnnounceReply {
  AnnounceStatus status = AnnounceStatus::ok;
  std::uint32_t seeders = 0;    // "complete"
  std::uint32_t leechers = 0;   // "incomplete"
  std::uint32_t completed = 0;  // completed downloads ever seen ("downloaded", BEP 48)
  std::uint32_t peers_count = 0;
  bool completion_counted = false;  // this announce counted a completion (event=completed, first time for the peer)
};

struct ScrapeEntry {
  std::uint32_t seeders = 0;
  std::uint32_t leechers = 0;
  std::uint32_t completed = 0;
  friend bool operator==(const ScrapeEntry&, const ScrapeEntry&) = default;
};

}  // namespace tyto
