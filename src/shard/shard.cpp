#include "tyto/shard/shard.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "tyto/core/assert.hpp"
#include "tyto/core/log.hpp"

namespace tyto::shard {

namespace {
constexpr unsigned ring_entries = 4096;
constexpr std::uint32_t pending_scrapes_count = 256;
constexpr std::uint32_t scrape_gather_timeout_s = 2;
constexpr unsigned idle_wait_ms = 1000;
constexpr unsigned stop_drain_ms = 2000;
constexpr const char* not_allowed_reason =
    "info_hash not allowed on this tracker";  // a sleeping shard still ticks once a second
constexpr std::uint32_t lent_buffers_count = 1024;
constexpr std::size_t lent_buffer_size = limits::numwant_max * limits::ipv6_peer_wire_size;
constexpr std::size_t http_error_response_size_max = 512;
constexpr std::size_t http_response_size_max =
    std::max({proto::http::announce_response_size_max, proto::http::scrape_response_size_max,
              http_error_response_size_max});
static_assert(http_response_size_max <= net::TcpServer::output_size_max);

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
  // Where the gathered reply goes: a UDP client, or an HTTP connection of this shard (whose
  // HttpWait says how to finish it).
  bool http = false;
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
  for (std::uint32_t i = 0; i < count; ++i) {
    control_requests.push_back(std::make_unique<ControlRequests>());
    control_answers.push_back(std::make_unique<ControlAnswers>());
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
  local_peers_.resize(lent_buffer_size);
  // Every answer held back answers a request holding one of another shard's lent buffers, so
  // this many never reallocates.
  answers_to_retry_.reserve(std::size_t{lent_buffers_count} * (directory.shards_count - 1));
  scrape_parts_.resize(directory.shards_count);
  control_answer_ = std::make_unique<ControlAnswer>();
}

Shard::~Shard() = default;

std::string Shard::open() {
  if (store_.swarms_max() < config_.store_limits.swarms_max) {
    TYTO_LOG(log::Level::warning,
             "shard {}: address space for {} swarms only (limits.swarms_per_shard_max {}): "
             "more are refused",
             index_, store_.swarms_max(), config_.store_limits.swarms_max);
  }
  if (std::string error = ring_.init(ring_entries, true); !error.empty()) return error;
  if (std::string error = udp_.open(ring_); !error.empty()) return error;
  udp_.set_send_mode(config_.udp_send_mode);
  udp_.arm_all(ring_);
  if (!config_.http_listeners.empty()) {
    if (std::string error = tcp_.open(ring_, config_.http_listeners, config_.http_connections_max);
        !error.empty()) {
      return error;
    }
    tcp_.arm_all(ring_);
    http_waits_.resize(config_.http_connections_max);
    lent_buffers_.resize(std::size_t{lent_buffers_count} * lent_buffer_size);
    free_lent_buffers_.reserve(lent_buffers_count);
    for (std::uint32_t i = lent_buffers_count; i-- > 0;) free_lent_buffers_.push_back(i);
  }
  if (!directory_.snapshot_records.empty()) {
    refresh_clock();
    const auto restored = store_.restore_snapshot(
        directory_.snapshot_records, now_s_, directory_.snapshot_extra_age_s,
        [this](const InfoHash& info_hash) {
          return shard_of(info_hash, directory_.shard_key, directory_.shards_count) == index_;
        });
    if (!restored.ok()) return "snapshot: " + restored.error();
    directory_.restored_swarms += restored.value().swarms;
    directory_.restored_peers += restored.value().peers;
  }
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
  drain();
}

// Stopping (SIGTERM): new UDP requests are dropped (counted) and HTTP connections take no new
// request, but what is in flight is finished: answers owed to other shards or to waiting HTTP
// connections, gathered scrapes, replies the kernel has not sent yet. A shard leaves only when
// every shard is quiet and its own mailboxes are empty — a shard publishes its forwards before
// it says it is quiet (both seq_cst), so a forward is never stranded in a mailbox of a shard
// that left. At most stop_drain_ms in all.
void Shard::drain() noexcept {
  draining_ = true;
  auto& self = directory_.entries[index_];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(stop_drain_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    turn(false);
    const bool quiet_now = quiet();
    self.quiet.store(quiet_now, std::memory_order_seq_cst);
    if (!quiet_now) continue;
    bool everyone_quiet = true;
    for (std::uint32_t i = 0; i < directory_.shards_count && everyone_quiet; ++i) {
      everyone_quiet = directory_.entries[i].quiet.load(std::memory_order_seq_cst);
    }
    bool mail_waiting = false;
    for (std::uint32_t from = 0; from < directory_.shards_count && !mail_waiting; ++from) {
      mail_waiting = from != index_ && !directory_.mailbox(from, index_).empty_before_sleep();
    }
    if (everyone_quiet && !mail_waiting) break;
    std::this_thread::yield();
  }
  ring_.submit();
}

bool Shard::quiet() const noexcept {
  const bool lent_buffers_home =
      free_lent_buffers_.size() * lent_buffer_size == lent_buffers_.size();
  return answers_to_retry_.empty() && lent_buffers_home &&
         free_pending_scrapes_.size() == pending_scrapes_count && udp_.sends_idle() &&
         tcp_.sends_idle();
}

bool Shard::turn(bool may_sleep) noexcept {
  owner_.check();
  ++counters_.loop_turns;
  const auto work_start = std::chrono::steady_clock::now();
  refresh_clock();
  refresh_access_list();
  std::size_t work = drain_mailboxes();
  work += drain_control();
  read_ahead_announces();
  work += ring_.drain([this](const io_uring_cqe& cqe) { on_completion(cqe); });
  retry_answers();
  publish_mailboxes();
  udp_.flush();
  if (now_s_ != last_tick_s_) tick();
  const auto work_time = std::chrono::steady_clock::now() - work_start;
  counters_.loop_turns_over_250us += work_time > std::chrono::microseconds(250);
  counters_.loop_turns_over_1ms += work_time > std::chrono::milliseconds(1);
  if (work != 0) last_work_at_ = work_start;
  if (work != 0 || !may_sleep ||
      work_start - last_work_at_ < std::chrono::microseconds(config_.busy_poll_us)) {
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
      if (pending.http && http_waiting(pending.connection)) {
        http_waits_[pending.connection.index].waiting = false;
        http_respond_status(pending.connection, 503, "scrape timed out, retry", false);
      }
    }
  }
  if (!config_.http_listeners.empty()) {
    tcp_.close_idle(ring_, now_s_, config_.http_idle_timeout_s);
  }
}

// The UDP announces waiting in the ring for swarms this shard owns: their index entries and
// records start loading together before the first is served (a batch of lookups into tables far
// larger than the cache otherwise waits for each miss in turn).
void Shard::read_ahead_announces() noexcept {
  auto& info_hashes = read_ahead_info_hashes_;
  std::size_t count = 0;
  ring_.peek([&](const io_uring_cqe& cqe) {
    if (count == info_hashes.size() || net::user_data_op(cqe.user_data) != net::Op::udp_recv) {
      return;
    }
    const auto info_hash = proto::udp::peek_announce_info_hash(udp_.peek_payload(cqe));
    if (info_hash &&
        shard_of(*info_hash, directory_.shard_key, directory_.shards_count) == index_) {
      info_hashes[count++] = *info_hash;
    }
  });
  store_.prefetch({info_hashes.data(), count});
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
    case net::Op::tcp_cancel:
      break;
    case net::Op::tcp_accept:
      tcp_.on_accept(ring_, cqe, now_s_);
      break;
    case net::Op::tcp_recv:
      if (const auto connection = tcp_.on_receive(ring_, cqe, now_s_)) serve_http(*connection);
      break;
    case net::Op::tcp_send: {
      tcp_.on_send(ring_, cqe);
      // Output drained: requests held back by a full output buffer may go on.
      const net::ConnectionRef connection =
          tcp_.ref(static_cast<std::uint32_t>(net::user_data_index(cqe.user_data)));
      if (tcp_.alive(connection)) serve_http(connection);
      break;
    }
  }
}

