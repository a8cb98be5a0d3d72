#include "tyto/shard/udp_front.hpp"

#include "tyto/core/assert.hpp"
#include "tyto/core/log.hpp"
#include "tyto/proto/http.hpp"
#include "tyto/shard/shard.hpp"

namespace tyto::shard {

namespace udp = proto::udp;

const char* announce_status_message(AnnounceStatus status) noexcept {
  switch (status) {
    case AnnounceStatus::swarm_limit:
      return "tracker full: no new torrents accepted";
    case AnnounceStatus::peer_limit:
      return "torrent full: no new peers accepted";
    case AnnounceStatus::torrent_unregistered:
      return "torrent not registered with this tracker";
    case AnnounceStatus::user_torrent_full:
      return "too many active peers of your account in this torrent";
    case AnnounceStatus::ledger_full:
      return "tracker busy: no room to account a new peer, retry later";
    case AnnounceStatus::ok:
      break;
  }
  return "internal error";
}

std::string UdpFront::open(net::Ring& ring, net::UdpSendMode send_mode) {
  if (std::string error = udp_.open(ring); !error.empty()) return error;
  udp_.set_send_mode(send_mode);
  udp_.arm_all(ring);
  return {};
}

void UdpFront::on_completion(const io_uring_cqe& cqe) noexcept {
  if (net::user_data_op(cqe.user_data) == net::Op::udp_send) {
    udp_.sent(cqe);
    return;
  }
  TYTO_ASSERT(net::user_data_op(cqe.user_data) == net::Op::udp_recv);
  if (const auto datagram = udp_.receive(shard_.ring(), cqe)) on_datagram(*datagram);
  udp_.recycle(cqe);
}

void UdpFront::queue_announce(const AnnounceRequest& request, const Member& member,
                              std::uint32_t transaction_id, const net::UdpRoute& route,
                              const store::Passkey* passkey) noexcept {
  TYTO_DEBUG_ASSERT(shard_.owner_of(request.info_hash) == shard_.index());
  if (queued_count_ == queued_.size()) apply_queued();
  TYTO_ASSERT(queued_count_ < queued_.size());
  ForwardedUdpAnnounce& queued = queued_[queued_count_];
  queued.route = route;
  queued.transaction_id = transaction_id;
  queued.request = request;
  queued.member = member;
  queued_lookups_[queued_count_] = shard_.peer_store().start_lookup(request.info_hash);
  if (shard_.private_tracker()) {
    shard_.begin_read_ahead(request.info_hash, passkey, queued_private_[queued_count_]);
  }
  ++queued_count_;
}

// The batch's lookups start loading together before the first is served: a batch of lookups
// into tables far larger than the cache otherwise waits for each miss in turn.
void UdpFront::apply_queued() noexcept {
  const std::uint32_t count = queued_count_;
  if (count == 0) return;
  // Adds where it saw each record (SwarmLookup::position_hint).
  shard_.peer_store().prefetch({queued_lookups_.data(), count});
  const bool private_tracker = shard_.private_tracker();
  if (private_tracker) {
    for (std::uint32_t i = 0; i < count; ++i) shard_.read_ahead_rows(queued_private_[i]);
    for (std::uint32_t i = 0; i < count; ++i) {
      ForwardedUdpAnnounce& announce = queued_[i];
      if (const char* refusal =
              shard_.finish_read_ahead(queued_private_[i], announce.request, announce.member)) {
        send_error(announce.transaction_id, refusal, announce.route);
        queued_private_[i].refused = true;  // answered: not applied below
      }
    }
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    const ForwardedUdpAnnounce& announce = queued_[i];
    if (private_tracker && queued_private_[i].refused) continue;
    apply_announce(announce.request, announce.member, announce.transaction_id, announce.route,
                   queued_lookups_[i], private_tracker ? &queued_private_[i] : nullptr);
  }
  TYTO_ASSERT(queued_count_ == count);  // applying queues nothing
  queued_count_ = 0;
}

void UdpFront::on_datagram(const net::Datagram& datagram) noexcept {
  ShardCounters& counters = shard_.counters();
  if (shard_.draining()) {
    ++counters.dropped_stopping;
    return;
  }
  const auto parsed = udp::parse_request(datagram.payload, datagram.source);
  if (!parsed.ok()) {
    ++counters.udp_malformed;
    const udp::ParseFailure& failure = parsed.error();
    TYTO_LOG_LIMITED(log::Level::debug, "udp: malformed request from {}: {}",
                     net::to_string(datagram.source), failure.message());
    if (failure.answerable) send_error(failure.transaction_id, failure.message(), datagram.route);
    return;
  }
  const udp::Request& request = parsed.value();
  if (const auto* connect = std::get_if<udp::ConnectRequest>(&request.body)) {
    ++counters.udp_connects;
    send_connect_reply(connect->transaction_id, datagram);
    return;
  }
  // Announce or scrape: both carry a connection id (BEP 15), checked before anything else.
  const auto* announce = std::get_if<udp::AnnounceRequest>(&request.body);
  const auto* scrape = std::get_if<udp::ScrapeRequest>(&request.body);
  TYTO_ASSERT((announce != nullptr) != (scrape != nullptr));
  ++(announce != nullptr ? counters.udp_announces : counters.udp_scrapes);
  const std::uint64_t connection_id =
      announce != nullptr ? announce->connection_id : scrape->connection_id;
  if (!connection_ids_.valid(connection_id, datagram.source, shard_.connection_clock_s())) {
    ++counters.udp_bad_connection_id;
    send_error(announce != nullptr ? announce->transaction_id : scrape->transaction_id,
               "invalid or expired connection id", datagram.route);
    return;
  }
  if (announce != nullptr) {
    on_announce(*announce, datagram.route);
  } else {
    on_scrape(*scrape, datagram.route);
  }
}

void UdpFront::send_connect_reply(std::uint32_t transaction_id,
                                  const net::Datagram& datagram) noexcept {
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  const std::uint64_t id = connection_ids_.issue(datagram.source, shard_.connection_clock_s());
  const std::size_t size = udp::write_connect_reply(udp_.send_buffer(*slot), transaction_id, id);
  udp_.send(shard_.ring(), *slot, size, datagram.route);
}

void UdpFront::on_announce(const udp::AnnounceRequest& request,
                           const net::UdpRoute& route) noexcept {
  if (shard_.denied(request.announce.info_hash)) {
    ++shard_.counters().announces_denied;
    TYTO_LOG_LIMITED(log::Level::debug, "udp: announce for {} denied by the access list",
                     to_hex(request.announce.info_hash));
    send_error(request.transaction_id, not_allowed_reason, route);
    return;
  }
  const std::uint32_t owner = shard_.owner_of(request.announce.info_hash);
  Member member;
  if (shard_.private_tracker()) {
    // BEP 41: udp://host:port/<passkey>/announce sends "/<passkey>/announce" as URL data.
    // In place when one option holds it all (the usual case), else concatenated here.
    std::uint8_t url_data[512];
    std::span<const std::uint8_t> in_place = request.url_data_in_place();
    if (in_place.empty() && request.url_data_size != 0) {
      in_place = {url_data, request.url_data(url_data)};
    }
    std::string_view query, passkey;
    if (proto::http::route({reinterpret_cast<const char*>(in_place.data()), in_place.size()}, query,
                           passkey) != proto::http::Path::announce) {
      passkey = {};
    }
    // An owned announce with a well-formed passkey is admitted in its batch (read ahead).
    if (owner == shard_.index()) {
      if (const auto parsed = Shard::parse_passkey(passkey)) {
        queue_announce(request.announce, member, request.transaction_id, route, &*parsed);
        return;
      }
    }
    if (const char* refusal = shard_.admit_member(passkey, &request.announce, member)) {
      send_error(request.transaction_id, refusal, route);
      return;
    }
  }
  if (owner == shard_.index()) {
    queue_announce(request.announce, member, request.transaction_id, route);
    return;
  }
  ForwardedUdpAnnounce forwarded;
  forwarded.route = route;
  forwarded.transaction_id = request.transaction_id;
  forwarded.request = request.announce;
  forwarded.member = member;
  if (shard_.forward(owner, Message{forwarded})) ++shard_.counters().announces_forwarded;
}

void UdpFront::apply_announce(const AnnounceRequest& request, const Member& member,
                              std::uint32_t transaction_id, const net::UdpRoute& route,
                              const store::SwarmLookup& lookup,
                              const PrivateReadAhead* ahead) noexcept {
  TYTO_DEBUG_ASSERT(shard_.owner_of(request.info_hash) == shard_.index());
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  const std::span<std::uint8_t> buffer = udp_.send_buffer(*slot);
  const std::size_t wire_size = request.peer.wire_size();
  const ShardConfig& config = shard_.config();
  const std::uint32_t peers_max = udp::udp_peers_max(request.numwant, request.peer.family,
                                                     config.numwant_default, config.numwant_max);
  // The store writes peers straight into the datagram, after the 20-byte header.
  std::uint64_t ticket = 0;
  const AnnounceReply reply = shard_.apply_announce(
      request, member,
      buffer.subspan(limits::udp_announce_reply_header_size, std::size_t{peers_max} * wire_size),
      ticket, &lookup, ahead);
  if (ticket != 0) {
    // A `stopped` selects no peers: the counts are the whole reply, sent once it is durable.
    TYTO_ASSERT(reply.peers_count == 0);
    udp_.release_send_slot(*slot);
    shard_.hold_reply({ticket, Shard::HeldUdpReply{route, transaction_id, reply}});
    return;
  }
  std::size_t size = 0;
  if (reply.status != AnnounceStatus::ok) {
    ++shard_.counters().udp_error_replies;
    size = udp::write_error_reply(buffer, transaction_id, announce_status_message(reply.status));
  } else {
    TYTO_ASSERT(reply.peers_count <= peers_max);
    udp::write_announce_reply_header(buffer, transaction_id, config.announce_interval_s,
                                     reply.leechers, reply.seeders);
    size = limits::udp_announce_reply_header_size + reply.peers_count * wire_size;
  }
  udp_.send(shard_.ring(), *slot, size, route);
}

void UdpFront::send_announce_reply(const AnnounceReply& reply, std::uint32_t transaction_id,
                                   const net::UdpRoute& route) noexcept {
  TYTO_ASSERT(reply.peers_count == 0);
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;  // counted by the socket; the client retries its `stopped`
  const std::span<std::uint8_t> buffer = udp_.send_buffer(*slot);
  std::size_t size = 0;
  if (reply.status != AnnounceStatus::ok) {
    ++shard_.counters().udp_error_replies;
    size = udp::write_error_reply(buffer, transaction_id, announce_status_message(reply.status));
  } else {
    size = udp::write_announce_reply_header(
        buffer, transaction_id, shard_.config().announce_interval_s, reply.leechers, reply.seeders);
  }
  udp_.send(shard_.ring(), *slot, size, route);
}

void UdpFront::send_error(std::uint32_t transaction_id, std::string_view message,
                          const net::UdpRoute& route) noexcept {
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  ++shard_.counters().udp_error_replies;
  const std::size_t size = udp::write_error_reply(udp_.send_buffer(*slot), transaction_id, message);
  udp_.send(shard_.ring(), *slot, size, route);
}

void UdpFront::on_scrape(const udp::ScrapeRequest& request, const net::UdpRoute& route) noexcept {
  TYTO_ASSERT(request.info_hashes_count > 0 &&
              request.info_hashes_count <= limits::udp_scrape_hashes_max);
  PendingScrape* pending = shard_.scrapes().start(request.info_hashes_count);
  if (pending == nullptr) return;
  for (std::uint32_t i = 0; i < request.info_hashes_count; ++i) {
    pending->info_hashes[i] = request.info_hash(i);
  }
  pending->front = PendingScrape::Front::udp;
  pending->route = route;
  pending->transaction_id = request.transaction_id;
  shard_.scrapes().gather(*pending);
}

void UdpFront::send_scrape_reply(const PendingScrape& pending) noexcept {
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  const std::size_t size =
      udp::write_scrape_reply(udp_.send_buffer(*slot), pending.transaction_id,
                              std::span<const ScrapeEntry>(pending.entries, pending.hashes_count));
  udp_.send(shard_.ring(), *slot, size, pending.route);
}

}  // namespace tyto::shard
