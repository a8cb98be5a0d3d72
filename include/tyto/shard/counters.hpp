// One shard's counters and gauges. Each counters struct names its fields once, in its `fields`
// table (core/counter_field.hpp), for every reader: the exit summary, /metrics, /stats, totals.
// Counters are plain integers written only by their shard's thread; others see them only as
// copies the shard makes (the control channel, or after the shard stopped).
#pragma once

#include <cstdint>
#include <tuple>
#include <vector>

#include "tyto/core/counter_field.hpp"
#include "tyto/net/tcp_server.hpp"
#include "tyto/net/udp_socket.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::shard {

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
  std::uint64_t http_failures = 0;  // answered with a failure reason or a 4xx status
  std::uint64_t http_busy = 0;      // no lent buffer, mailbox room or scrape slot: 503
  std::uint64_t http_answers_retried = 0;
  std::uint64_t control_answers_dropped = 0;  // the ops bridge's answer queue was full
  std::uint64_t dropped_stopping = 0;         // UDP requests received while stopping
  std::uint64_t loop_turns = 0;
  // Turns whose work (everything but the sleep) took longer: a stall delays every request that
  // waits behind it, so these bound what the loop itself adds to the latency tail.
  std::uint64_t loop_turns_over_250us = 0;
  std::uint64_t loop_turns_over_1ms = 0;
  std::uint64_t sleeps = 0;

  static constexpr CounterField<ShardCounters> fields[] = {
      {&ShardCounters::udp_connects, "udp_connects", "UDP connect requests parsed"},
      {&ShardCounters::udp_announces, "udp_announces",
       "UDP announce requests parsed, before the connection id is checked"},
      {&ShardCounters::udp_scrapes, "udp_scrapes",
       "UDP scrape requests parsed, before the connection id is checked"},
      {&ShardCounters::udp_error_replies, "udp_error_replies", "UDP error replies (action 3)"},
      {&ShardCounters::udp_malformed, "udp_malformed", "UDP requests that did not parse"},
      {&ShardCounters::udp_bad_connection_id, "udp_bad_connection_id",
       "UDP announces and scrapes with an unknown or expired connection id"},
      {&ShardCounters::announces_denied, "announces_denied",
       "announces refused by the access list"},
      {&ShardCounters::announces_forwarded, "announces_forwarded",
       "announces forwarded to the owning shard"},
      {&ShardCounters::scrape_parts_forwarded, "scrape_parts_forwarded",
       "scrape parts forwarded to owning shards"},
      {&ShardCounters::mailbox_full_drops, "mailbox_full_drops",
       "cross-shard messages refused: mailbox full"},
      {&ShardCounters::scrape_slots_full_drops, "scrape_slots_full_drops",
       "scrapes refused: every gathering slot busy (UDP dropped, HTTP 503)"},
      {&ShardCounters::scrape_gather_timeouts, "scrape_gather_timeouts",
       "scrapes given up: an owner did not answer"},
      {&ShardCounters::wakeups_sent, "wakeups_sent", "wake-ups sent to sleeping shards"},
      {&ShardCounters::http_announces, "http_announces",
       "HTTP requests for /announce, before the query is parsed"},
      {&ShardCounters::http_scrapes, "http_scrapes",
       "HTTP requests for /scrape, before the query is parsed"},
      {&ShardCounters::http_failures, "http_failures",
       "HTTP requests answered with a failure reason or a 4xx status"},
      {&ShardCounters::http_busy, "http_busy",
       "HTTP requests answered 503: no lent buffer, mailbox room or scrape slot"},
      {&ShardCounters::http_answers_retried, "http_answers_retried",
       "HTTP announce answers held back for a retry: the mailbox to the asking shard was full"},
      {&ShardCounters::control_answers_dropped, "control_answers_dropped",
       "answers to the ops server dropped: its queue was full (the question times out)"},
      {&ShardCounters::dropped_stopping, "dropped_stopping", "UDP requests dropped while stopping"},
      {&ShardCounters::loop_turns, "loop_turns", "event loop turns"},
      {&ShardCounters::loop_turns_over_250us, "loop_turns_over_250us",
       "event loop turns whose work took over 250 us"},
      {&ShardCounters::loop_turns_over_1ms, "loop_turns_over_1ms",
       "event loop turns whose work took over 1 ms"},
      {&ShardCounters::sleeps, "sleeps", "event loop sleeps in the kernel"},
  };
};
static_assert(counter_fields_complete<ShardCounters>(), "each field has exactly one row in fields");

