// ReferenceStore: a deliberately simple second store::PeerStore, written from the interface's
// contract alone (ordered maps, a full sweep per expiry step, the first qualifying peers instead
// of a random window). The shard's tests run against it and against the in-memory SwarmStore, so
// the storage boundary is proven by use: anything the shard needs beyond the interface would not
// compile here, and anything the shard assumes of SwarmStore alone would fail here.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <vector>

#include "tyto/core/bytes.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::testing {

class ReferenceStore final : public store::PeerStore {
 public:
  explicit ReferenceStore(const store::StoreLimits& limits) : limits_(limits) {}

  AnnounceReply announce(const AnnounceRequest& request, std::uint32_t now_s,
                         std::span<std::uint8_t> peers_out) noexcept override {
    ++counters_.announces;
    auto found = swarms_.find(key_of(request.info_hash));
    if (found == swarms_.end()) {
      if (request.event == AnnounceEvent::stopped) return {};
      if (swarms_.size() >= limits_.swarms_max) {
        ++counters_.swarms_refused;
        return {AnnounceStatus::swarm_limit};
      }
      found =
          swarms_.emplace(key_of(request.info_hash), Swarm{request.info_hash, now_s, 0, {}, now_s})
              .first;
    }
    Swarm& swarm = found->second;
    expire_peers(swarm, now_s);  // the contract: no read shows an expired peer
    const Wire wire(request.peer.wire.begin(),
                    request.peer.wire.begin() + request.peer.wire_size());
    auto peer = swarm.peers.find(wire);
    swarm.last_s = now_s;
    if (request.event == AnnounceEvent::stopped) {
      if (peer != swarm.peers.end()) swarm.peers.erase(peer);
      const AnnounceReply reply = reply_of(swarm, 0);
      if (gone(swarm, now_s)) swarms_.erase(found);
      return reply;
    }
    if (peer == swarm.peers.end()) {
      if (swarm.peers.size() >= limits_.peers_per_swarm_max) {
        ++counters_.peers_refused;
        return {AnnounceStatus::peer_limit};
      }
      peer = swarm.peers.emplace(wire, Peer{}).first;
    }
    peer->second.seeder = request.left_bytes == 0;
    peer->second.last_s = now_s;
    const bool counted = request.event == AnnounceEvent::completed && !peer->second.completed;
    if (counted) {
      peer->second.completed = true;
      ++swarm.completed;
    }
    // Seeders get leechers only; never the requester; only the requester's family.
    std::size_t written = 0;
    for (const auto& [other, state] : swarm.peers) {
      if (written + wire.size() > peers_out.size()) break;
      if (other == wire || other.size() != wire.size() || (peer->second.seeder && state.seeder))
        continue;
      std::memcpy(peers_out.data() + written, other.data(), other.size());
      written += other.size();
    }
    AnnounceReply reply = reply_of(swarm, static_cast<std::uint32_t>(written / wire.size()));
    reply.completion_counted = counted;
    return reply;
  }