void Shard::on_datagram(const net::Datagram& datagram) noexcept {
  namespace udp = proto::udp;
  if (draining_) {
    ++counters_.dropped_stopping;
    return;
  }
  const auto parsed = udp::parse_request(datagram.payload, datagram.source);
  if (!parsed.ok()) {
    ++counters_.udp_malformed;
    const udp::ParseFailure& failure = parsed.error();
    TYTO_LOG_LIMITED(log::Level::debug, "udp: malformed request from {}: {}",
                     net::to_string(datagram.source), failure.message());
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
  if (denied(request.announce.info_hash)) {
    ++counters_.announces_denied;
    TYTO_LOG_LIMITED(log::Level::debug, "udp: announce for {} denied by the access list",
                     to_hex(request.announce.info_hash));
    send_udp_error(request.transaction_id, not_allowed_reason, route);
    return;
  }
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
  PendingScrape* pending = start_scrape(request.info_hashes_count);
  if (pending == nullptr) return;
  for (std::uint32_t i = 0; i < request.info_hashes_count; ++i) {
    pending->info_hashes[i] = request.info_hash(i);
  }
  pending->http = false;
  pending->route = route;
  pending->transaction_id = request.transaction_id;
  gather_scrape(*pending);
}

Shard::PendingScrape* Shard::start_scrape(std::uint32_t hashes_count) noexcept {
  TYTO_ASSERT(hashes_count > 0 && hashes_count <= limits::udp_scrape_hashes_max);
  if (free_pending_scrapes_.empty()) {
    ++counters_.scrape_slots_full_drops;
    return nullptr;
  }
  PendingScrape& pending = pending_scrapes_[free_pending_scrapes_.back()];
  pending.hashes_count = static_cast<std::uint8_t>(hashes_count);
  return &pending;
}

// Answers the hashes this shard owns, sends the rest to their owners in parts, and replies at
// once when nothing is missing; otherwise the slot waits for the answers (or its deadline).
void Shard::gather_scrape(PendingScrape& pending) noexcept {
  const auto pending_index = static_cast<std::uint32_t>(&pending - pending_scrapes_.data());
  TYTO_ASSERT(!free_pending_scrapes_.empty() && free_pending_scrapes_.back() == pending_index);
  pending.answers_missing = 0;
  pending.deadline_s = now_s_ + scrape_gather_timeout_s;
  // One part under construction per owner; a full part is sent and a new one started. The parts
  // are a member: a local array of shards_max parts was zero-filled on every scrape (~11 k
  // instructions, measured with bench/profile).
  const std::uint32_t owners = directory_.shards_count;
  std::vector<ScrapePart>& parts = scrape_parts_;
  for (std::uint32_t owner = 0; owner < owners; ++owner) {
    parts[owner].pending_index = pending_index;
    parts[owner].generation = pending.generation;
    parts[owner].count = 0;
  }
  bool lost = false;
  for (std::uint32_t position = 0; position < pending.hashes_count; ++position) {
    const InfoHash& info_hash = pending.info_hashes[position];
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
    if (pending.http) {
      ++counters_.http_busy;
      http_waits_[pending.connection.index].waiting = false;
      http_respond_status(pending.connection, 503, "busy, retry", false);
    }
    return;
  }
  if (pending.answers_missing == 0) {
    ++pending.generation;
    send_scrape_reply(pending, false);  // the caller goes on with the connection's next request
    return;
  }
  pending.in_use = true;
  free_pending_scrapes_.pop_back();
}

void Shard::send_scrape_reply(PendingScrape& pending, bool resume_http) noexcept {
  const std::span<const ScrapeEntry> entries(pending.entries, pending.hashes_count);
  if (pending.http) {
    if (!http_waiting(pending.connection)) return;  // closed (and maybe reused) meanwhile
    HttpWait& wait = http_waits_[pending.connection.index];
    wait.waiting = false;
    const auto out = tcp_.output_space(pending.connection, proto::http::scrape_response_size_max);
    if (out.empty()) {  // closed meanwhile (serve_http_request kept room for the answer)
      tcp_.close(ring_, pending.connection);
      return;
    }
    const std::size_t size = proto::http::write_scrape_response(
        out, std::span<const InfoHash>(pending.info_hashes, pending.hashes_count), entries,
        wait.keep_alive);
    tcp_.commit_output(pending.connection, size);
    http_answer_written(pending.connection, wait.keep_alive, resume_http);
    return;
  }
  const auto slot = udp_.acquire_send_slot();
  if (!slot) return;
  const std::size_t size =
      proto::udp::write_scrape_reply(udp_.send_buffer(*slot), pending.transaction_id, entries);
  udp_.send(ring_, *slot, size, pending.route);
}

bool Shard::forward(std::uint32_t owner, const Message& message) noexcept {
  TYTO_ASSERT(owner != index_ && owner < directory_.shards_count);
  if (!directory_.mailbox(index_, owner).try_push(message)) {
    ++counters_.mailbox_full_drops;  // UDP: drop, the client retries (DESIGN §3)
    TYTO_LOG_LIMITED(log::Level::warning, "shard {}: mailbox to shard {} full, request dropped",
                     index_, owner);
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
      on_message(message, from);
    });
  }
  return handled;
}

