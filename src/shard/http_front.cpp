#include "tyto/shard/http_front.hpp"

#include <algorithm>

#include "tyto/core/assert.hpp"
#include "tyto/core/log.hpp"
#include "tyto/shard/shard.hpp"

namespace tyto::shard {

namespace http = proto::http;

namespace {
constexpr std::uint32_t lent_buffers_count = ShardDirectory::lent_buffers_count;
constexpr std::size_t lent_buffer_size = ShardDirectory::lent_buffer_size;
constexpr std::size_t http_error_response_size_max = 512;
constexpr std::size_t http_response_size_max =
    std::max({http::announce_response_size_max, http::scrape_response_size_max,
              http_error_response_size_max});
static_assert(http_response_size_max <= net::TcpServer::output_size_max);
}  // namespace

HttpFront::HttpFront(Shard& shard) : shard_(shard) {
  local_peers_.resize(lent_buffer_size);
}

std::string HttpFront::open(net::Ring& ring) {
  const ShardConfig& config = shard_.config();
  if (config.http_listeners.empty()) return {};
  if (std::string error = tcp_.open(ring, config.http_listeners, config.http_connections_max);
      !error.empty()) {
    return error;
  }
  tcp_.arm_all(ring);
  http_waits_.resize(config.http_connections_max);
  lent_buffers_.resize(std::size_t{lent_buffers_count} * lent_buffer_size);
  free_lent_buffers_.reserve(lent_buffers_count);
  for (std::uint32_t i = lent_buffers_count; i-- > 0;) free_lent_buffers_.push_back(i);
  // Every answer held back answers a request holding one of another shard's lent buffers, so
  // this many never reallocates.
  answers_to_retry_.reserve(std::size_t{lent_buffers_count} * (shard_.shards_count() - 1));
  return {};
}

std::span<std::uint8_t> HttpFront::lent_area() noexcept {
  return lent_buffers_;
}

bool HttpFront::idle() const noexcept {
  const bool lent_buffers_home =
      free_lent_buffers_.size() * lent_buffer_size == lent_buffers_.size();
  return answers_to_retry_.empty() && lent_buffers_home && tcp_.sends_idle();
}

void HttpFront::tick(std::uint32_t now_s) noexcept {
  if (enabled()) tcp_.close_idle(shard_.ring(), now_s, shard_.config().http_idle_timeout_s);
}

void HttpFront::on_completion(const io_uring_cqe& cqe) noexcept {
  net::Ring& ring = shard_.ring();
  switch (net::user_data_op(cqe.user_data)) {
    case net::Op::tcp_accept:
      tcp_.on_accept(ring, cqe, shard_.now_s());
      break;
    case net::Op::tcp_recv:
      if (const auto connection = tcp_.on_receive(ring, cqe, shard_.now_s())) serve(*connection);
      break;
    case net::Op::tcp_close:
      tcp_.on_close(ring, cqe);
      break;
    case net::Op::tcp_send: {
      tcp_.on_send(ring, cqe);
      // Output drained: requests held back by a full output buffer may go on.
      const net::ConnectionRef connection =
          tcp_.ref(static_cast<std::uint32_t>(net::user_data_index(cqe.user_data)));
      if (tcp_.alive(connection)) serve(connection);
      break;
    }
    default:
      TYTO_ASSERT(false);  // the loop routes only TCP completions here
  }
}

void HttpFront::serve(net::ConnectionRef connection) noexcept {
  while (!shard_.draining() && tcp_.serving(connection) && !waiting(connection)) {
    if (!serve_request(connection)) break;
  }
  tcp_.flush(shard_.ring(), connection, false);
  tcp_.receive_more(shard_.ring(), connection);
}

// One request from the front of the connection's input. False when there is nothing complete to
// answer yet, the output is full (resumed when a send completes), or the connection is closing.
bool HttpFront::serve_request(net::ConnectionRef connection) noexcept {
  const auto input = tcp_.input(connection);
  if (input.empty()) return false;
  // Room for the largest answer, which a forwarded request's reply must also find when it
  // comes back: nothing else is written to the connection while it waits.
  if (tcp_.output_room(connection) < http_response_size_max) return false;
  ShardCounters& counters = shard_.counters();
  http::RequestHead head;
  switch (http::parse_head(input, head)) {
    case http::HeadStatus::incomplete:
      return false;
    case http::HeadStatus::too_large:
      ++counters.http_failures;
      respond_status(connection, 431, "request head too large", false);
      return false;
    case http::HeadStatus::invalid:
      ++counters.http_failures;
      respond_status(connection, 400, "malformed request", false);
      return false;
    case http::HeadStatus::complete:
      break;
  }
  if (head.method != "GET" || head.has_body) {
    ++counters.http_failures;
    if (head.method != "GET") {
      respond_status(connection, 405, "only GET is supported", false);
    } else {
      respond_status(connection, 400, "a tracker request has no body", false);
    }
    return false;
  }
  std::string_view query, passkey;
  switch (http::route(head.target, query, passkey)) {
    case http::Path::announce:
      announce(connection, head, query, passkey);
      break;
    case http::Path::scrape:
      scrape(connection, head, query, passkey);
      break;
    case http::Path::unknown:
      ++counters.http_failures;
      respond_status(connection, 404, "unknown path: use /announce or /scrape", head.keep_alive);
      break;
  }
  // The handlers copied what they keep out of the input; now it may move.
  if (!tcp_.alive(connection)) return false;
  tcp_.consume_input(connection, head.head_size);
  if (!head.keep_alive) tcp_.client_done(connection);  // its own promise (RFC 9112 §9.6)
  if (waiting(connection)) return false;  // the answer finishes it (and closes if asked)
  if (!head.keep_alive) {
    tcp_.flush(shard_.ring(), connection, true);  // after everything before it, then close
    return false;
  }
  return true;
}

// The answer a connection waited for is written: close after it, or (resume) go on with the
// requests pipelined behind it. Without resume the caller is the request loop, which goes on.
void HttpFront::answer_written(net::ConnectionRef connection, bool keep_alive,
                               bool resume) noexcept {
  if (!resume) return;  // the request loop flushes, after consuming the request (client_done)
  if (!keep_alive) {
    tcp_.flush(shard_.ring(), connection, true);
  } else {
    serve(connection);
  }
}

void HttpFront::respond_status(net::ConnectionRef connection, int status, std::string_view reason,
                               bool keep_alive) noexcept {
  const auto out = tcp_.output_space(connection, http_error_response_size_max);
  if (out.empty()) {
    tcp_.close(shard_.ring(), connection);
    return;
  }
  const std::size_t size = http::write_status(out, status, reason, keep_alive);
  tcp_.commit_output(connection, size);
  if (!keep_alive) tcp_.flush(shard_.ring(), connection, true);
}

void HttpFront::announce(net::ConnectionRef connection, const http::RequestHead& head,
                         std::string_view query, std::string_view passkey) noexcept {
  ShardCounters& counters = shard_.counters();
  ++counters.http_announces;
  const auto parsed = http::parse_announce_query(query);
  if (!parsed.ok()) {
    ++counters.http_failures;
    respond_status(connection, 200, parsed.error(), head.keep_alive);
    return;
  }
  AnnounceRequest request = parsed.value().announce;
  if (shard_.denied(request.info_hash)) {
    ++counters.announces_denied;
    ++counters.http_failures;
    respond_status(connection, 200, not_allowed_reason, head.keep_alive);
    return;
  }
  Member member;
  if (const char* refusal = shard_.admit_member(passkey, &request, member)) {
    ++counters.http_failures;
    respond_status(connection, 200, refusal, head.keep_alive);
    return;
  }
  const auto client_address_result = client_address(connection, head, parsed.value().ip);
  if (!client_address_result.ok()) {
    ++counters.http_failures;
    respond_status(connection, 200, client_address_result.error(), head.keep_alive);
    return;
  }
  const PeerEndpoint& client = client_address_result.value();
  request.peer = client;
  const std::size_t port_at = client.wire_size() - 2;
  request.peer.wire[port_at] = static_cast<std::uint8_t>(parsed.value().port >> 8);
  request.peer.wire[port_at + 1] = static_cast<std::uint8_t>(parsed.value().port);
  const ShardConfig& config = shard_.config();
  const std::uint32_t peers_max =
      peers_wanted(request.numwant, config.numwant_default, config.numwant_max);
  const bool compact = parsed.value().answer_compact();
  const std::uint32_t owner = shard_.owner_of(request.info_hash);
  if (owner != shard_.index()) {
    forward_announce(connection, request, member, client, peers_max, owner, head.keep_alive,
                     compact);
    return;
  }
  std::uint64_t ticket = 0;
  const AnnounceReply reply = shard_.apply_announce(
      request, member, std::span(local_peers_).first(std::size_t{peers_max} * client.wire_size()),
      ticket);
  if (ticket != 0) {
    // Held until durable: the connection waits, as for a forwarded announce.
    TYTO_ASSERT(reply.peers_count == 0);
    http_waits_[connection.index] = {connection.generation, true, head.keep_alive, compact, client};
    shard_.hold_reply({ticket, Shard::HeldHttpReply{connection, reply}});
    return;
  }
  write_announce(connection, reply, client, local_peers_.data(), head.keep_alive, compact);
}

void HttpFront::forward_announce(net::ConnectionRef connection, const AnnounceRequest& request,
                                 const Member& member, const PeerEndpoint& client,
                                 std::uint32_t peers_max, std::uint32_t owner, bool keep_alive,
                                 bool compact) noexcept {
  ShardCounters& counters = shard_.counters();
  if (free_lent_buffers_.empty()) {
    ++counters.http_busy;
    respond_status(connection, 503, "busy, retry", false);
    return;
  }
  ForwardedHttpAnnounce forwarded;
  forwarded.connection = connection;
  forwarded.request = request;
  forwarded.member = member;
  forwarded.peers_max = peers_max;
  forwarded.lent_index = free_lent_buffers_.back();
  if (!shard_.forward(owner, Message{forwarded})) {
    ++counters.http_busy;
    respond_status(connection, 503, "busy, retry", false);
    return;
  }
  free_lent_buffers_.pop_back();
  ++counters.announces_forwarded;
  http_waits_[connection.index] = {connection.generation, true, keep_alive, compact, client};
}

bool HttpFront::trusted_proxy(const PeerEndpoint& peer) const noexcept {
  for (const net::AddressPrefix& prefix : shard_.config().trusted_proxies) {
    if (prefix.contains(peer)) return true;
  }
  return false;
}

Result<PeerEndpoint, const char*> HttpFront::client_address(
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

void HttpFront::write_announce(net::ConnectionRef connection, const AnnounceReply& reply,
                               const PeerEndpoint& client, const std::uint8_t* peers,
                               bool keep_alive, bool compact) noexcept {
  const AddressFamily family = client.family;
  if (reply.status != AnnounceStatus::ok) {
    ++shard_.counters().http_failures;
    respond_status(connection, 200, announce_status_message(reply.status), keep_alive);
    return;
  }
  const auto out = tcp_.output_space(connection, http::announce_response_size_max);
  if (out.empty()) {
    tcp_.close(shard_.ring(), connection);
    return;
  }
  const ShardConfig& config = shard_.config();
  const std::size_t size = http::write_announce_response(
      out, reply, config.announce_interval_s, config.announce_interval_min_s, family,
      {peers, reply.peers_count * peer_wire_size(family)}, compact, client, keep_alive);
  TYTO_ASSERT(size != 0);
  tcp_.commit_output(connection, size);
}

void HttpFront::scrape(net::ConnectionRef connection, const http::RequestHead& head,
                       std::string_view query, std::string_view passkey) noexcept {
  ShardCounters& counters = shard_.counters();
  ++counters.http_scrapes;
  Member member;
  if (const char* refusal = shard_.admit_member(passkey, nullptr, member)) {
    ++counters.http_failures;
    respond_status(connection, 200, refusal, head.keep_alive);
    return;
  }
  InfoHash hashes[limits::http_scrape_hashes_max];
  const auto parsed = http::parse_scrape_query(query, hashes);
  if (!parsed.ok()) {
    ++counters.http_failures;
    respond_status(connection, 200, parsed.error(), head.keep_alive);
    return;
  }
  PendingScrape* pending = shard_.scrapes().start(parsed.value());
  if (pending == nullptr) {
    ++counters.http_busy;
    respond_status(connection, 503, "busy, retry", false);
    return;
  }
  std::copy(hashes, hashes + parsed.value(), pending->info_hashes);
  pending->front = PendingScrape::Front::http;
  pending->connection = connection;
  // Waiting first: the reply may be written at once (all hashes here) or after the owners answer.
  http_waits_[connection.index] = {connection.generation, true, head.keep_alive, true, {}};
  shard_.scrapes().gather(*pending);
}

void HttpFront::write_scrape_reply(const PendingScrape& pending, bool resume) noexcept {
  if (!waiting(pending.connection)) return;  // closed (and maybe reused) meanwhile
  Wait& wait = http_waits_[pending.connection.index];
  wait.waiting = false;
  const auto out = tcp_.output_space(pending.connection, http::scrape_response_size_max);
  if (out.empty()) {  // closed meanwhile (serve_request kept room for the answer)
    tcp_.close(shard_.ring(), pending.connection);
    return;
  }
  const std::size_t size = http::write_scrape_response(
      out, std::span<const InfoHash>(pending.info_hashes, pending.hashes_count),
      std::span<const ScrapeEntry>(pending.entries, pending.hashes_count), wait.keep_alive);
  tcp_.commit_output(pending.connection, size);
  answer_written(pending.connection, wait.keep_alive, resume);
}

void HttpFront::scrape_failed(const PendingScrape& pending, bool timed_out) noexcept {
  if (!waiting(pending.connection)) return;
  http_waits_[pending.connection.index].waiting = false;
  if (!timed_out) ++shard_.counters().http_busy;
  respond_status(pending.connection, 503, timed_out ? "scrape timed out, retry" : "busy, retry",
                 false);
}

void HttpFront::on_forwarded_announce(const ForwardedHttpAnnounce& forwarded,
                                      std::uint32_t from) noexcept {
  const std::span<std::uint8_t> lent = shard_.lent_buffer(from, forwarded.lent_index);
  const std::size_t peers_size =
      std::size_t{forwarded.peers_max} * forwarded.request.peer.wire_size();
  TYTO_ASSERT(forwarded.peers_max <= limits::numwant_max && peers_size <= lent.size());
  HttpAnnounceAnswer answer;
  answer.connection = forwarded.connection;
  answer.lent_index = forwarded.lent_index;
  std::uint64_t ticket = 0;
  answer.reply =
      shard_.apply_announce(forwarded.request, forwarded.member, lent.first(peers_size), ticket);
  if (ticket != 0) {
    shard_.hold_reply({ticket, Shard::HeldHttpAnswer{from, answer}});
    return;
  }
  send_answer(from, answer);
}

void HttpFront::send_answer(std::uint32_t to, const HttpAnnounceAnswer& answer) noexcept {
  if (!answers_to_retry_.empty() || !shard_.push(to, Message{answer})) {
    ++shard_.counters().http_answers_retried;
    answers_to_retry_.push_back({to, answer});  // keeps order behind earlier retries
  }
}

void HttpFront::release_reply(net::ConnectionRef connection, const AnnounceReply& reply) noexcept {
  if (!waiting(connection)) return;  // closed (and maybe reused) meanwhile
  Wait& wait = http_waits_[connection.index];
  wait.waiting = false;
  write_announce(connection, reply, wait.client, local_peers_.data(), wait.keep_alive,
                 wait.compact);
  answer_written(connection, wait.keep_alive, true);
}

void HttpFront::retry_answers() noexcept {
  std::size_t kept = 0;
  for (const PendingAnswer& pending : answers_to_retry_) {
    // Once one answer is refused, later ones wait too (order per connection).
    if (kept != 0 || !shard_.push(pending.to, Message{pending.answer})) {
      answers_to_retry_[kept++] = pending;
    }
  }
  answers_to_retry_.resize(kept);
}

void HttpFront::on_announce_answer(const HttpAnnounceAnswer& answer) noexcept {
  TYTO_ASSERT(answer.lent_index < lent_buffers_count);
  const std::uint8_t* peers =
      lent_buffers_.data() + std::size_t{answer.lent_index} * lent_buffer_size;
  if (waiting(answer.connection)) {
    Wait& wait = http_waits_[answer.connection.index];
    wait.waiting = false;
    write_announce(answer.connection, answer.reply, wait.client, peers, wait.keep_alive,
                   wait.compact);
    answer_written(answer.connection, wait.keep_alive, true);
  }
  free_lent_buffers_.push_back(answer.lent_index);  // the owner is done with it
}

}  // namespace tyto::shard
