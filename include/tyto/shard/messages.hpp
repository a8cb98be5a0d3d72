// What shards say to each other (DESIGN §1, §3). Fixed-size plain messages on one SPSC mailbox
// per ordered pair of shards; a message is self-contained (no pointers into the sender's memory),
// so nothing the receiver reads can be freed under it.
#pragma once

#include <cstdint>
#include <variant>

#include "tyto/core/request.hpp"
#include "tyto/core/spsc.hpp"
#include "tyto/net/tcp_server.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/shard/ledger.hpp"

namespace tyto::shard {

inline constexpr std::uint32_t shards_max = 64;

// A UDP announce received by one shard for a swarm another shard owns. The owner applies it and
// sends the reply from its own socket for the same listen address (SO_REUSEPORT: every shard has
// one), from the address the client used.
struct ForwardedUdpAnnounce {
  net::UdpRoute route;
  std::uint32_t transaction_id = 0;
  AnnounceRequest request;
  Member member;  // private tracker: who announced (user_id 0: public)
};

// An HTTP announce received by one shard for a swarm another shard owns. The receiving shard owns
// the TCP connection and answers it; it lends the owner one of its lent buffers (room for
// peers_max peers), named by index: the owner finds it through ShardDirectory::lent_buffer (the
// one place where a shard writes into memory another shard owns, and only between this message
// and the HttpAnnounceAnswer). The receiver does not touch the buffer until the answer comes
// back, so it has exactly one user at a time; both messages travel on ordered SPSC rings.
struct ForwardedHttpAnnounce {
  net::ConnectionRef connection;
  AnnounceRequest request;
  Member member;
  std::uint32_t peers_max = 0;
  std::uint32_t lent_index = 0;
};

struct HttpAnnounceAnswer {
  net::ConnectionRef connection;
  AnnounceReply reply;
  std::uint32_t lent_index = 0;
};

// A scrape's hashes are split by owner; each owner answers the parts it owns and the receiving
// shard gathers the answers into one reply. `positions` are indexes into the original request,
// `pending_index`/`generation` name the receiver's gathering slot (stale answers are ignored).
inline constexpr std::size_t scrape_part_hashes_max = 8;

struct ScrapePart {
  std::uint32_t pending_index = 0;
  std::uint32_t generation = 0;
  std::uint8_t count = 0;
  std::uint8_t positions[scrape_part_hashes_max] = {};
  InfoHash info_hashes[scrape_part_hashes_max];
};

struct ScrapeAnswer {
  std::uint32_t pending_index = 0;
  std::uint32_t generation = 0;
  std::uint8_t count = 0;
  std::uint8_t positions[scrape_part_hashes_max] = {};
  ScrapeEntry entries[scrape_part_hashes_max];
};

using Message = std::variant<ForwardedUdpAnnounce, ScrapePart, ScrapeAnswer, ForwardedHttpAnnounce,
                             HttpAnnounceAnswer>;
static_assert(std::is_trivially_copyable_v<Message>);
static_assert(sizeof(Message) <= 4 * cache_line_size, "keep mailbox slots small");

// 1024 messages per ordered pair: a full loop turn's worth of forwards at line rate.
inline constexpr std::size_t mailbox_capacity = 1024;
using Mailbox = SpscQueue<Message, mailbox_capacity>;

}  // namespace tyto::shard