void Shard::refresh_access_list() noexcept {
  // Epoch first, then the pointer: the pointer is at least as new as the epoch says, and the
  // previous turn's pointer is no longer in use once the epoch is recorded.
  const std::uint64_t epoch = directory_.access_epoch.load(std::memory_order_seq_cst);
  access_list_ = directory_.access_list.load(std::memory_order_seq_cst);
  auto& seen = directory_.entries[index_].access_epoch_seen;
  if (seen.load(std::memory_order_relaxed) != epoch) seen.store(epoch, std::memory_order_seq_cst);
}

std::size_t Shard::drain_control() noexcept {
  return directory_.control_requests[index_]->consume([this](const ControlRequest& request) {
    ControlAnswer& answer = *control_answer_;
    answer.serial = request.serial;
    answer.found = false;
    answer.top_count = 0;
    switch (request.kind) {
      case ControlKind::counters:
        answer.totals = totals();
        break;
      case ControlKind::swarm:
        answer.found = store_.statistics(request.info_hash, now_s_, answer.swarm);
        break;
      case ControlKind::top:
        answer.top_count = store_.top(
            request.order, now_s_, std::span(answer.top, std::min(request.count, top_count_max)));
        break;
    }
    ControlAnswers& answers = *directory_.control_answers[index_];
    if (answers.try_push(answer)) answers.publish();  // one question at a time: never full
  });
}