// Values that go up and down, read when the shard answers.
struct ShardGauges {
  std::uint64_t mailbox_depth = 0;
  std::uint64_t store_memory_bytes = 0;
  std::uint64_t http_connections = 0;
  std::uint64_t loop_turn_max_us = 0;

  static constexpr CounterField<ShardGauges> fields[] = {
      {&ShardGauges::mailbox_depth, "mailbox_depth",
       "messages waiting in inbound cross-shard mailboxes", CounterKind::gauge},
      {&ShardGauges::store_memory_bytes, "store_memory_bytes", "bytes held by the swarm store",
       CounterKind::gauge},
      {&ShardGauges::http_connections, "http_connections", "open HTTP connections",
       CounterKind::gauge},
      {&ShardGauges::loop_turn_max_us, "loop_turn_max_us",
       "the longest event loop turn's work in the last whole second, in us (total: the largest)",
       CounterKind::maximum},
  };
};
static_assert(counter_fields_complete<ShardGauges>(), "each field has exactly one row in fields");

// The private tracker's decisions and its accounting (all zero in public mode), and the
// persisted completed counts (zero without a storage.uri that keeps them).
struct PrivateCounters {
  std::uint64_t announces = 0;
  std::uint64_t refused_passkey_missing = 0;
  std::uint64_t refused_passkey_unknown = 0;
  std::uint64_t refused_user_disabled = 0;
  std::uint64_t refused_leech_not_allowed = 0;
  std::uint64_t refused_client = 0;
  std::uint64_t refused_torrent_unregistered = 0;
  std::uint64_t refused_user_torrent_full = 0;
  std::uint64_t refused_ledger_full = 0;
  std::uint64_t deltas_handed = 0;
  std::uint64_t catalogue_changes = 0;
  std::uint64_t client_rules_refused = 0;
  std::uint64_t ledger_peers = 0;
  std::uint64_t ledger_deltas_waiting = 0;
  std::uint64_t catalogue_users = 0;
  std::uint64_t catalogue_torrents = 0;
  std::uint64_t completions_handed = 0;
  std::uint64_t completions_refused = 0;
  std::uint64_t completions_torrents = 0;
  std::uint64_t completions_waiting = 0;

  static constexpr CounterField<PrivateCounters> fields[] = {
      {&PrivateCounters::announces, "private_announces",
       "private announces with a valid passkey, before the owner's checks"},
      {&PrivateCounters::refused_passkey_missing, "private_refused_passkey_missing",
       "private requests without a passkey in the URL"},
      {&PrivateCounters::refused_passkey_unknown, "private_refused_passkey_unknown",
       "private requests whose passkey is malformed or no user's"},
      {&PrivateCounters::refused_user_disabled, "private_refused_user_disabled",
       "private requests of a disabled user"},
      {&PrivateCounters::refused_leech_not_allowed, "private_refused_leech_not_allowed",
       "private announces with left > 0 from a user who may not leech"},
      {&PrivateCounters::refused_client, "private_refused_client",
       "private announces from a client the peer_id rules refuse"},
      {&PrivateCounters::refused_torrent_unregistered, "private_refused_torrent_unregistered",
       "private announces for a torrent not in the catalogue"},
      {&PrivateCounters::refused_user_torrent_full, "private_refused_user_torrent_full",
       "private announces refused: the user's active peers in the torrent are at the limit"},
      {&PrivateCounters::refused_ledger_full, "private_refused_ledger_full",
       "private announces refused: the shard's accounting table is full"},
      {&PrivateCounters::deltas_handed, "accounting_deltas_handed",
       "accounting deltas handed to the storage bridge"},
      {&PrivateCounters::catalogue_changes, "catalogue_changes_applied",
       "catalogue rows changed in this shard's copy"},
      {&PrivateCounters::client_rules_refused, "client_rules_refused",
       "client rules not held: the rule table was full"},
      {&PrivateCounters::ledger_peers, "ledger_peers", "peers held in the accounting table",
       CounterKind::gauge},
      {&PrivateCounters::ledger_deltas_waiting, "ledger_deltas_waiting",
       "accounting deltas summed in the shard, waiting for room in the storage bridge",
       CounterKind::gauge},
      {&PrivateCounters::catalogue_users, "catalogue_users",
       "users in the shard's catalogue copy (every shard holds all)", CounterKind::maximum},
      {&PrivateCounters::catalogue_torrents, "catalogue_torrents",
       "registered torrents this shard owns", CounterKind::gauge},
      {&PrivateCounters::completions_handed, "completions_handed",
       "completed counts (summed per torrent) handed to the storage bridge"},
      {&PrivateCounters::completions_refused, "completions_refused",
       "completions not persisted: the shard's completion table was full"},
      {&PrivateCounters::completions_torrents, "completions_torrents",
       "torrents whose persisted completed count this shard holds", CounterKind::gauge},
      {&PrivateCounters::completions_waiting, "completions_waiting",
       "torrents with completions summed in the shard, waiting for room in the storage bridge",
       CounterKind::gauge},
  };
};
static_assert(counter_fields_complete<PrivateCounters>(),
              "each field has exactly one row in fields");

