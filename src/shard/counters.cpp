#include "tyto/shard/counters.hpp"

namespace tyto::shard {
namespace {

template <class Counters>
void add_fields(Counters& sum, const Counters& part) noexcept {
  static_assert(sizeof(Counters) % sizeof(std::uint64_t) == 0, "every field is a uint64_t");
  auto* out = reinterpret_cast<std::uint64_t*>(&sum);
  const auto* in = reinterpret_cast<const std::uint64_t*>(&part);
  for (std::size_t i = 0; i < sizeof(Counters) / sizeof(std::uint64_t); ++i) out[i] += in[i];
}

}  // namespace

void ShardTotals::add(const ShardTotals& other) noexcept {
  add_fields(shard, other.shard);
  add_fields(udp, other.udp);
  add_fields(tcp, other.tcp);
  add_fields(store, other.store);
  add_fields(gauges, other.gauges);
}

std::vector<CounterRow> counter_rows(const ShardTotals& t) {
  const auto& s = t.shard;
  const auto& u = t.udp;
  const auto& p = t.tcp;
  const auto& st = t.store;
  const auto& g = t.gauges;
  return {
      {"udp_datagrams_received", "UDP datagrams received", false, u.datagrams_received},
      {"udp_datagrams_sent", "UDP datagrams sent", false, u.datagrams_sent},
      {"udp_bytes_received", "UDP payload bytes received", false, u.bytes_received},
      {"udp_bytes_sent", "UDP payload bytes sent", false, u.bytes_sent},
      {"udp_connects", "UDP connect requests answered", false, s.udp_connects},
      {"udp_announces", "UDP announces answered", false, s.udp_announces},
      {"udp_scrapes", "UDP scrapes answered", false, s.udp_scrapes},
      {"udp_error_replies", "UDP error replies (action 3)", false, s.udp_error_replies},
      {"udp_malformed", "UDP requests that did not parse", false, s.udp_malformed},
      {"udp_bad_connection_id", "UDP requests with an unknown or expired connection id", false,
       s.udp_bad_connection_id},
      {"udp_dropped_truncated", "UDP datagrams dropped: larger than a buffer", false,
       u.dropped_truncated},
      {"udp_dropped_no_buffer", "UDP datagrams dropped: receive buffers ran out", false,
       u.dropped_no_buffer},
      {"udp_dropped_bad_source", "UDP datagrams dropped: unusable source address", false,
       u.dropped_bad_source},
      {"udp_dropped_no_send_slot", "UDP replies dropped: every send slot in flight", false,
       u.dropped_no_send_slot},
      {"udp_send_errors", "UDP send errors", false, u.send_errors},
      {"announces_denied", "announces refused by the access list", false, s.announces_denied},
      {"announces_forwarded", "announces forwarded to the owning shard", false,
       s.announces_forwarded},
      {"scrape_parts_forwarded", "scrape parts forwarded to owning shards", false,
       s.scrape_parts_forwarded},
      {"mailbox_full_drops", "cross-shard messages refused: mailbox full", false,
       s.mailbox_full_drops},
      {"scrape_slots_full_drops", "scrapes dropped: every gathering slot busy", false,
       s.scrape_slots_full_drops},
      {"scrape_gather_timeouts", "scrapes given up: an owner did not answer", false,
       s.scrape_gather_timeouts},
      {"wakeups_sent", "wake-ups sent to sleeping shards", false, s.wakeups_sent},
      {"control_answers_dropped", "answers to the ops server dropped: its queue was full", false,
       s.control_answers_dropped},
      {"http_announces", "HTTP announces answered", false, s.http_announces},
      {"http_scrapes", "HTTP scrapes answered", false, s.http_scrapes},
      {"http_failures", "HTTP requests answered with a failure reason or error status", false,
       s.http_failures},
      {"http_busy", "HTTP requests answered 503 (no buffer or mailbox room)", false, s.http_busy},
      {"tcp_accepted", "TCP connections accepted", false, p.accepted},
      {"tcp_refused_full", "TCP connections closed at once: table full", false, p.refused_full},
      {"tcp_closed", "TCP connections closed", false, p.closed},
      {"tcp_closed_idle", "TCP connections closed idle or stalled", false, p.closed_idle},
      {"tcp_closed_input_overflow", "TCP connections closed: request head too large", false,
       p.closed_input_overflow},
      {"tcp_bytes_received", "TCP bytes received", false, p.bytes_received},
      {"tcp_bytes_sent", "TCP bytes sent", false, p.bytes_sent},
      {"store_announces", "announces applied to the store", false, st.announces},
      {"swarms_refused", "new swarms refused: shard full", false, st.swarms_refused},
      {"peers_refused", "new peers refused: swarm full", false, st.peers_refused},
      {"peers_expired", "peers expired", false, st.peers_expired},
      {"swarms_freed", "empty swarms freed", false, st.swarms_freed},
      {"dropped_stopping", "UDP requests dropped while stopping", false, s.dropped_stopping},
      {"loop_turns", "event loop turns", false, s.loop_turns},
      {"loop_turns_over_250us", "event loop turns whose work took over 250 us", false,
       s.loop_turns_over_250us},
      {"loop_turns_over_1ms", "event loop turns whose work took over 1 ms", false,
       s.loop_turns_over_1ms},
      {"sleeps", "event loop sleeps in the kernel", false, s.sleeps},
      {"swarms", "swarms held", true, st.swarms},
      {"peers_ipv4", "IPv4 peers held", true, st.peers_ipv4},
      {"peers_ipv6", "IPv6 peers held", true, st.peers_ipv6},
      {"seeders", "seeders held", true, st.seeders},
      {"leechers", "leechers held", true, st.leechers},
      {"mailbox_depth", "messages waiting in inbound cross-shard mailboxes", true, g.mailbox_depth},
      {"store_memory_bytes", "bytes held by the swarm store", true, g.store_memory_bytes},
      {"http_connections", "open HTTP connections", true, g.http_connections},
  };
}

}  // namespace tyto::shard