ShardTotals Shard::totals() const noexcept {
  ShardTotals totals;
  totals.shard = counters_;
  totals.udp = udp_.counters();
  totals.tcp = tcp_.counters();
  totals.store = store_.counters();
  totals.gauges.store_memory_bytes = store_.memory_bytes();
  totals.gauges.http_connections = tcp_.open_connections();
  for (std::uint32_t from = 0; from < directory_.shards_count; ++from) {
    if (from != index_)
      totals.gauges.mailbox_depth += directory_.mailbox(from, index_).depth_approx();
  }
  return totals;
}

void Shard::on_message(const Message& message, std::uint32_t from) noexcept {
  if (const auto* announce = std::get_if<ForwardedUdpAnnounce>(&message)) {
    apply_udp_announce(announce->request, announce->transaction_id, announce->route);
  } else if (const auto* part = std::get_if<ScrapePart>(&message)) {
    on_scrape_part(*part, from);
  } else if (const auto* answer = std::get_if<ScrapeAnswer>(&message)) {
    on_scrape_answer(*answer);
  } else if (const auto* http = std::get_if<ForwardedHttpAnnounce>(&message)) {
    on_forwarded_http_announce(*http, from);
  } else if (const auto* http_answer = std::get_if<HttpAnnounceAnswer>(&message)) {
    on_http_announce_answer(*http_answer);
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
  send_scrape_reply(pending, true);
  pending.in_use = false;
  ++pending.generation;
  free_pending_scrapes_.push_back(answer.pending_index);
}

namespace http = proto::http;

void Shard::serve_http(net::ConnectionRef connection) noexcept {
  while (!draining_ && tcp_.serving(connection) && !http_waiting(connection)) {
    if (!serve_http_request(connection)) break;
  }
  tcp_.flush(ring_, connection, false);
}

// One request from the front of the connection's input. False when there is nothing complete to
// answer yet, the output is full (resumed when a send completes), or the connection is closing.
bool Shard::serve_http_request(net::ConnectionRef connection) noexcept {
  const auto input = tcp_.input(connection);
  if (input.empty()) return false;
  // Room for the largest answer, which a forwarded request's reply must also find when it
  // comes back: nothing else is written to the connection while it waits.
  if (tcp_.output_room(connection) < http_response_size_max) return false;
  http::RequestHead head;
  switch (http::parse_head(input, head)) {
    case http::HeadStatus::incomplete:
      return false;
    case http::HeadStatus::too_large:
      ++counters_.http_failures;
      http_respond_status(connection, 431, "request head too large", false);
      return false;
    case http::HeadStatus::invalid:
      ++counters_.http_failures;
      http_respond_status(connection, 400, "malformed request", false);
      return false;
    case http::HeadStatus::complete:
      break;
  }
  if (head.method != "GET") {
    ++counters_.http_failures;
    http_respond_status(connection, 405, "only GET is supported", false);
    return false;
  }
  if (head.has_body) {
    ++counters_.http_failures;
    http_respond_status(connection, 400, "a tracker request has no body", false);
    return false;
  }
  std::string_view query;
  switch (http::route(head.target, query)) {
    case http::Path::announce:
      http_announce(connection, head, query);
      break;
    case http::Path::scrape:
      http_scrape(connection, head, query);
      break;
    case http::Path::unknown:
      ++counters_.http_failures;
      http_respond_status(connection, 404, "unknown path: use /announce or /scrape",
                          head.keep_alive);
      break;
  }
  // The handlers copied what they keep out of the input; now it may move.
  if (!tcp_.alive(connection)) return false;
  tcp_.consume_input(connection, head.head_size);
  if (http_waiting(connection)) return false;  // the answer finishes it (and closes if asked)
  if (!head.keep_alive) {
    tcp_.flush(ring_, connection, true);  // after everything before it, then close
    return false;
  }
  return true;
}

// The answer a connection waited for is written: close after it, or (resume) go on with the
// requests pipelined behind it. Without resume the caller is the request loop, which goes on.
void Shard::http_answer_written(net::ConnectionRef connection, bool keep_alive,
                                bool resume) noexcept {
  if (!keep_alive) {
    tcp_.flush(ring_, connection, true);
  } else if (resume) {
    serve_http(connection);
  }
}

void Shard::http_respond_status(net::ConnectionRef connection, int status, std::string_view reason,
                                bool keep_alive) noexcept {
  const auto out = tcp_.output_space(connection, http_error_response_size_max);
  if (out.empty()) {
    tcp_.close(ring_, connection);
    return;
  }
  const std::size_t size = http::write_status(out, status, reason, keep_alive);
  tcp_.commit_output(connection, size);
  if (!keep_alive) tcp_.flush(ring_, connection, true);
}

void Shard::http_announce(net::ConnectionRef connection, const http::RequestHead& head,
                          std::string_view query) noexcept {
  ++counters_.http_announces;
  const auto parsed = http::parse_announce_query(query);
  if (!parsed.ok()) {
    ++counters_.http_failures;
    http_respond_status(connection, 200, parsed.error(), head.keep_alive);
    return;
  }
  AnnounceRequest request = parsed.value().announce;
  if (denied(request.info_hash)) {
    ++counters_.announces_denied;
    ++counters_.http_failures;
    http_respond_status(connection, 200, not_allowed_reason, head.keep_alive);
    return;
  }
  const auto client_address = http_client_address(connection, head, parsed.value().ip);
  if (!client_address.ok()) {
    ++counters_.http_failures;
    http_respond_status(connection, 200, client_address.error(), head.keep_alive);
    return;
  }
  const PeerEndpoint& client = client_address.value();
  request.peer = client;
  const std::size_t port_at = client.wire_size() - 2;
  request.peer.wire[port_at] = static_cast<std::uint8_t>(parsed.value().port >> 8);
  request.peer.wire[port_at + 1] = static_cast<std::uint8_t>(parsed.value().port);
  const std::uint32_t peers_max =
      peers_wanted(request.numwant, config_.numwant_default, config_.numwant_max);
  const std::size_t wire_size = client.wire_size();
  const bool compact = parsed.value().compact;
  const std::uint32_t owner =
      shard_of(request.info_hash, directory_.shard_key, directory_.shards_count);
  if (owner == index_) {
    const AnnounceReply reply = store_.announce(
        request, now_s_, std::span(local_peers_).first(std::size_t{peers_max} * wire_size));
    http_write_announce(connection, reply, client, local_peers_.data(), head.keep_alive, compact);
    return;
  }
  if (free_lent_buffers_.empty()) {
    ++counters_.http_busy;
    http_respond_status(connection, 503, "busy, retry", false);
    return;
  }
  ForwardedHttpAnnounce forwarded;
  forwarded.connection = connection;
  forwarded.request = request;
  forwarded.peers_max = peers_max;
  forwarded.lent_index = free_lent_buffers_.back();
  forwarded.peers_out = lent_buffers_.data() + std::size_t{forwarded.lent_index} * lent_buffer_size;
  if (!forward(owner, Message{forwarded})) {
    ++counters_.http_busy;
    http_respond_status(connection, 503, "busy, retry", false);
    return;
  }
  free_lent_buffers_.pop_back();
  ++counters_.announces_forwarded;
  http_waits_[connection.index] = {connection.generation, true, head.keep_alive, compact, client};
}

bool Shard::trusted_proxy(const PeerEndpoint& peer) const noexcept {
  for (const net::AddressPrefix& prefix : config_.trusted_proxies) {
    if (prefix.contains(peer)) return true;
  }
  return false;
}

Result<PeerEndpoint, const char*> Shard::http_client_address(
    net::ConnectionRef connection, const http::RequestHead& head,
    std::string_view ip_parameter) noexcept {
  const PeerEndpoint& peer = tcp_.peer(connection);
  if (!trusted_proxy(peer)) return peer;
  if (!head.x_forwarded_for.empty()) {
    // "client, proxy1, proxy2": the nearest address that is not a trusted proxy is the client
    // (entries further left could be forged by it); if every hop is trusted, the leftmost.
    std::string_view rest = head.x_forwarded_for;
    std::optional<PeerEndpoint> hop;
    while (!rest.empty()) {
      const auto comma = rest.rfind(',');
      const std::string_view entry =
          comma == std::string_view::npos ? rest : rest.substr(comma + 1);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
      hop = net::parse_ip_address(entry);
      if (!hop) return Failure{"invalid X-Forwarded-For from a trusted proxy"};
      if (!trusted_proxy(*hop)) break;
    }
    if (hop) return *hop;
    return Failure{"invalid X-Forwarded-For from a trusted proxy"};
  }
  if (!head.x_real_ip.empty()) {
    const auto named = net::parse_ip_address(head.x_real_ip);
    if (!named) return Failure{"invalid X-Real-IP from a trusted proxy"};
    return *named;
  }
  if (!ip_parameter.empty()) {
    std::uint8_t text[64];
    std::size_t size = 0;
    const auto named = http::percent_decode(ip_parameter, text, size)
                           ? net::parse_ip_address({reinterpret_cast<const char*>(text), size})
                           : std::nullopt;
    if (!named) return Failure{"invalid ip: must be an IPv4 or IPv6 address"};
    return *named;
  }
  return peer;
}

void Shard::http_write_announce(net::ConnectionRef connection, const AnnounceReply& reply,
                                const PeerEndpoint& client, const std::uint8_t* peers,
                                bool keep_alive, bool compact) noexcept {
  const AddressFamily family = client.family;
  if (reply.status != AnnounceStatus::ok) {
    ++counters_.http_failures;
    http_respond_status(connection, 200, status_message(reply.status), keep_alive);
    return;
  }
  const auto out = tcp_.output_space(connection, http::announce_response_size_max);
  if (out.empty()) {
    tcp_.close(ring_, connection);
    return;
  }
  const std::size_t size = http::write_announce_response(
      out, reply, config_.announce_interval_s, config_.announce_interval_min_s, family,
      {peers, reply.peers_count * peer_wire_size(family)}, compact, client, keep_alive);
  TYTO_ASSERT(size != 0);
  tcp_.commit_output(connection, size);
}

void Shard::http_scrape(net::ConnectionRef connection, const http::RequestHead& head,
                        std::string_view query) noexcept {
  ++counters_.http_scrapes;
  InfoHash hashes[limits::http_scrape_hashes_max];
  const auto parsed = http::parse_scrape_query(query, hashes);
  if (!parsed.ok()) {
    ++counters_.http_failures;
    http_respond_status(connection, 200, parsed.error(), head.keep_alive);
    return;
  }
  static_assert(limits::http_scrape_hashes_max <= limits::udp_scrape_hashes_max,
                "a pending scrape holds either kind");
  PendingScrape* pending = start_scrape(parsed.value());
  if (pending == nullptr) {
    ++counters_.http_busy;
    http_respond_status(connection, 503, "busy, retry", false);
    return;
  }
  std::copy(hashes, hashes + parsed.value(), pending->info_hashes);
  pending->http = true;
  pending->connection = connection;
  // Waiting first: the reply may be written at once (all hashes here) or after the owners answer.
  http_waits_[connection.index] = {connection.generation, true, head.keep_alive, true, {}};
  gather_scrape(*pending);
}

void Shard::on_forwarded_http_announce(const ForwardedHttpAnnounce& forwarded,
                                       std::uint32_t from) noexcept {
  TYTO_DEBUG_ASSERT(forwarded.peers_max <= limits::numwant_max);
  HttpAnnounceAnswer answer;
  answer.connection = forwarded.connection;
  answer.lent_index = forwarded.lent_index;
  answer.reply = store_.announce(
      forwarded.request, now_s_,
      {forwarded.peers_out, std::size_t{forwarded.peers_max} * forwarded.request.peer.wire_size()});
  if (!answers_to_retry_.empty() || !directory_.mailbox(index_, from).try_push(Message{answer})) {
    ++counters_.http_answers_retried;
    answers_to_retry_.push_back({from, answer});  // keeps order behind earlier retries
  }
}

void Shard::retry_answers() noexcept {
  std::size_t kept = 0;
  for (const PendingAnswer& pending : answers_to_retry_) {
    // Once one answer for a shard is refused, later ones for it wait too (order per connection).
    if (kept != 0 || !directory_.mailbox(index_, pending.to).try_push(Message{pending.answer})) {
      answers_to_retry_[kept++] = pending;
    }
  }
  answers_to_retry_.resize(kept);
}

void Shard::on_http_announce_answer(const HttpAnnounceAnswer& answer) noexcept {
  TYTO_ASSERT(answer.lent_index < lent_buffers_count);
  const std::uint8_t* peers =
      lent_buffers_.data() + std::size_t{answer.lent_index} * lent_buffer_size;
  if (http_waiting(answer.connection)) {
    HttpWait& wait = http_waits_[answer.connection.index];
    wait.waiting = false;
    http_write_announce(answer.connection, answer.reply, wait.client, peers, wait.keep_alive,
                        wait.compact);
    http_answer_written(answer.connection, wait.keep_alive, true);
  }
  free_lent_buffers_.push_back(answer.lent_index);  // the owner is done with it
}

}  // namespace tyto::shard
