// ScrapeGather: one shard's scrapes in flight. A scrape's info_hashes are split by owner: this
// shard answers the ones it owns, the others go to their owners as ScrapeParts, and the
// ScrapeAnswers are gathered back into one reply, which the front end that received the scrape
// writes (UDP datagram or HTTP response). Both front ends share this, because the route is the
// same; only the reply differs.
//
// Bounds: pending_scrapes_count slots; a scrape that finds none free is dropped and counted. An
// owner's answer can be lost (its mailbox back was full): the slot gives up after
// scrape_gather_timeout_s and the client retries. A slot's generation makes late answers stale.
#pragma once

#include <cstdint>
#include <vector>

#include "tyto/core/limits.hpp"
#include "tyto/core/request.hpp"
#include "tyto/net/tcp_server.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/shard/messages.hpp"

namespace tyto::shard {

class Shard;

struct PendingScrape {
  enum class Front : std::uint8_t { udp, http };
  // Where the gathered reply goes: a UDP client, or an HTTP connection of this shard.
  Front front = Front::udp;
  net::ConnectionRef connection;
  net::UdpRoute route;
  std::uint32_t transaction_id = 0;
  InfoHash info_hashes[limits::udp_scrape_hashes_max];
  std::uint32_t generation = 0;
  std::uint32_t deadline_s = 0;
  std::uint8_t hashes_count = 0;
  std::uint8_t answers_missing = 0;
  bool in_use = false;
  ScrapeEntry entries[limits::udp_scrape_hashes_max];
};
static_assert(limits::http_scrape_hashes_max <= limits::udp_scrape_hashes_max,
              "a pending scrape holds either kind");

class ScrapeGather {
 public:
  static constexpr std::uint32_t pending_scrapes_count = 256;
  static constexpr std::uint32_t scrape_gather_timeout_s = 2;

  explicit ScrapeGather(Shard& shard);

  // A free slot with hashes_count set (the caller writes the hashes and the reply's route, then
  // calls gather), or null when all are busy (counted).
  PendingScrape* start(std::uint32_t hashes_count) noexcept;
  // Answers the hashes this shard owns, sends the rest to their owners in parts, and replies at
  // once when nothing is missing; otherwise the slot waits for the answers (or its deadline).
  void gather(PendingScrape& pending) noexcept;
  // On an owner: answers a part.
  void on_part(const ScrapePart& part, std::uint32_t from) noexcept;
  void on_answer(const ScrapeAnswer& answer) noexcept;
  // Once a second: gives up on slots past their deadline.
  void expire(std::uint32_t now_s) noexcept;
  bool idle() const noexcept { return free_.size() == pending_scrapes_count; }

 private:
  void release(std::uint32_t pending_index) noexcept;

  Shard& shard_;
  std::vector<PendingScrape> pending_;
  std::vector<std::uint32_t> free_;
  // gather()'s scratch: one part under construction per owner. A member: a local array of
  // shards_max parts was zero-filled on every scrape (~11 k instructions, bench/profile).
  std::vector<ScrapePart> parts_;
};

}  // namespace tyto::shard