// The cluster's work in this shard (cluster_bridge.hpp; all zero without a cluster).
struct ClusterCounters {
  std::uint64_t changes_sent = 0;
  std::uint64_t changes_dropped = 0;
  std::uint64_t changes_applied = 0;
  std::uint64_t changes_unchanged = 0;
  std::uint64_t changes_refused = 0;
  std::uint64_t changes_expired = 0;
  std::uint64_t baselines_adopted = 0;
  std::uint64_t baselines_unchanged = 0;
  std::uint64_t baselines_refused = 0;
  std::uint64_t warm_swarms = 0;
  std::uint64_t warm_peers = 0;
  std::uint64_t warm_pieces_refused = 0;

  static constexpr CounterField<ClusterCounters> fields[] = {
      {&ClusterCounters::changes_sent, "cluster_changes_sent",
       "swarm changes of local announces handed to the cluster bridge"},
      {&ClusterCounters::changes_dropped, "cluster_changes_dropped",
       "swarm changes of local announces dropped: the cluster bridge's queue was full"},
      {&ClusterCounters::changes_applied, "cluster_changes_applied",
       "swarm changes from other nodes applied"},
      {&ClusterCounters::changes_unchanged, "cluster_changes_unchanged",
       "swarm changes from other nodes that changed nothing (already so here)"},
      {&ClusterCounters::changes_refused, "cluster_changes_refused",
       "swarm changes from other nodes refused by the swarm or peer limits"},
      {&ClusterCounters::changes_expired, "cluster_changes_expired",
       "swarm changes from other nodes about peers already past the peer timeout"},
      {&ClusterCounters::baselines_adopted, "cluster_baselines_adopted",
       "private peers' baselines from other nodes taken by this shard's ledger"},
      {&ClusterCounters::baselines_unchanged, "cluster_baselines_unchanged",
       "private peers' baselines from other nodes not newer than the one held here"},
      {&ClusterCounters::baselines_refused, "cluster_baselines_refused",
       "private peers' baselines from other nodes refused: ledger full, or not a private tracker"},
      {&ClusterCounters::warm_swarms, "cluster_warm_swarms",
       "swarms restored from a warm-up streamed by another node"},
      {&ClusterCounters::warm_peers, "cluster_warm_peers",
       "peers restored from a warm-up streamed by another node"},
      {&ClusterCounters::warm_pieces_refused, "cluster_warm_pieces_refused",
       "warm-up pieces whose records were malformed (what came before the fault is kept)"},
  };
};
static_assert(counter_fields_complete<ClusterCounters>(),
              "each field has exactly one row in fields");

struct ShardTotals {
  ShardCounters shard;
  net::UdpCounters udp;
  net::TcpCounters tcp;
  store::StoreCounters store;
  ShardGauges gauges;
  PrivateCounters private_tracker;
  ClusterCounters cluster;

  // Every part, in the order counter_rows exports them.
  static constexpr auto parts =
      std::tuple{&ShardTotals::udp,    &ShardTotals::shard,  &ShardTotals::tcp,
                 &ShardTotals::store,  &ShardTotals::gauges, &ShardTotals::private_tracker,
                 &ShardTotals::cluster};

  void add(const ShardTotals& other) noexcept;
};

struct CounterRow {
  const char* name;  // snake_case, without the tyto_ prefix or a _total suffix
  const char* help;
  bool gauge;
  std::uint64_t value;
};

// Every field of `totals`, one row each from the parts' tables: the counters of every part, then
// the gauges (each group in parts order, then table order).
std::vector<CounterRow> counter_rows(const ShardTotals& totals);

}  // namespace tyto::shard
