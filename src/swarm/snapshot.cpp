// Snapshot records of the in-memory store (big-endian):
//   swarm: info_hash[20] completed u32 age_s u32 ipv4_count u32 ipv6_count u32, then the peers
//   peer:  wire[6 or 18] flags u8 (bit 0 seeder, bit 1 completion counted) age_s u16
#include <algorithm>

#include "tyto/core/assert.hpp"
#include "tyto/core/bytes.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace tyto::swarm {
namespace {

constexpr std::uint8_t peer_seeder = 1;
constexpr std::uint8_t peer_completed = 2;
constexpr std::size_t swarm_header_size = 20 + 4 * 4;

// A peer's record: its wire bytes, flags u8, age_s u16.
template <class Peers>
constexpr std::size_t peer_record_size = Peers::wire_size + 1 + 2;

std::uint64_t peers_size(std::uint64_t ipv4_count, std::uint64_t ipv6_count) {
  return ipv4_count * peer_record_size<Ipv4Peers> + ipv6_count * peer_record_size<Ipv6Peers>;
}

// Peers [from, to) of one family (all of them by default).
template <class Peers>
void write_peers(const Peers& peers, const StampClock& stamps, std::uint32_t now_s, ByteWriter& out,
                 std::uint32_t from = 0, std::uint32_t to = UINT32_MAX) {
  to = std::min(to, peers.count());
  for (std::uint32_t i = from; i < to; ++i) {
    out.bytes(std::span(peers.wire(i), Peers::wire_size));
    const std::uint8_t stamp = peers.stamp(i);
    const bool completed = stamp & stamp_completed_bit;
    out.u8((i < peers.seeders() ? peer_seeder : 0) | (completed ? peer_completed : 0));
    const std::uint32_t age_s = std::min<std::uint32_t>(stamps.age_s(stamp, now_s), 0xffff);
    out.u16(static_cast<std::uint16_t>(age_s));
  }
}

// One swarm record's header, with its peer records still as bytes.
struct SwarmRecord {
  InfoHash info_hash;
  std::uint32_t completed = 0;
  std::uint32_t age_s = 0;
  std::uint64_t ipv4_count = 0;
  std::uint64_t ipv6_count = 0;
  std::span<const std::uint8_t> peer_bytes;
};

// Reads one swarm record off `in`; nullptr, or why the records are malformed.
const char* read_swarm_record(ByteReader& in, SwarmRecord& record) {
  if (in.remaining() < swarm_header_size) return "truncated swarm record";
  in.copy_to(std::span(record.info_hash.bytes));
  record.completed = in.u32();
  record.age_s = in.u32();
  record.ipv4_count = in.u32();
  record.ipv6_count = in.u32();
  const std::uint64_t peer_bytes_size = peers_size(record.ipv4_count, record.ipv6_count);
  if (peer_bytes_size > in.remaining()) return "truncated peer list";
  record.peer_bytes = in.bytes(peer_bytes_size);
  return nullptr;
}

// The parts of the store restoring peers reads and counts into, lent by restore_snapshot.
struct PeerRestore {
  const StoreLimits& limits;
  const StampClock& stamps;
  const HashSecret& secret;
  SlabArena& arena;
  StoreCounters& counters;
  std::uint32_t now_s;
  std::uint32_t extra_age_s;
};

// Reads `count` peer records of one family into `peers` (one of `swarm`'s sets; `ipv6` is its
// IPv6 set, or nullptr), skipping
// expired, duplicate and over-the-limit ones; returns how many were restored. A peer the set
// holds already (listed twice, or live in a swarm that existed before: a warm start among
// replicated changes) is left as it is: the record is never fresher news than the store.
template <class Peers>
std::uint64_t restore_peers(const PeerRestore& store, const Swarm& swarm, const Ipv6Peers* ipv6,
                            Peers& peers, std::uint64_t count, ByteReader& in,
                            std::uint64_t& family_gauge) {
  std::uint64_t restored = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint8_t* wire = in.bytes(Peers::wire_size).data();
    const std::uint8_t flags = in.u8();
    const std::uint64_t age_s = std::uint64_t{in.u16()} + store.extra_age_s;
    // So long ago that no stamp can say it (128 units wrap): expired for sure.
    if (age_s >= std::uint64_t{store.limits.peer_timeout_s} + 2 * store.stamps.unit_s()) continue;
    // The stamp of the announce's own second: the record's age (whole units before the unit
    // it was cut in) before the cut (now_s - extra_age_s), which, cut at a known second as a
    // cluster's warm-up pieces are, is the stamp the peer had there. Past the timeout as the
    // stamps count it: expired already.
    const std::uint8_t announced =
        store.stamps.stamp_at(std::int64_t{store.now_s} - static_cast<std::int64_t>(age_s));
    if (store.stamps.expired(announced, store.now_s, store.limits.peer_timeout_s)) continue;
    if (peers.find_live(wire, store.arena, store.secret) != Peers::not_found) continue;  // held
    const std::uint32_t total =
        swarm.ipv4.live_count() + (ipv6 != nullptr ? ipv6->live_count() : 0);
    if (total >= store.limits.peers_per_swarm_max) {
      ++store.counters.peers_refused;
      continue;
    }
    const bool seeder = flags & peer_seeder;
    const auto stamp =
        static_cast<std::uint8_t>(announced | (flags & peer_completed ? stamp_completed_bit : 0));
    peers.insert(wire, seeder, stamp, store.arena, store.secret);
    ++(seeder ? store.counters.seeders : store.counters.leechers);
    ++family_gauge;
    ++restored;
  }
  return restored;
}

}  // namespace