  // Another node's announce: the same rules without a reply, not counted in announces.
  ReplicaResult apply_replica(const ReplicaChange& change, std::uint32_t now_s) noexcept override {
    auto found = swarms_.find(key_of(change.info_hash));
    if (change.kind == ReplicaChange::Kind::completed) {
      if (change.completed_count == 0) return ReplicaResult::unchanged;
      if (found == swarms_.end()) {
        if (limits_.completed_keep_s == 0) return ReplicaResult::unchanged;
        if (swarms_.size() >= limits_.swarms_max) {
          ++counters_.swarms_refused;
          return ReplicaResult::swarm_limit;
        }
        found =
            swarms_.emplace(key_of(change.info_hash), Swarm{change.info_hash, now_s, 0, {}, now_s})
                .first;
      }
      Swarm& swarm = found->second;
      if (swarm.completed == UINT32_MAX) return ReplicaResult::unchanged;
      swarm.completed = static_cast<std::uint32_t>(std::min<std::uint64_t>(
          std::uint64_t{swarm.completed} + change.completed_count, UINT32_MAX));
      swarm.last_s = now_s;
      return ReplicaResult::applied;
    }
    const Wire wire(change.peer.wire.begin(), change.peer.wire.begin() + change.peer.wire_size());
    if (change.kind == ReplicaChange::Kind::peer_removed) {
      if (found == swarms_.end()) return ReplicaResult::unchanged;
      if (found->second.peers.erase(wire) == 0) return ReplicaResult::unchanged;
      found->second.last_s = now_s;
      if (gone(found->second, now_s)) swarms_.erase(found);
      return ReplicaResult::applied;
    }
    const std::int64_t announced_at_s = std::min<std::int64_t>(change.announced_s, now_s);
    if (now_s - announced_at_s > limits_.peer_timeout_s) return ReplicaResult::expired;
    if (found == swarms_.end()) {
      if (swarms_.size() >= limits_.swarms_max) {
        ++counters_.swarms_refused;
        return ReplicaResult::swarm_limit;
      }
      found =
          swarms_.emplace(key_of(change.info_hash), Swarm{change.info_hash, now_s, 0, {}, now_s})
              .first;
    }
    Swarm& swarm = found->second;
    swarm.last_s = now_s;
    const auto announced_s = static_cast<std::uint32_t>(std::max<std::int64_t>(announced_at_s, 0));
    auto peer = swarm.peers.find(wire);
    if (peer == swarm.peers.end()) {
      if (swarm.peers.size() >= limits_.peers_per_swarm_max) {
        ++counters_.peers_refused;
        return ReplicaResult::peer_limit;
      }
      swarm.peers.emplace(wire, Peer{change.seeder, false, announced_s});
      return ReplicaResult::applied;
    }
    if (peer->second.last_s > announced_s) return ReplicaResult::unchanged;  // fresher here
    const bool changed = peer->second.last_s != announced_s || peer->second.seeder != change.seeder;
    peer->second.last_s = announced_s;
    peer->second.seeder = change.seeder;
    return changed ? ReplicaResult::applied : ReplicaResult::unchanged;
  }

  ScrapeEntry scrape(const InfoHash& info_hash, std::uint32_t now_s) noexcept override {
    const auto found = swarms_.find(key_of(info_hash));
    if (found == swarms_.end()) return {};
    expire_peers(found->second, now_s);  // the contract: no read shows an expired peer
    const AnnounceReply reply = reply_of(found->second, 0);
    return {reply.seeders, reply.leechers, reply.completed};
  }

  store::SwarmLookup start_lookup(const InfoHash&) const noexcept override { return {}; }
  void prefetch(std::span<store::SwarmLookup>) const noexcept override {}
  AnnounceReply announce(const AnnounceRequest& request, const store::SwarmLookup&,
                         std::uint32_t now_s, std::span<std::uint8_t> peers_out) noexcept override {
    return announce(request, now_s, peers_out);
  }

  void expire_step(std::uint32_t now_s) noexcept override {
    for (auto swarm = swarms_.begin(); swarm != swarms_.end();) {
      expire_peers(swarm->second, now_s);
      if (gone(swarm->second, now_s)) {
        ++counters_.swarms_freed;
        swarm = swarms_.erase(swarm);
      } else {
        ++swarm;
      }
    }
  }

  const store::StoreCounters& counters() const noexcept override {
    counters_.swarms = swarms_.size();
    counters_.peers_ipv4 = counters_.peers_ipv6 = counters_.seeders = counters_.leechers = 0;
    for (const auto& [key, swarm] : swarms_) {
      for (const auto& [wire, peer] : swarm.peers) {
        ++(wire.size() == 6 ? counters_.peers_ipv4 : counters_.peers_ipv6);
        ++(peer.seeder ? counters_.seeders : counters_.leechers);
      }
    }
    return counters_;
  }
  std::size_t memory_bytes() const noexcept override { return swarms_.size() * sizeof(Swarm); }
  std::uint32_t swarms_max() const noexcept override { return limits_.swarms_max; }

