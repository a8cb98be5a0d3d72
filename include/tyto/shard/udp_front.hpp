// UdpFront: the UDP tracker protocol (BEP 15, BEP 41) on one shard. It owns the shard's UDP
// sockets; its only session state is the stateless connection id (a keyed MAC, DESIGN §6).
//
// One announce: on_completion (a datagram) → parse → connection id checked → access list →
// owner = shard_of(info_hash): this shard queues it, applies it (apply_queued) and replies, or
// forwards a ForwardedUdpAnnounce and the owner's UdpFront applies it and replies from its own
// socket for the same address (SO_REUSEPORT: every shard has one). A full mailbox drops the
// request, counted: the client retries (DESIGN §3).
//
// Announces this shard owns are not applied as their datagrams are handled: they are queued
// (copied: the receive buffer is recycled at once) and applied as a batch by apply_queued(),
// after the store read ahead over the whole batch (PeerStore::prefetch), so the batch's cache
// misses overlap. Announces other shards forward are queued the same way as the mailboxes are
// drained. In private mode the batch also reads ahead the passkey's user, the torrent and the
// ledger entry, and admits by passkey there (an owned announce's passkey is checked in the
// batch, not as its datagram is handled). The completions are walked once per turn; the queue is
// empty again at the end of every step of the turn that fills it (the mailboxes, the completions).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "tyto/core/request.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/proto/connection_id.hpp"
#include "tyto/proto/udp.hpp"
#include "tyto/shard/ledger.hpp"
#include "tyto/shard/messages.hpp"
#include "tyto/store/catalogue.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::shard {

class Shard;
struct PendingScrape;

// Private mode: what the owner reads ahead for a queued announce (Shard::begin_read_ahead,
// read_ahead_rows, finish_read_ahead) before the batch is applied.
struct PrivateReadAhead {
  store::Passkey passkey;  // to admit by, when has_passkey (else the member came admitted)
  bool has_passkey = false;
  std::uint64_t user_hash = 0;
  std::uint64_t torrent_hash = 0;
  const store::TorrentRow* torrent = nullptr;  // finish_read_ahead's (nullptr: unregistered)
  std::uint32_t ledger_tag = 0;  // Ledger::prefetch's, when torrent and the member's user are set
  bool refused = false;          // finish_read_ahead refused it (answered; not to be applied)
};

class UdpFront {
 public:
  UdpFront(Shard& shard, const proto::ConnectionIds& connection_ids) noexcept
      : shard_(shard), connection_ids_(connection_ids) {}

  std::string bind(std::span<const net::SocketAddress> listeners) { return udp_.bind(listeners); }
  int fd(std::uint32_t listener) const noexcept { return udp_.fd(listener); }
  std::string open(net::Ring& ring, net::UdpSendMode send_mode);

  // Completions of Op::udp_recv and Op::udp_send. An announce this shard owns is queued; call
  // apply_queued() once the turn's completions are handled.
  void on_completion(const io_uring_cqe& cqe) noexcept;
  // On the owner: queues an announce for apply_queued() (applying the queue first when full):
  // received here, or forwarded by another shard (Shard::on_message), read ahead alike.
  // In private mode `passkey`, when given, is still to be checked: the batch admits it (a
  // refusal is answered from apply_queued).
  void queue_announce(const AnnounceRequest& request, const Member& member,
                      std::uint32_t transaction_id, const net::UdpRoute& route,
                      const store::Passkey* passkey = nullptr) noexcept;
  // Applies the queued announces (read ahead over all of them first) and sends their replies.
  void apply_queued() noexcept;
  void send_scrape_reply(const PendingScrape& pending) noexcept;
  // A held announce reply without peers (a `stopped`, once durable).
  void send_announce_reply(const AnnounceReply& reply, std::uint32_t transaction_id,
                           const net::UdpRoute& route) noexcept;
  // End of turn: sends what is batched.
  void flush() noexcept { udp_.flush(); }
  bool idle() const noexcept { return queued_count_ == 0 && udp_.sends_idle(); }
  const net::UdpCounters& counters() const noexcept { return udp_.counters(); }

 private:
  void on_datagram(const net::Datagram& datagram) noexcept;
  void on_announce(const proto::udp::AnnounceRequest& request, const net::UdpRoute& route) noexcept;
  void on_scrape(const proto::udp::ScrapeRequest& request, const net::UdpRoute& route) noexcept;
  // On the owner: applies a queued announce (its lookup read ahead) and sends the reply.
  void apply_announce(const AnnounceRequest& request, const Member& member,
                      std::uint32_t transaction_id, const net::UdpRoute& route,
                      const store::SwarmLookup& lookup, const PrivateReadAhead* ahead) noexcept;
  void send_connect_reply(std::uint32_t transaction_id, const net::Datagram& datagram) noexcept;
  void send_error(std::uint32_t transaction_id, std::string_view message,
                  const net::UdpRoute& route) noexcept;

  Shard& shard_;
  proto::ConnectionIds connection_ids_;
  net::UdpSockets udp_;
  // Announces this shard owns waiting for apply_queued(), [0, queued_count_), each with its
  // lookup begun (store::SwarmLookup: the info_hash is hashed once, here, by this shard's
  // store). The lookups sit apart so the store reads ahead over them in place.
  std::array<ForwardedUdpAnnounce, store::PeerStore::prefetch_batch_max> queued_;
  std::array<store::SwarmLookup, store::PeerStore::prefetch_batch_max> queued_lookups_;
  // Private mode: each queued announce's read-ahead (Shard::begin_read_ahead), same index.
  std::array<PrivateReadAhead, store::PeerStore::prefetch_batch_max> queued_private_;
  std::uint32_t queued_count_ = 0;
};

// The failure reason of a refused announce, for both protocols.
const char* announce_status_message(AnnounceStatus status) noexcept;
inline constexpr const char* not_allowed_reason = "info_hash not allowed on this tracker";

}  // namespace tyto::shard