std::uint64_t SwarmStore::append_snapshot(std::uint32_t now_s,
                                          std::vector<std::uint8_t>& out) const {
  std::uint64_t swarms = 0;
  for (const Swarm& swarm : records()) {
    const std::uint32_t ipv6_count = swarm.activity.has_ipv6 ? ipv6_of(swarm)->count() : 0;
    const std::size_t at = out.size();
    out.resize(at + swarm_header_size + peers_size(swarm.ipv4.count(), ipv6_count));
    ByteWriter record{std::span(out).subspan(at)};
    record.bytes(swarm.info_hash.bytes);
    record.u32(swarm.completed);
    record.u32(now_s - swarm.activity.created_s);
    record.u32(swarm.ipv4.count());
    record.u32(ipv6_count);
    write_peers(swarm.ipv4, stamps_, now_s, record);
    if (swarm.activity.has_ipv6) write_peers(*ipv6_of(swarm), stamps_, now_s, record);
    TYTO_ASSERT(record.ok() && record.remaining() == 0);  // the size above matches the writes
    ++swarms;
  }
  return swarms;
}

// Slices walk the dense records from the last position down (cursor.position = positions left
// to visit, [0, position)), because of how the table moves records: an insert appends at
// records_count_, an erase moves the last record into the hole; nothing else moves a record,
// and index growth moves index entries only. So a record not yet visited (below the cursor)
// only ever moves down, into a hole below it, and stays below the cursor: a swarm present
// throughout is never skipped. The last record moved into an unvisited hole may have been
// visited already: that swarm is written twice (restore merges). A swarm inserted meanwhile is
// written or not. position is clamped to records_count_ before each visit (erases shrink it).
// A swarm larger than the budget is split: peers_done of its peers (IPv4 first, then IPv6)
// went out in earlier records; if another swarm has moved into the position since (its
// info_hash differs), that one is written whole from its first peer.
bool SwarmStore::append_snapshot_slice(store::SnapshotCursor& cursor, std::uint32_t now_s,
                                       std::vector<std::uint8_t>& out,
                                       std::size_t budget_bytes) const {
  if (!cursor.started) {
    cursor = store::SnapshotCursor{};
    cursor.started = true;
    cursor.position = records_count_;
  }
  const std::size_t start = out.size();
  while (out.size() - start < budget_bytes) {
    cursor.position = std::min<std::uint64_t>(cursor.position, records_count_);
    if (cursor.position == 0) return true;
    const Swarm& swarm = records_[cursor.position - 1];
    if (cursor.peers_done > 0 && !(swarm.info_hash == cursor.info_hash)) cursor.peers_done = 0;
    const std::uint32_t ipv4_total = swarm.ipv4.count();
    const std::uint32_t total =
        ipv4_total + (swarm.activity.has_ipv6 ? ipv6_of(swarm)->count() : 0);
    // Peers this record takes: what the budget has room for, at least one (progress). A swarm
    // that fits a whole slice but not this one's rest waits for the next slice (no split).
    const std::size_t room = budget_bytes - (out.size() - start);
    const std::uint32_t from = std::min(cursor.peers_done, total);
    const std::size_t whole_bytes = swarm_header_size + peers_size(ipv4_total, total - ipv4_total);
    if (from == 0 && out.size() > start && whole_bytes > room && whole_bytes <= budget_bytes) {
      return false;
    }
    const auto to = static_cast<std::uint32_t>(std::min<std::uint64_t>(
        total, from + std::max<std::size_t>(1, room / peer_record_size<Ipv4Peers>)));
    const std::uint32_t ipv4_from = std::min(from, ipv4_total);
    const std::uint32_t ipv4_to = std::min(to, ipv4_total);
    const std::uint32_t ipv6_from = from - ipv4_from;
    const std::uint32_t ipv6_to = to - ipv4_to;
    const std::size_t at = out.size();
    out.resize(at + swarm_header_size + peers_size(ipv4_to - ipv4_from, ipv6_to - ipv6_from));
    ByteWriter record{std::span(out).subspan(at)};
    record.bytes(swarm.info_hash.bytes);
    record.u32(swarm.completed);
    record.u32(now_s - swarm.activity.created_s);
    record.u32(ipv4_to - ipv4_from);
    record.u32(ipv6_to - ipv6_from);
    write_peers(swarm.ipv4, stamps_, now_s, record, ipv4_from, ipv4_to);
    if (swarm.activity.has_ipv6)
      write_peers(*ipv6_of(swarm), stamps_, now_s, record, ipv6_from, ipv6_to);
    TYTO_ASSERT(record.ok() && record.remaining() == 0);  // the size above matches the writes
    cursor.swarms += from == 0;
    if (to == total) {
      --cursor.position;
      cursor.peers_done = 0;
    } else {
      TYTO_ASSERT(to > from);
      cursor.peers_done = to;
      cursor.info_hash = swarm.info_hash;
    }
  }
  return false;
}