  bool statistics(const InfoHash& info_hash, std::uint32_t now_s,
                  store::SwarmStatistics& out) noexcept override {
    const auto found = swarms_.find(key_of(info_hash));
    if (found == swarms_.end()) return false;
    out = statistics_of(found->second, now_s);
    return true;
  }
  std::uint32_t top(store::TopOrder order, std::uint32_t now_s,
                    std::span<store::SwarmStatistics> out) noexcept override {
    std::vector<store::SwarmStatistics> all;
    for (const auto& [key, swarm] : swarms_) all.push_back(statistics_of(swarm, now_s));
    std::stable_sort(all.begin(), all.end(), [order](const auto& a, const auto& b) {
      return store::top_key(a, order) > store::top_key(b, order);
    });
    const std::size_t count = std::min(all.size(), out.size());
    std::copy_n(all.begin(), count, out.begin());
    return static_cast<std::uint32_t>(count);
  }

  // The record format of src/swarm/snapshot.cpp, written from its header comment.
  std::uint64_t append_snapshot(std::uint32_t now_s,
                                std::vector<std::uint8_t>& out) const override {
    for (const auto& [key, swarm] : swarms_) append_swarm(swarm, now_s, out);
    return swarms_.size();
  }
  // Slices in key order: the cursor is the last info_hash written, so inserts and erases never
  // move it (an ordered map's keys are a stable key space). Whole swarms only: a slice may
  // overshoot its budget by one swarm.
  bool append_snapshot_slice(store::SnapshotCursor& cursor, std::uint32_t now_s,
                             std::vector<std::uint8_t>& out,
                             std::size_t budget_bytes) const override {
    auto next = cursor.started ? swarms_.upper_bound(key_of(cursor.info_hash)) : swarms_.begin();
    cursor.started = true;
    const std::size_t start = out.size();
    for (; next != swarms_.end() && out.size() - start < budget_bytes; ++next) {
      append_swarm(next->second, now_s, out);
      cursor.info_hash = next->second.info_hash;
      ++cursor.swarms;
    }
    return next == swarms_.end();
  }
  Result<store::Restored, std::string> restore_snapshot(
      std::span<const std::uint8_t> records, std::uint32_t now_s, std::uint32_t extra_age_s,
      const std::function<bool(const InfoHash&)>& keep) override {
    store::Restored restored;
    ByteReader in(records);
    while (in.remaining() > 0) {
      InfoHash info_hash;
      in.copy_to(std::span(info_hash.bytes));
      const std::uint32_t completed = in.u32();
      const std::uint32_t age_s = in.u32();
      const std::uint64_t counts[2] = {in.u32(), in.u32()};
      if (!in.ok()) return Failure{std::string("truncated swarm record")};
      Swarm swarm{info_hash, now_s > age_s ? now_s - age_s : 0, completed, {}, now_s};
      for (int family = 0; family < 2; ++family) {
        for (std::uint64_t i = 0; i < counts[family]; ++i) {
          const auto wire = in.bytes(family == 0 ? 6 : 18);
          const std::uint8_t flags = in.u8();
          const std::uint32_t peer_age_s = in.u16() + extra_age_s;
          if (!in.ok()) return Failure{std::string("truncated peer list")};
          if (peer_age_s > limits_.peer_timeout_s || now_s < peer_age_s) continue;
          swarm.peers[Wire(wire.begin(), wire.end())] = {(flags & 1) != 0, (flags & 2) != 0,
                                                         now_s - peer_age_s};
        }
      }
      if (!keep(info_hash)) continue;
      // A swarm held already (a second record of it, or made by replicated changes before this
      // warm start): merged, the peers it holds kept as they are.
      if (auto found = swarms_.find(key_of(info_hash)); found != swarms_.end()) {
        Swarm& kept = found->second;
        kept.completed = std::max(kept.completed, swarm.completed);
        for (auto& [wire, peer] : swarm.peers) {
          if (kept.peers.contains(wire)) continue;
          if (kept.peers.size() >= limits_.peers_per_swarm_max) {
            ++counters_.peers_refused;
            continue;
          }
          kept.peers.emplace(wire, peer);
          ++restored.peers;
        }
        continue;
      }
      if (gone(swarm, now_s)) continue;
      if (swarms_.size() >= limits_.swarms_max) {
        ++counters_.swarms_refused;
        continue;
      }
      while (swarm.peers.size() > limits_.peers_per_swarm_max) {
        swarm.peers.erase(std::prev(swarm.peers.end()));
        ++counters_.peers_refused;
      }
      restored.peers += swarm.peers.size();
      ++restored.swarms;
      swarms_[key_of(info_hash)] = std::move(swarm);
    }
    return restored;
  }

