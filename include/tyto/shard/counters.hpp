// One shard's counters, and the one table that names them for every reader (the exit summary,
// /metrics, /stats). Counters are plain integers written only by their shard's thread; others
// see them only as copies the shard makes (the control channel, or after the shard stopped).
#pragma once

#include <cstdint>
#include <vector>

#include "tyto/net/tcp_server.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::shard {

// Every field is a std::uint64_t (totals are added up field by field).
struct ShardCounters {
  std::uint64_t udp_connects = 0;
  std::uint64_t udp_announces = 0;
  std::uint64_t udp_scrapes = 0;
  std::uint64_t udp_error_replies = 0;
  std::uint64_t udp_malformed = 0;  // parse failures (answered or dropped)
  std::uint64_t udp_bad_connection_id = 0;
  std::uint64_t announces_denied = 0;  // refused by the access list (either protocol)
  std::uint64_t announces_forwarded = 0;
  std::uint64_t scrape_parts_forwarded = 0;
  std::uint64_t mailbox_full_drops = 0;  // forward refused: the owner's mailbox was full
  std::uint64_t scrape_slots_full_drops = 0;
  std::uint64_t scrape_gather_timeouts = 0;
  std::uint64_t wakeups_sent = 0;
  std::uint64_t http_announces = 0;
  std::uint64_t http_scrapes = 0;
  std::uint64_t http_failures = 0;  // answered with a failure reason or an error status
  std::uint64_t http_busy = 0;      // no lent buffer or mailbox room: 503
  std::uint64_t http_answers_retried = 0;
  std::uint64_t control_answers_dropped = 0;  // the ops bridge's answer queue was full
  std::uint64_t dropped_stopping = 0;         // UDP requests received while stopping
  std::uint64_t loop_turns = 0;
  // Turns whose work (everything but the sleep) took longer: a stall delays every request that
  // waits behind it, so these bound what the loop itself adds to the latency tail.
  std::uint64_t loop_turns_over_250us = 0;
  std::uint64_t loop_turns_over_1ms = 0;
  std::uint64_t sleeps = 0;
};

// Values that go up and down, read when the shard answers.
struct ShardGauges {
  std::uint64_t mailbox_depth = 0;  // messages waiting in the shard's inbound mailboxes
  std::uint64_t store_memory_bytes = 0;
  std::uint64_t http_connections = 0;
};

struct ShardTotals {
  ShardCounters shard;
  net::UdpCounters udp;
  net::TcpCounters tcp;
  store::StoreCounters store;
  ShardGauges gauges;

  void add(const ShardTotals& other) noexcept;
};

struct CounterRow {
  const char* name;  // snake_case, without the tyto_ prefix or a _total suffix
  const char* help;
  bool gauge;
  std::uint64_t value;
};

// Every counter and gauge of `totals`, in a fixed order.
std::vector<CounterRow> counter_rows(const ShardTotals& totals);

}  // namespace tyto::shard
