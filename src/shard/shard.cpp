#include "tyto/shard/shard.hpp"

#include <cstring>

#include "tyto/core/assert.hpp"

namespace tyto::shard {

namespace {
constexpr unsigned ring_entries = 4096;
constexpr std::uint32_t pending_scrapes_count = 256;
constexpr std::uint32_t scrape_gather_timeout_s = 2;
constexpr unsigned idle_wait_ms = 1000;  // a sleeping shard still ticks once a second

const char* status_message(AnnounceStatus status) noexcept {
  switch (status) {
    case AnnounceStatus::swarm_limit:
      return "tracker full: no new torrents accepted";
    case AnnounceStatus::peer_limit:
      return "torrent full: no new peers accepted";
    case AnnounceStatus::ok:
      break;
  }
  return "internal error";
}
}  // namespace

struct Shard::PendingScrape {
  net::UdpRoute route;
  std::uint32_t transaction_id = 0;
  std::uint32_t generation = 0;
  std::uint32_t deadline_s = 0;
  std::uint8_t hashes_count = 0;
  std::uint8_t answers_missing = 0;
  bool in_use = false;
  ScrapeEntry entries[limits::udp_scrape_hashes_max];
};

ShardDirectory::ShardDirectory(std::uint32_t count)
    : shards_count(count), shard_key(ShardKey::random()), entries(new Entry[count]) {
  CoarseClock clock;
  clock.refresh();
  clock_origin_s = clock.now_s();
  TYTO_ASSERT(count > 0);
  mailboxes.reserve(std::size_t{count} * count);
  for (std::size_t i = 0; i < std::size_t{count} * count; ++i) {
    mailboxes.push_back(std::make_unique<Mailbox>());
  }
}

Shard::Shard(std::uint32_t index, const ShardConfig& config, ShardDirectory& directory,
             const proto::ConnectionIds& connection_ids, const HashSecret& secret)
    : index_(index),
      config_(config),
      directory_(directory),
      connection_ids_(connection_ids),
      store_(config.store_limits, secret, 0x7f4a7c15u + index),
      pending_scrapes_(pending_scrapes_count) {
  TYTO_ASSERT(index < directory.shards_count);
  free_pending_scrapes_.reserve(pending_scrapes_count);
  for (std::uint32_t i = pending_scrapes_count; i-- > 0;) free_pending_scrapes_.push_back(i);
}

Shard::~Shard() = default;

std::string Shard::open() {
  if (std::string error = ring_.init(ring_entries, true); !error.empty()) return error;
  if (std::string error = udp_.open(ring_, config_.udp_listeners); !error.empty()) return error;
  udp_.set_send_mode(config_.udp_send_mode);
  udp_.arm_all(ring_);
  ring_.submit();
  refresh_clock();
  last_tick_s_ = now_s_;
  directory_.entries[index_].ring_fd.store(ring_.fd(), std::memory_order_release);
  return {};
}

void Shard::refresh_clock() noexcept {
  clock_.refresh();
  // Starts at 1 so that 0 never means "now"; speedup is 1 outside tests.
  now_s_ = 1 + (clock_.now_s() - directory_.clock_origin_s) * config_.clock_speedup;
}

void Shard::run() noexcept {
  bool busy = true;
  while (!directory_.stopping.load(std::memory_order_relaxed)) busy = turn(!busy);
  // Drain: send what is queued, let in-flight sends complete.
  ring_.submit();
}

bool Shard::turn(bool may_sleep) noexcept {
  owner_.check();
  ++counters_.loop_turns;
  refresh_clock();
  std::size_t work = drain_mailboxes();
  work += ring_.drain([this](const io_uring_cqe& cqe) { on_completion(cqe); });
  publish_mailboxes();
  udp_.flush();
  if (now_s_ != last_tick_s_) tick();
  if (work != 0 || !may_sleep) {
    ring_.submit();
    return work != 0;
  }
  // Sleep only if no mailbox filled after we looked: announce the sleep first, then look again;
  // a producer publishes first, then checks the flag (both seq_cst), so one of us sees the other.
  auto& self = directory_.entries[index_];
  self.sleeping.store(true, std::memory_order_seq_cst);
  bool mail_waiting = false;
  for (std::uint32_t from = 0; from < directory_.shards_count && !mail_waiting; ++from) {
    mail_waiting = from != index_ && !directory_.mailbox(from, index_).empty_before_sleep();
  }
  if (!mail_waiting && !directory_.stopping.load(std::memory_order_seq_cst)) {
    ++counters_.sleeps;
    ring_.submit_and_wait(idle_wait_ms);
  } else {
    ring_.submit();
  }
  self.sleeping.store(false, std::memory_order_relaxed);
  return true;
}

void Shard::tick() noexcept {
  last_tick_s_ = now_s_;
  store_.expire_step(now_s_);
  for (std::uint32_t i = 0; i < pending_scrapes_.size(); ++i) {
    PendingScrape& pending = pending_scrapes_[i];
    if (pending.in_use && static_cast<std::int32_t>(now_s_ - pending.deadline_s) > 0) {
      // An owner's answer was lost (its mailbox back to us was full): give up; the client retries.
      ++counters_.scrape_gather_timeouts;
      pending.in_use = false;
      ++pending.generation;
      free_pending_scrapes_.push_back(i);
    }
  }
}

void Shard::on_completion(const io_uring_cqe& cqe) noexcept {
  switch (net::user_data_op(cqe.user_data)) {
    case net::Op::udp_recv: {
      if (const auto datagram = udp_.receive(ring_, cqe)) on_datagram(*datagram);
      udp_.recycle(cqe);
      break;
    }
    case net::Op::udp_send:
      udp_.sent(cqe);
      break;
    case net::Op::wake:
    case net::Op::wake_sent:
    case net::Op::none:
    case net::Op::tcp_accept:  // HTTP is not wired into the shard yet
    case net::Op::tcp_recv:
    case net::Op::tcp_send:
    case net::Op::tcp_cancel:
      break;
  }
}

void Shard::on_datagram(const net::Datagram& datagram) noexcept {
  namespace udp = proto::udp;
  const auto parsed = udp::parse_request(datagram.payload, datagram.source);
  if (!parsed.ok()) {
    ++counters_.udp_malformed;
    const udp::ParseFailure& failure = parsed.error();
    if (failure.answerable)
      send_udp_error(failure.transaction_id, failure.message(), datagram.route);
    return;
  }
  const udp::Request& request = parsed.value();
  if (const auto* connect = std::get_if<udp::ConnectRequest>(&request.body)) {
    ++counters_.udp_connects;
    const auto slot = udp_.acquire_send_slot();
    if (!slot) return;
    const std::uint64_t id = connection_ids_.issue(datagram.source, now_s_);
    const std::size_t size =
        udp::write_connect_reply(udp_.send_buffer(*slot), connect->transaction_id, id);
    udp_.send(ring_, *slot, size, datagram.route);
    return;
  }
  if (const auto* announce = std::get_if<udp::AnnounceRequest>(&request.body)) {
    ++counters_.udp_announces;
    if (!connection_ids_.valid(announce->connection_id, datagram.source, now_s_)) {
      ++counters_.udp_bad_connection_id;
      send_udp_error(announce->transaction_id, "invalid or expired connection id", datagram.route);
      return;
    }
    on_udp_announce(*announce, datagram.route);
    return;
  }
  if (const auto* scrape = std::get_if<udp::ScrapeRequest>(&request.body)) {
    ++counters_.udp_scrapes;
    if (!connection_ids_.valid(scrape->connection_id, datagram.source, now_s_)) {
      ++counters_.udp_bad_connection_id;
      send_udp_error(scrape->transaction_id, "invalid or expired connection id", datagram.route);
      return;
    }
    on_udp_scrape(*scrape, datagram.route);
  }
}

void Shard::on_udp_announce(const proto::udp::AnnounceRequest& request,
                            const net::UdpRoute& route) noexcept {
  const std::uint32_t owner =
      shard_of(request.announce.info_hash, directory_.shard_key, directory_.shards_count);
  if (owner == index_) {
    apply_udp_announce(request.announce, request.transaction_id, route);
    return;
  }
  ForwardedUdpAnnounce forwarded;
  forwarded.route = route;
  forwarded.transaction_id = request.transaction_id;
  forwarded.request = request.announce;
  if (forward(owner, Message{forwarded})) ++counters_.announces_forwarded;
}

void Shard::apply_udp_announce(const AnnounceRequest& request, std::uint32_t transaction_id,
                               const net::UdpRoute& route) noexcept {
  namespace udp = proto::udp;
  TYTO_DEBUG_ASSERT(shard_of(request.info_hash, directory_.shard_key, directory_.shards_count) ==
                    index_);
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  const std::span<std::uint8_t> buffer = udp_.send_buffer(*slot);
  const std::size_t wire_size = request.peer.wire_size();
  const std::uint32_t peers_max = udp::udp_peers_max(request.numwant, request.peer.family,
                                                     config_.numwant_default, config_.numwant_max);
  // The store writes peers straight into the datagram, after the 20-byte header.
  const AnnounceReply reply = store_.announce(
      request, now_s_,
      buffer.subspan(limits::udp_announce_reply_header_size, std::size_t{peers_max} * wire_size));
  std::size_t size = 0;
  if (reply.status != AnnounceStatus::ok) {
    ++counters_.udp_error_replies;
    size = udp::write_error_reply(buffer, transaction_id, status_message(reply.status));
  } else {
    TYTO_ASSERT(reply.peers_count <= peers_max);
    udp::write_announce_reply_header(buffer, transaction_id, config_.announce_interval_s,
                                     reply.leechers, reply.seeders);
    size = limits::udp_announce_reply_header_size + reply.peers_count * wire_size;
  }
  udp_.send(ring_, *slot, size, route);
}

void Shard::send_udp_error(std::uint32_t transaction_id, std::string_view message,
                           const net::UdpRoute& route) noexcept {
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  ++counters_.udp_error_replies;
  const std::size_t size =
      proto::udp::write_error_reply(udp_.send_buffer(*slot), transaction_id, message);
  udp_.send(ring_, *slot, size, route);
}

void Shard::on_udp_scrape(const proto::udp::ScrapeRequest& request,
                          const net::UdpRoute& route) noexcept {
  TYTO_ASSERT(request.info_hashes_count > 0 &&
              request.info_hashes_count <= limits::udp_scrape_hashes_max);
  if (free_pending_scrapes_.empty()) {
    ++counters_.scrape_slots_full_drops;
    return;
  }
  const std::uint32_t pending_index = free_pending_scrapes_.back();
  PendingScrape& pending = pending_scrapes_[pending_index];
  pending.route = route;
  pending.transaction_id = request.transaction_id;
  pending.hashes_count = static_cast<std::uint8_t>(request.info_hashes_count);
  pending.answers_missing = 0;
  pending.deadline_s = now_s_ + scrape_gather_timeout_s;

  // One part under construction per owner; a full part is sent and a new one started.
  ScrapePart parts[64];
  const std::uint32_t owners = directory_.shards_count;
  TYTO_ASSERT(owners <= 64);
  for (std::uint32_t owner = 0; owner < owners; ++owner) {
    parts[owner].pending_index = pending_index;
    parts[owner].generation = pending.generation;
    parts[owner].count = 0;
  }
  bool lost = false;
  for (std::uint32_t position = 0; position < request.info_hashes_count; ++position) {
    const InfoHash& info_hash = request.info_hashes[position];
    const std::uint32_t owner = shard_of(info_hash, directory_.shard_key, owners);
    if (owner == index_) {
      pending.entries[position] = store_.scrape(info_hash);
      continue;
    }
    ScrapePart& part = parts[owner];
    part.positions[part.count] = static_cast<std::uint8_t>(position);
    part.info_hashes[part.count] = info_hash;
    ++pending.answers_missing;
    if (++part.count == scrape_part_hashes_max) {
      lost |= !forward(owner, Message{part});
      part.count = 0;
    }
  }
  for (std::uint32_t owner = 0; owner < owners; ++owner) {
    if (parts[owner].count != 0) lost |= !forward(owner, Message{parts[owner]});
  }
  if (lost) {
    ++pending.generation;  // answers to parts that did go out are now stale
    return;
  }
  if (pending.answers_missing == 0) {
    ++pending.generation;
    send_scrape_reply(pending);
    return;
  }
  pending.in_use = true;
  free_pending_scrapes_.pop_back();
}

void Shard::send_scrape_reply(PendingScrape& pending) noexcept {
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  const std::size_t size = proto::udp::write_scrape_reply(
      udp_.send_buffer(*slot), pending.transaction_id,
      std::span<const ScrapeEntry>(pending.entries, pending.hashes_count));
  udp_.send(ring_, *slot, size, pending.route);
}

bool Shard::forward(std::uint32_t owner, const Message& message) noexcept {
  TYTO_ASSERT(owner != index_ && owner < directory_.shards_count);
  if (!directory_.mailbox(index_, owner).try_push(message)) {
    ++counters_.mailbox_full_drops;  // UDP: drop, the client retries (DESIGN §3)
    return false;
  }
  if (std::holds_alternative<ScrapePart>(message)) ++counters_.scrape_parts_forwarded;
  return true;
}

void Shard::publish_mailboxes() noexcept {
  for (std::uint32_t to = 0; to < directory_.shards_count; ++to) {
    if (to == index_ || directory_.mailbox(index_, to).publish() == 0) continue;
    auto& target = directory_.entries[to];
    // Wake the owner only if it is asleep in the kernel. publish() stored the tail seq_cst and
    // this load is seq_cst: either we see its flag or it sees our messages before sleeping.
    if (target.sleeping.load(std::memory_order_seq_cst) &&
        target.sleeping.exchange(false, std::memory_order_seq_cst)) {
      ++counters_.wakeups_sent;
      ring_.wake(target.ring_fd.load(std::memory_order_acquire));
    }
  }
}

std::size_t Shard::drain_mailboxes() noexcept {
  std::size_t handled = 0;
  for (std::uint32_t from = 0; from < directory_.shards_count; ++from) {
    if (from == index_) continue;
    handled += directory_.mailbox(from, index_).consume([this, from](const Message& message) {
      if (const auto* part = std::get_if<ScrapePart>(&message)) {
        on_scrape_part(*part, from);
      } else {
        on_message(message);
      }
    });
  }
  return handled;
}

void Shard::on_message(const Message& message) noexcept {
  if (const auto* announce = std::get_if<ForwardedUdpAnnounce>(&message)) {
    apply_udp_announce(announce->request, announce->transaction_id, announce->route);
  } else if (const auto* answer = std::get_if<ScrapeAnswer>(&message)) {
    on_scrape_answer(*answer);
  }
}

void Shard::on_scrape_part(const ScrapePart& part, std::uint32_t from) noexcept {
  TYTO_ASSERT(part.count <= scrape_part_hashes_max);
  ScrapeAnswer answer;
  answer.pending_index = part.pending_index;
  answer.generation = part.generation;
  answer.count = part.count;
  for (std::uint8_t i = 0; i < part.count; ++i) {
    answer.positions[i] = part.positions[i];
    answer.entries[i] = store_.scrape(part.info_hashes[i]);
  }
  forward(from, Message{answer});
}

void Shard::on_scrape_answer(const ScrapeAnswer& answer) noexcept {
  if (answer.pending_index >= pending_scrapes_.size()) return;
  PendingScrape& pending = pending_scrapes_[answer.pending_index];
  if (!pending.in_use || pending.generation != answer.generation) return;  // stale
  TYTO_ASSERT(answer.count <= pending.answers_missing);
  for (std::uint8_t i = 0; i < answer.count; ++i) {
    TYTO_ASSERT(answer.positions[i] < pending.hashes_count);
    pending.entries[answer.positions[i]] = answer.entries[i];
  }
  pending.answers_missing = static_cast<std::uint8_t>(pending.answers_missing - answer.count);
  if (pending.answers_missing != 0) return;
  send_scrape_reply(pending);
  pending.in_use = false;
  ++pending.generation;
  free_pending_scrapes_.push_back(answer.pending_index);
}

}  // namespace tyto::shard