 private:
  using Wire = std::vector<std::uint8_t>;
  using Key = std::array<std::uint8_t, 20>;
  struct Peer {
    bool seeder = false;
    bool completed = false;
    std::uint32_t last_s = 0;
  };
  struct Swarm {
    InfoHash info_hash;
    std::uint32_t created_s = 0;
    std::uint32_t completed = 0;
    std::map<Wire, Peer> peers;
    std::uint32_t last_s = 0;  // the last announce, or the last peer seen
  };
  static void append_swarm(const Swarm& swarm, std::uint32_t now_s,
                           std::vector<std::uint8_t>& out) {
    std::uint32_t ipv4 = 0;
    for (const auto& [wire, peer] : swarm.peers) ipv4 += wire.size() == 6;
    const std::size_t ipv6 = swarm.peers.size() - ipv4;
    const std::size_t at = out.size();
    out.resize(at + 20 + 4 * 4 + ipv4 * (6 + 3) + ipv6 * (18 + 3));
    ByteWriter record(std::span<std::uint8_t>(out).subspan(at));
    record.bytes(swarm.info_hash.bytes);
    record.u32(swarm.completed);
    record.u32(now_s - swarm.created_s);
    record.u32(ipv4);
    record.u32(static_cast<std::uint32_t>(ipv6));
    for (const std::size_t family_size : {std::size_t{6}, std::size_t{18}}) {
      for (const auto& [wire, peer] : swarm.peers) {
        if (wire.size() != family_size) continue;
        record.bytes(wire);
        record.u8((peer.seeder ? 1 : 0) | (peer.completed ? 2 : 0));
        record.u16(
            static_cast<std::uint16_t>(std::min<std::uint32_t>(now_s - peer.last_s, 0xffff)));
      }
    }
    TYTO_ASSERT(record.ok() && record.remaining() == 0);
  }
  // Empty, and its completed count (if any) kept long enough.
  void expire_peers(Swarm& swarm, std::uint32_t now_s) noexcept {
    std::erase_if(swarm.peers, [&](const auto& peer) {
      const bool expired = now_s - peer.second.last_s > limits_.peer_timeout_s;
      counters_.peers_expired += expired;
      swarm.last_s = std::max(swarm.last_s, peer.second.last_s);
      return expired;
    });
  }
  bool gone(const Swarm& swarm, std::uint32_t now_s) const noexcept {
    return swarm.peers.empty() &&
           (swarm.completed == 0 || now_s - swarm.last_s > limits_.completed_keep_s);
  }
  static Key key_of(const InfoHash& info_hash) noexcept { return info_hash.bytes; }
  static AnnounceReply reply_of(const Swarm& swarm, std::uint32_t peers_count) noexcept {
    AnnounceReply reply;
    for (const auto& [wire, peer] : swarm.peers) ++(peer.seeder ? reply.seeders : reply.leechers);
    reply.completed = swarm.completed;
    reply.peers_count = peers_count;
    return reply;
  }
  static store::SwarmStatistics statistics_of(const Swarm& swarm, std::uint32_t now_s) {
    store::SwarmStatistics statistics;
    const AnnounceReply reply = reply_of(swarm, 0);
    statistics.info_hash = swarm.info_hash;
    statistics.seeders = reply.seeders;
    statistics.leechers = reply.leechers;
    statistics.completed = swarm.completed;
    statistics.age_s = now_s - swarm.created_s;
    return statistics;
  }

  store::StoreLimits limits_;
  std::map<Key, Swarm> swarms_;
  mutable store::StoreCounters counters_;
};

}  // namespace tyto::testing