Result<SwarmStore::Restored, std::string> SwarmStore::restore_snapshot(
    std::span<const std::uint8_t> records, std::uint32_t now_s, std::uint32_t extra_age_s,
    const std::function<bool(const InfoHash&)>& keep) {
  owner_.check();
  Restored restored;
  const PeerRestore store{limits_, stamps_, secret_, arena_, counters_, now_s, extra_age_s};
  ByteReader in(records);
  while (in.remaining() > 0) {
    SwarmRecord record;
    if (const char* failure = read_swarm_record(in, record)) return Failure{std::string(failure)};
    if (!keep(record.info_hash)) continue;
    const std::uint64_t hash = hash_info_hash(record.info_hash, secret_);
    Swarm* swarm = find(record.info_hash, hash);
    // A swarm held already (a second record of it, or made by replicated changes before this
    // warm start): merged, its peers kept as they are, the larger completed count.
    const bool merged = swarm != nullptr;
    if (swarm == nullptr) {
      if (swarms_count() >= limits_.swarms_max) {
        ++counters_.swarms_refused;
        continue;
      }
      swarm = insert(record.info_hash, hash);
      const std::uint32_t age_s = record.age_s + extra_age_s;
      swarm->activity.created_s = now_s >= age_s ? now_s - age_s : 0;
      swarm->activity.window = window_of(now_s);
    }
    swarm->completed = std::max(swarm->completed, record.completed);
    ByteReader peers_in(record.peer_bytes);
    restored.peers += restore_peers(store, *swarm, ipv6_of(*swarm), swarm->ipv4, record.ipv4_count,
                                    peers_in, counters_.peers_ipv4);
    if (record.ipv6_count > 0) {
      Ipv6Peers& ipv6 = make_ipv6(*swarm);
      restored.peers += restore_peers(store, *swarm, &ipv6, ipv6, record.ipv6_count, peers_in,
                                      counters_.peers_ipv6);
      if (ipv6_of(*swarm)->empty()) free_swarm(*swarm);
    }
    // Every peer had expired: the swarm goes, unless it keeps a completed count.
    if (swarm->ipv4.empty() && !swarm->activity.has_ipv6 && !keeps_completed(*swarm)) {
      erase(static_cast<std::uint32_t>(swarm - records_));
      continue;
    }
    restored.swarms += !merged;
  }
  return restored;
}

}  // namespace tyto::swarm
