#include "tyto/swarm/swarm_store.hpp"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "tyto/core/open_addressing.hpp"

namespace tyto::swarm {

namespace {
constexpr std::uint32_t initial_capacity = 1024;  // index entries
constexpr std::uint32_t migrate_entries_per_operation = 16;
// The most an expiry step migrates (elapsed time can ask for the whole index after a stall):
// entries are read in order and written near-in-order, some 10 ns each.
constexpr std::uint32_t migrate_entries_per_step_max = 1u << 15;
// A growth's new index is mapped at 70 % load and its pages are faulted in one per
// prefault_inserts_per_page inserts (a first touch costs some 4 us on a VM): 12 bytes per
// entry of the old capacity are C / 341 pages, faulted within 0.047 × C inserts, long before
// the growth at 80 % load. Random inserts into an untouched index would otherwise fault up to
// one page each (a 256-announce turn: 1 ms).
constexpr std::uint32_t prefault_inserts_per_page = 16;
// Migrated pages of the old index go back to the kernel in chunks of this many entries (64 KiB,
// page aligned): unmapping the whole of it at the end would free tens of MB at once (2-6 ms).
constexpr std::uint32_t release_chunk_entries = 8192;
// Record pages are given back once the array uses less than half of what it touched, and at
// least this much would go.
constexpr std::size_t record_release_bytes_min = std::size_t{1} << 20;
constexpr std::uint32_t record_reservation_min = 1u << 16;

using open_addressing::home_of;
using open_addressing::next_slot;
using open_addressing::tag_of;

std::size_t page_size() noexcept {  // madvise needs it
  static const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

std::size_t page_round_up(std::size_t bytes) noexcept {
  const std::size_t page = page_size();
  return (bytes + page - 1) / page * page;
}

// Records and indexes are mapped, not taken from the heap: an index a growth leaves behind goes
// straight back to the kernel, and fresh pages are zero (an empty index needs no pass).
static_assert(std::is_trivially_destructible_v<Swarm>);
static_assert(std::is_trivially_copyable_v<Swarm>);

void* map_zeroed(std::size_t bytes, bool reserve_only) noexcept {
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | (reserve_only ? MAP_NORESERVE : 0), -1, 0);
  return memory == MAP_FAILED ? nullptr : memory;
}

template <class T>
T* map_array(std::uint32_t count) noexcept {
  void* memory = map_zeroed(std::size_t{count} * sizeof(T), false);
  TYTO_ASSERT(memory != nullptr);  // out of memory: a tracker cannot run half a table
  return static_cast<T*>(memory);
}

template <class T>
void unmap_array(T* array, std::uint32_t count) noexcept {
  if (array != nullptr) munmap(array, std::size_t{count} * sizeof(T));
}

std::int64_t thread_cpu_ns() noexcept {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

void bump(std::uint16_t& counter) noexcept {
  if (counter != 0xffff) ++counter;
}

// Boyer-Moore majority vote over the peers' address prefixes, then a count of the candidate:
// the number of peers in the prefix that holds more than half of them, or 0 when none does.
// Sets over concentration_sample_max peers: that many, evenly spaced (issue 21 §2: a sweep
// visit of a set of 1 M peers spent 2.5 ms here), and the count scaled back to the set's.
constexpr std::uint32_t concentration_sample_max = 4096;

template <class Peers>
std::uint32_t majority_prefix_count(const Peers& peers, std::size_t prefix_bytes) noexcept {
  const std::uint32_t total = peers.count();
  const std::uint32_t count = std::min(total, concentration_sample_max);
  const auto position = [&](std::uint32_t i) {  // the i-th of `count` evenly spaced
    return static_cast<std::uint32_t>(std::uint64_t{i} * total / count);
  };
  const std::uint8_t* candidate = nullptr;
  std::uint32_t votes = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* wire = peers.wire(position(i));
    if (votes == 0) {
      candidate = wire;
      votes = 1;
    } else {
      votes += std::memcmp(wire, candidate, prefix_bytes) == 0 ? 1 : -1;
    }
  }
  std::uint32_t in_candidate = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    in_candidate += std::memcmp(peers.wire(position(i)), candidate, prefix_bytes) == 0;
  }
  if (2 * in_candidate <= count) return 0;
  return static_cast<std::uint32_t>(std::uint64_t{in_candidate} * total / count);
}

constexpr std::uint32_t concentration_peers_min = 16;
}  // namespace

SwarmStore::SwarmStore(const StoreLimits& limits, const HashSecret& secret,
                       std::uint64_t random_seed)
    : limits_(limits), stamps_(limits.peer_timeout_s, limits.unix_at_zero_s), secret_(secret), random_state_(random_seed) {
  TYTO_ASSERT(limits.peers_per_swarm_max > 0 && limits.peers_per_swarm_max <= peers_per_set_max);
  TYTO_ASSERT(limits.swarms_max > 0);
  // Address space for every record the limit allows; where it is short (ulimit -v, valgrind)
  // the reservation halves, and the swarm limit with it.
  // The IPv6 side array takes an eighth of that again.
  records_capacity_ = limits.swarms_max;
  for (;;) {
    records_ = static_cast<Swarm*>(
        map_zeroed(std::size_t{records_capacity_} * sizeof(Swarm), /*reserve_only=*/true));
    ipv6_sets_ = static_cast<Ipv6Peers**>(
        map_zeroed(std::size_t{records_capacity_} * sizeof(Ipv6Peers*), /*reserve_only=*/true));
    if (records_ != nullptr && ipv6_sets_ != nullptr) break;
    if (records_ != nullptr) munmap(records_, std::size_t{records_capacity_} * sizeof(Swarm));
    if (ipv6_sets_ != nullptr) {
      munmap(ipv6_sets_, std::size_t{records_capacity_} * sizeof(Ipv6Peers*));
    }
    TYTO_ASSERT(records_capacity_ > record_reservation_min);
    records_capacity_ /= 2;
  }
  limits_.swarms_max = records_capacity_;
  current_.capacity = initial_capacity;
  current_.entries = map_array<IndexEntry>(initial_capacity);
}

SwarmStore::~SwarmStore() {
  for (Swarm& swarm : records()) {
    swarm.ipv4.release(arena_);
    free_swarm(swarm);
  }
  munmap(records_, std::size_t{records_capacity_} * sizeof(Swarm));
  munmap(ipv6_sets_, std::size_t{records_capacity_} * sizeof(Ipv6Peers*));
  unmap_array(current_.entries, current_.capacity);
  unmap_array(previous_.entries, previous_.capacity);
  unmap_array(next_.entries, next_.capacity);
}

std::uint64_t SwarmStore::next_random() noexcept {
  // wyrand: one multiply per draw; seeded per store.
  random_state_ += 0xa0761d6478bd642full;
  const unsigned __int128 product =
      static_cast<unsigned __int128>(random_state_) * (random_state_ ^ 0xe7037ed1a0b428dbull);
  return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
}

ScrapeEntry SwarmStore::entry_of(const Swarm& swarm) const noexcept {
  ScrapeEntry entry;
  // The live peers: a staged set's expired peers still held are no one's business (expire()).
  entry.seeders =
      swarm.ipv4.live_seeders() + (swarm.activity.has_ipv6 ? ipv6_of(swarm)->live_seeders() : 0);
  entry.leechers =
      swarm.ipv4.live_leechers() + (swarm.activity.has_ipv6 ? ipv6_of(swarm)->live_leechers() : 0);
  entry.completed = swarm.completed;
  return entry;
}

const Swarm* SwarmStore::find(const InfoHash& info_hash, std::uint64_t hash,
                              std::uint32_t* empty_slot) const noexcept {
  if (empty_slot != nullptr) *empty_slot = no_slot;
  const std::uint32_t tag = tag_of(hash);
  const auto matches = [&](const IndexEntry& entry) {
    return entry.tag == tag && records_[entry.position_plus_one - 1].info_hash == info_hash;
  };
  for (const Index* index : {&current_, &previous_}) {
    if (index->count == 0) continue;
    const std::uint32_t home = home_of(tag, index->capacity);
    // A migrated home is empty, so the run ends there; its page may be released: not read.
    if (index == &previous_ && migrated(home)) continue;
    const std::uint32_t slot = open_addressing::find<IndexTraits>(index->slots(), home, matches);
    const IndexEntry entry = index->entries[slot];
    if (!IndexTraits::is_empty(entry)) return &records_[entry.position_plus_one - 1];
    if (index == &current_ && empty_slot != nullptr) *empty_slot = slot;
  }
  return nullptr;
}

Swarm* SwarmStore::find(const InfoHash& info_hash, std::uint64_t hash,
                        std::uint32_t* empty_slot) noexcept {
  return const_cast<Swarm*>(std::as_const(*this).find(info_hash, hash, empty_slot));
}

// Records move only when one is erased (the last fills the hole), and an info_hash has one
// record at most: a hinted record with this info_hash is its swarm, wherever it came from.
Swarm* SwarmStore::find(const InfoHash& info_hash, const SwarmLookup& lookup,
                        std::uint32_t* empty_slot) noexcept {
  const std::uint32_t hint = lookup.position_hint;
  if (hint < records_count_ && records_[hint].info_hash == info_hash) return &records_[hint];
  return find(info_hash, lookup.hash, empty_slot);
}

std::pair<SwarmStore::Index*, std::uint32_t> SwarmStore::entry_of_record(
    std::uint32_t position) noexcept {
  TYTO_ASSERT(position < records_count_);
  const std::uint32_t tag = tag_of(hash_info_hash(records_[position].info_hash, secret_));
  const auto matches = [&](const IndexEntry& entry) {
    return entry.position_plus_one == position + 1;
  };
  for (Index* index : {&current_, &previous_}) {
    if (index->count == 0) continue;
    const std::uint32_t home = home_of(tag, index->capacity);
    if (index == &previous_ && migrated(home)) continue;  // as in find()
    const std::uint32_t slot = open_addressing::find<IndexTraits>(index->slots(), home, matches);
    if (!IndexTraits::is_empty(index->entries[slot])) return {index, slot};
  }
  TYTO_ASSERT(false && "every record has an index entry");
  return {nullptr, 0};
}

// Called on every insert: from 70 % load, the next index is mapped and faulted in a page per
// prefault_inserts_per_page inserts (see there), so the growth finds it resident.
void SwarmStore::prepare_growth() noexcept {
  if (std::uint64_t{records_count_} * 10 < std::uint64_t{current_.capacity} * 7) return;
  if (next_.entries == nullptr) {
    const std::int64_t start_ns = thread_cpu_ns();
    next_.capacity = current_.capacity / 2 * 3;
    next_.entries = map_array<IndexEntry>(next_.capacity);
    next_faulted_ = 0;
    prefault_inserts_ = 0;
    note_growth_step(start_ns);
  }
  if (next_faulted_ >= next_.capacity || ++prefault_inserts_ < prefault_inserts_per_page) return;
  prefault_inserts_ = 0;
  // A write of the empty value it already holds: the page becomes resident, nothing changes.
  *static_cast<volatile std::uint32_t*>(&next_.entries[next_faulted_].position_plus_one) = 0;
  next_faulted_ += static_cast<std::uint32_t>(page_size() / sizeof(IndexEntry));
}

void SwarmStore::start_growth() noexcept {
  TYTO_ASSERT(previous_.entries == nullptr);
  const std::int64_t start_ns = thread_cpu_ns();
  const std::uint32_t capacity = current_.capacity / 2 * 3;
  if (next_.entries == nullptr) {  // never prepared (a restore, or more than 10 % at once)
    next_.capacity = capacity;
    next_.entries = map_array<IndexEntry>(capacity);
  }
  TYTO_ASSERT(next_.capacity == capacity && next_.count == 0);
  previous_ = current_;
  current_ = next_;
  next_ = {};
  next_faulted_ = 0;
  // The first empty entry (one exists: load factor < 1).
  const std::uint32_t empty = open_addressing::find<IndexTraits>(
      previous_.slots(), 0, [](const IndexEntry&) { return false; });
  migrate_stop_ = empty;
  migrate_cursor_ = next_slot(empty, previous_.capacity);
  // Releases start at the first whole chunk after the cursor (chunks are page aligned).
  previous_released_ = std::min(
      (migrate_cursor_ + release_chunk_entries - 1) / release_chunk_entries * release_chunk_entries,
      previous_.capacity);
  note_growth_step(start_ns);
}

bool SwarmStore::migrated(std::uint32_t slot) const noexcept {
  const std::uint32_t start = next_slot(migrate_stop_, previous_.capacity);
  return migrate_cursor_ >= start ? slot >= start && slot < migrate_cursor_
                                  : slot >= start || slot < migrate_cursor_;
}

// [previous_released_, cursor) was migrated: every entry there is empty and stays so (nothing
// inserts into previous_, and erasing shifts only within runs ahead of the cursor), and
// lookups do not read it (migrated()). Its pages go back to the kernel now, a chunk at a time.
void SwarmStore::release_migrated() noexcept {
  const std::uint32_t end = migrate_cursor_ == 0 ? previous_.capacity : migrate_cursor_;
  if (end > previous_released_) {
    TYTO_ASSERT(previous_released_ % release_chunk_entries == 0);
    madvise(previous_.entries + previous_released_,
            std::size_t{end - previous_released_} * sizeof(IndexEntry), MADV_DONTNEED);
  }
  previous_released_ = migrate_cursor_;  // 0 after the wrap: released from the start on
}

// Moves entries from previous_ into current_, at least `entries_budget` entries' worth, and
// stops only on an empty entry of previous_: every probe run left in previous_ lies wholly after
// it. Only the index moves: an entry's home comes from its tag.
void SwarmStore::migrate(std::uint32_t entries_budget) noexcept {
  if (previous_.entries == nullptr) return;
  for (;;) {
    if (migrate_cursor_ == migrate_stop_) {
      TYTO_ASSERT(previous_.count == 0);
      const std::int64_t start_ns = thread_cpu_ns();
      unmap_array(previous_.entries, previous_.capacity);  // mostly released already
      previous_ = {};
      note_growth_step(start_ns);
      return;
    }
    IndexEntry& entry = previous_.entries[migrate_cursor_];
    if (IndexTraits::is_empty(entry)) {
      if (entries_budget == 0) return;
    } else {
      open_addressing::insert<IndexTraits>(current_.slots(), home_of(entry.tag, current_.capacity),
                                           entry);
      ++current_.count;
      entry = IndexEntry{};
      --previous_.count;
    }
    if (entries_budget > 0) --entries_budget;
    migrate_cursor_ = next_slot(migrate_cursor_, previous_.capacity);
    if (migrate_cursor_ % release_chunk_entries == 0) release_migrated();
  }
}

// The rare steps of a growth (mapping, an expiry step's slice, the end of a migration) are
// timed; the bounded steps every operation takes are not (a clock read per announce). In the
// thread's CPU time (page faults and unmapping included): a preemption on a busy machine is no
// growth's doing, and wall time would count it.
void SwarmStore::note_growth_step(std::int64_t start_ns) noexcept {
  const auto us =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, thread_cpu_ns() - start_ns) / 1000);
  counters_.index_growth_step_max_us = std::max(counters_.index_growth_step_max_us, us);
}

template <class Peers, class Change>
auto SwarmStore::peer_set_step(const Peers& peers, Change&& change) noexcept {
  if (!peers.class_change_due()) return change();
  const std::int64_t start_ns = thread_cpu_ns();
  auto result = change();
  note_growth_step(start_ns);
  return result;
}

Swarm* SwarmStore::insert(const InfoHash& info_hash, std::uint64_t hash,
                          std::uint32_t empty_slot) noexcept {
  TYTO_ASSERT(records_count_ < records_capacity_);
  // Grow at 80 % load. A migration finishes long before the new index reaches that load:
  // it starts at 53 % and every operation migrates at least 16 entries.
  if ((std::uint64_t{records_count_} + 1) * 5 > std::uint64_t{current_.capacity} * 4) {
    if (previous_.entries != nullptr) migrate(previous_.capacity);  // finish (never expected)
    start_growth();
    migrate(migrate_entries_per_operation);
    empty_slot = no_slot;  // current_ is another index now
  } else {
    prepare_growth();  // leaves current_ as it is
  }
  const std::uint32_t tag = tag_of(hash);
  const std::uint32_t position = records_count_++;
  const IndexEntry entry{tag, position + 1};
  if (empty_slot != no_slot) {
    // Where find() ended its probe for this key: the slot the probe below would reach.
    TYTO_ASSERT(empty_slot < current_.capacity);
    TYTO_ASSERT(IndexTraits::is_empty(current_.entries[empty_slot]));
    current_.entries[empty_slot] = entry;
  } else {
    open_addressing::insert<IndexTraits>(current_.slots(), home_of(tag, current_.capacity), entry);
  }
  ++current_.count;
  records_resident_bytes_ =
      std::max(records_resident_bytes_, page_round_up(std::size_t{records_count_} * sizeof(Swarm)));
  Swarm& swarm = records_[position];
  swarm = Swarm{};
  swarm.info_hash = info_hash;
  ++counters_.swarms;
  return &swarm;
}

Swarm* SwarmStore::create(const InfoHash& info_hash, std::uint64_t hash, std::uint32_t now_s,
                          std::uint32_t empty_slot) noexcept {
  if (swarms_count() >= limits_.swarms_max) {
    ++counters_.swarms_refused;
    return nullptr;
  }
  Swarm* swarm = insert(info_hash, hash, empty_slot);
  swarm->activity.created_s = now_s;
  swarm->activity.window = window_of(now_s);
  return swarm;
}

void SwarmStore::erase_if_done(Swarm& swarm) noexcept {
  TYTO_ASSERT(&swarm >= records_ && &swarm < records_ + records_count_);
  if (swarm.ipv4.empty() && !swarm.activity.has_ipv6 && !keeps_completed(swarm)) {
    erase(static_cast<std::uint32_t>(&swarm - records_));
  }
}

void SwarmStore::erase(std::uint32_t position) noexcept {
  const auto [index, slot] = entry_of_record(position);
  const std::uint32_t capacity = index->capacity;
  // Homes come from the tags alone: the shift reads no record.
  open_addressing::erase<IndexTraits>(index->slots(), slot, [capacity](const IndexEntry& entry) {
    return home_of(entry.tag, capacity);
  });
  --index->count;
  // Only an empty swarm goes, so no IPv6 set is lost: its side entry is empty already.
  TYTO_ASSERT(!records_[position].activity.has_ipv6);
  const std::uint32_t last = records_count_ - 1;
  if (position != last) {  // the last record fills the hole; its entry follows it
    const auto [last_index, last_slot] = entry_of_record(last);
    last_index->entries[last_slot].position_plus_one = position + 1;
    records_[position] = records_[last];
    if (records_[position].activity.has_ipv6) {  // and so does its IPv6 set
      ipv6_sets_[position] = ipv6_sets_[last];
      ipv6_sets_[last] = nullptr;
    }
  }
  --records_count_;
  --counters_.swarms;
  ++counters_.swarms_freed;
  release_record_pages();
}

// After many swarms went, the tail of the record array goes back to the kernel (its pages read
// as zero when reused). Halving hysteresis: at most one madvise per halving of the array.
void SwarmStore::release_record_pages() noexcept {
  const std::size_t used_bytes = page_round_up(std::size_t{records_count_} * sizeof(Swarm));
  if (used_bytes * 2 > records_resident_bytes_ ||
      records_resident_bytes_ - used_bytes < record_release_bytes_min) {
    return;
  }
  auto* base = reinterpret_cast<std::uint8_t*>(records_);
  madvise(base + used_bytes, records_resident_bytes_ - used_bytes, MADV_DONTNEED);
  records_resident_bytes_ = used_bytes;
  // The side array's tail with it: entries past records_count_ are all empty (erase).
  const std::size_t ipv6_used_bytes =
      page_round_up(std::size_t{records_count_} * sizeof(Ipv6Peers*));
  if (ipv6_sets_resident_bytes_ > ipv6_used_bytes) {
    madvise(reinterpret_cast<std::uint8_t*>(ipv6_sets_) + ipv6_used_bytes,
            ipv6_sets_resident_bytes_ - ipv6_used_bytes, MADV_DONTNEED);
    ipv6_sets_resident_bytes_ = ipv6_used_bytes;
  }
}

void SwarmStore::free_swarm(Swarm& swarm) noexcept {
  if (!swarm.activity.has_ipv6) return;
  Ipv6Peers*& set = ipv6_sets_[position_of(swarm)];
  set->release(arena_);
  arena_.deallocate(set, sizeof(Ipv6Peers));
  set = nullptr;
  swarm.activity.has_ipv6 = 0;
}

Ipv6Peers& SwarmStore::make_ipv6(Swarm& swarm) noexcept {
  const std::uint32_t position = position_of(swarm);
  if (swarm.activity.has_ipv6) return *ipv6_sets_[position];
  TYTO_ASSERT(ipv6_sets_[position] == nullptr);
  ipv6_sets_[position] = new (arena_.allocate(sizeof(Ipv6Peers))) Ipv6Peers();
  swarm.activity.has_ipv6 = 1;
  ipv6_sets_resident_bytes_ = std::max(
      ipv6_sets_resident_bytes_, page_round_up(std::size_t{position + 1} * sizeof(Ipv6Peers*)));
  return *ipv6_sets_[position];
}

template <class Peers>
AnnounceReply SwarmStore::apply(Swarm& swarm, Peers& peers, const AnnounceRequest& request,
                                std::uint32_t now_s, std::span<std::uint8_t> peers_out,
                                std::uint64_t& family_gauge) noexcept {
  AnnounceReply reply;
  const std::uint8_t* wire = request.peer.wire.data();
  const bool seeder = request.left_bytes == 0;
  std::uint32_t position = peers.find_live(wire, arena_, secret_);
  if (request.event == AnnounceEvent::stopped) {  // BEP 3: the peer leaves the swarm
    if (position != Peers::not_found) {
      (position < peers.seeders() ? counters_.seeders : counters_.leechers) -= 1;
      --family_gauge;
      peer_set_step(peers, [&] { return peers.remove(position, arena_, secret_), true; });
      bump(swarm.activity.leaves);
    }
    return reply;
  }
  const bool completed = request.event == AnnounceEvent::completed;
  if (position == Peers::not_found) {
    const std::uint32_t total =
        swarm.ipv4.live_count() + (swarm.activity.has_ipv6 ? ipv6_of(swarm)->live_count() : 0);
    if (total >= limits_.peers_per_swarm_max) {
      ++counters_.peers_refused;
      reply.status = AnnounceStatus::peer_limit;
      return reply;
    }
    std::uint8_t stamp = stamp_now(now_s);
    if (completed) {  // counted once per peer: the bit remembers it
      stamp |= stamp_completed_bit;
      ++swarm.completed;
      reply.completion_counted = true;
      bump(swarm.activity.unmatched_completions);  // never a leecher here
    }
    position =
        peer_set_step(peers, [&] { return peers.insert(wire, seeder, stamp, arena_, secret_); });
    bump(swarm.activity.joins);
    ++(seeder ? counters_.seeders : counters_.leechers);
    ++family_gauge;
  } else {
    std::uint8_t& stamp = peers.stamp(position);
    bool counted = stamp & stamp_completed_bit;
    if (completed && !counted) {
      counted = true;
      ++swarm.completed;
      reply.completion_counted = true;
      if (position < peers.seeders()) bump(swarm.activity.unmatched_completions);
    }
    stamp =
        static_cast<std::uint8_t>(stamp_now(now_s) | (counted ? stamp_completed_bit : 0));
    const bool was_seeder = position < peers.seeders();
    if (was_seeder != seeder) {
      position = peers.set_seeder(position, seeder, secret_);
      --(was_seeder ? counters_.seeders : counters_.leechers);
      ++(seeder ? counters_.seeders : counters_.leechers);
    }
  }
  const auto peers_max = static_cast<std::uint32_t>(peers_out.size() / Peers::wire_size);
  // Seeders get leechers only; leechers get a window over everyone. Never the requester.
  reply.peers_count = seeder ? peers.copy_window(peers.seeders(), peers.count(), Peers::not_found,
                                                 peers_max, next_random(), peers_out.data())
                             : peers.copy_window(0, peers.count(), position, peers_max,
                                                 next_random(), peers_out.data());
  return reply;
}

AnnounceReply SwarmStore::announce(const AnnounceRequest& request, std::uint32_t now_s,
                                   std::span<std::uint8_t> peers_out) noexcept {
  return announce(request, SwarmLookup{hash_info_hash(request.info_hash, secret_)}, now_s,
                  peers_out);
}

AnnounceReply SwarmStore::announce(const AnnounceRequest& request, const SwarmLookup& lookup,
                                   std::uint32_t now_s,
                                   std::span<std::uint8_t> peers_out) noexcept {
  owner_.check();
  // The carried hash is this store's keyed hash of this info_hash (start_lookup): a wrong one
  // would file the swarm under another tag.
  TYTO_DEBUG_ASSERT(lookup.hash == hash_info_hash(request.info_hash, secret_));
  ++counters_.announces;
  migrate(migrate_entries_per_operation);
  std::uint32_t empty_slot = no_slot;
  Swarm* swarm = find(request.info_hash, lookup, &empty_slot);
  if (swarm == nullptr) {
    if (request.event == AnnounceEvent::stopped) return {};  // nothing to remove, nothing to make
    swarm = create(request.info_hash, lookup.hash, now_s, empty_slot);
    if (swarm == nullptr) {
      AnnounceReply refused;
      refused.status = AnnounceStatus::swarm_limit;
      return refused;
    }
  }
  close_window(*swarm, now_s);
  expire_due(*swarm, now_s);
  bump(swarm->activity.announces);
  AnnounceReply reply;
  if (request.peer.family == AddressFamily::ipv4) {
    reply = apply(*swarm, swarm->ipv4, request, now_s, peers_out, counters_.peers_ipv4);
  } else if (swarm->activity.has_ipv6 || request.event != AnnounceEvent::stopped) {
    reply = apply(*swarm, make_ipv6(*swarm), request, now_s, peers_out, counters_.peers_ipv6);
    if (ipv6_of(*swarm)->empty()) free_swarm(*swarm);
  }
  const ScrapeEntry entry = entry_of(*swarm);
  reply.seeders = entry.seeders;
  reply.leechers = entry.leechers;
  reply.completed = entry.completed;
  // Stopped (or refused) into an empty swarm: it goes, unless it keeps a completed count. Not
  // while a set holds expired peers (counted out already): the sweep takes it once they are gone.
  if (swarm->ipv4.empty() && !swarm->activity.has_ipv6 && !keeps_completed(*swarm)) {
    erase(static_cast<std::uint32_t>(swarm - records_));
  }
  return reply;
}

ReplicaResult SwarmStore::apply_replica(const ReplicaChange& change, std::uint32_t now_s) noexcept {
  owner_.check();
  migrate(migrate_entries_per_operation);  // swarms may be inserted: keep growth's pace (insert)
  switch (change.kind) {
    case ReplicaChange::Kind::peer:
      return replica_peer(change, now_s);
    case ReplicaChange::Kind::peer_removed:
      return replica_removed(change, now_s);
    case ReplicaChange::Kind::completed:
      return replica_completed(change, now_s);
  }
  return ReplicaResult::unchanged;  // not a kind: the codec should have refused it
}

// Another node's announce, without its statistics (PeerStore::apply_replica): no announces,
// joins or unmatched completions counted. Windows still close with time, as for any swarm.
ReplicaResult SwarmStore::replica_peer(const ReplicaChange& change, std::uint32_t now_s) noexcept {
  // Announced at a second a node's clock skew may put a little ahead of ours: as now.
  const std::int64_t announced_s = std::min<std::int64_t>(change.announced_s, now_s);
  // Past the timeout as stamps count it (StampClock::expired), as the origin will drop it; so
  // long ago that no stamp can say it (128 units wrap), expired for sure.
  if (now_s - announced_s >= std::int64_t{limits_.peer_timeout_s} + 2 * stamps_.unit_s()) {
    return ReplicaResult::expired;
  }
  const std::uint8_t announced = stamps_.stamp_at(announced_s);
  if (stamps_.expired(announced, now_s, limits_.peer_timeout_s)) return ReplicaResult::expired;
  const std::uint64_t hash = hash_info_hash(change.info_hash, secret_);
  std::uint32_t empty_slot = no_slot;
  Swarm* swarm = find(change.info_hash, hash, &empty_slot);
  if (swarm == nullptr) {
    swarm = create(change.info_hash, hash, now_s, empty_slot);
    if (swarm == nullptr) return ReplicaResult::swarm_limit;
  }
  close_window(*swarm, now_s);
  expire_due(*swarm, now_s);
  ReplicaResult result = ReplicaResult::unchanged;
  if (change.peer.family == AddressFamily::ipv4) {
    result = upsert_replica(*swarm, swarm->ipv4, change, announced, now_s, counters_.peers_ipv4);
  } else {
    result =
        upsert_replica(*swarm, make_ipv6(*swarm), change, announced, now_s, counters_.peers_ipv6);
    if (ipv6_of(*swarm)->empty()) free_swarm(*swarm);
  }
  erase_if_done(*swarm);  // a swarm made for a peer that was refused
  return result;
}

template <class Peers>
ReplicaResult SwarmStore::upsert_replica(Swarm& swarm, Peers& peers, const ReplicaChange& change,
                                         std::uint8_t announced, std::uint32_t now_s,
                                         std::uint64_t& family_gauge) noexcept {
  const std::uint8_t* wire = change.peer.wire.data();
  TYTO_ASSERT((announced & stamp_completed_bit) == 0);
  std::uint32_t position = peers.find_live(wire, arena_, secret_);
  if (position == Peers::not_found) {
    const std::uint32_t total =
        swarm.ipv4.live_count() + (swarm.activity.has_ipv6 ? ipv6_of(swarm)->live_count() : 0);
    if (total >= limits_.peers_per_swarm_max) {
      ++counters_.peers_refused;
      return ReplicaResult::peer_limit;
    }
    peer_set_step(peers,
                  [&] { return peers.insert(wire, change.seeder, announced, arena_, secret_); });
    ++(change.seeder ? counters_.seeders : counters_.leechers);
    ++family_gauge;
    return ReplicaResult::applied;
  }
  std::uint8_t& stamp = peers.stamp(position);
  // Announced here more recently: the change is older news, role included. Ages are compared,
  // not stamps: stamps wrap at 128 units.
  if (stamps_.age_s(stamp, now_s) < stamps_.age_s(announced, now_s)) {
    return ReplicaResult::unchanged;
  }
  const auto refreshed = static_cast<std::uint8_t>((stamp & stamp_completed_bit) | announced);
  bool changed = refreshed != stamp;
  stamp = refreshed;
  const bool was_seeder = position < peers.seeders();
  if (was_seeder != change.seeder) {
    position = peers.set_seeder(position, change.seeder, secret_);
    --(was_seeder ? counters_.seeders : counters_.leechers);
    ++(change.seeder ? counters_.seeders : counters_.leechers);
    changed = true;
  }
  TYTO_DEBUG_ASSERT((position < peers.seeders()) == change.seeder);
  return changed ? ReplicaResult::applied : ReplicaResult::unchanged;
}

ReplicaResult SwarmStore::replica_removed(const ReplicaChange& change,
                                          std::uint32_t now_s) noexcept {
  Swarm* swarm = find(change.info_hash, hash_info_hash(change.info_hash, secret_));
  if (swarm == nullptr) return ReplicaResult::unchanged;
  // As a local stopped: the window closes first (an emptied swarm's keep time counts from it);
  // no leave is counted.
  auto remove = [&](auto& peers, std::uint64_t& family_gauge) {
    const std::uint32_t position = peers.find_live(change.peer.wire.data(), arena_, secret_);
    if (position == std::remove_reference_t<decltype(peers)>::not_found) return false;
    close_window(*swarm, now_s);
    (position < peers.seeders() ? counters_.seeders : counters_.leechers) -= 1;
    --family_gauge;
    peer_set_step(peers, [&] { return peers.remove(position, arena_, secret_), true; });
    return true;
  };
  bool removed = false;
  if (change.peer.family == AddressFamily::ipv4) {
    removed = remove(swarm->ipv4, counters_.peers_ipv4);
  } else if (swarm->activity.has_ipv6) {
    removed = remove(*ipv6_of(*swarm), counters_.peers_ipv6);
    if (ipv6_of(*swarm)->empty()) free_swarm(*swarm);
  }
  if (!removed) return ReplicaResult::unchanged;
  erase_if_done(*swarm);
  return ReplicaResult::applied;
}

ReplicaResult SwarmStore::replica_completed(const ReplicaChange& change,
                                            std::uint32_t now_s) noexcept {
  if (change.completed_count == 0) return ReplicaResult::unchanged;
  const std::uint64_t hash = hash_info_hash(change.info_hash, secret_);
  std::uint32_t empty_slot = no_slot;
  Swarm* swarm = find(change.info_hash, hash, &empty_slot);
  if (swarm == nullptr) {
    if (limits_.completed_keep_s == 0) return ReplicaResult::unchanged;  // nothing would keep it
    swarm = create(change.info_hash, hash, now_s, empty_slot);
    if (swarm == nullptr) return ReplicaResult::swarm_limit;
  }
  if (swarm->completed == UINT32_MAX) return ReplicaResult::unchanged;
  close_window(*swarm, now_s);  // activity: an empty swarm's keep time counts from now
  swarm->completed = static_cast<std::uint32_t>(std::min<std::uint64_t>(
      std::uint64_t{swarm->completed} + change.completed_count, UINT32_MAX));
  TYTO_ASSERT(swarm->completed >= change.completed_count);  // saturated, never wrapped
  return ReplicaResult::applied;
}

SwarmLookup SwarmStore::start_lookup(const InfoHash& info_hash) const noexcept {
  const std::uint64_t hash = hash_info_hash(info_hash, secret_);
  __builtin_prefetch(&current_.entries[home_of(tag_of(hash), current_.capacity)]);
  return SwarmLookup{hash};
}

void SwarmStore::prefetch(std::span<SwarmLookup> lookups) const noexcept {
  const std::size_t count = std::min(lookups.size(), prefetch_batch_max);
  // The first entry of the run with the tag, looking no further than the home's cache line or
  // so: misses here are the ones start_lookup overlapped.
  constexpr std::uint32_t entries_looked_at_max = 8;
  const Swarm* swarms[prefetch_batch_max];
  std::size_t found = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t tag = tag_of(lookups[i].hash);
    const std::uint32_t slot = open_addressing::find_near<IndexTraits>(
        current_.slots(), home_of(tag, current_.capacity), entries_looked_at_max,
        [tag](const IndexEntry& entry) { return entry.tag == tag; });
    lookups[i].position_hint = SwarmLookup::no_position;
    if (slot == current_.capacity) continue;
    // Its record, by tag only (the record is not here yet): announce() checks the info_hash.
    lookups[i].position_hint = current_.entries[slot].position_plus_one - 1;
    const Swarm* swarm = &records_[lookups[i].position_hint];
    const auto* bytes = reinterpret_cast<const char*>(swarm);
    __builtin_prefetch(bytes);  // 64 bytes from a mapped (page-aligned) array: one line
    swarms[found++] = swarm;
  }
  // The IPv4 peers of each record found (where UDP announces mostly go): by now the records
  // asked for first have arrived, so reading their peer pointers waits little. A swarm with an
  // IPv6 set: its side entry too (every reply's counts read it).
  for (std::size_t i = 0; i < found; ++i) {
    swarms[i]->ipv4.prefetch();
    if (swarms[i]->activity.has_ipv6) __builtin_prefetch(&ipv6_sets_[swarms[i] - records_]);
  }
}

ScrapeEntry SwarmStore::scrape(const InfoHash& info_hash, std::uint32_t now_s) noexcept {
  owner_.check();
  Swarm* swarm = find(info_hash, hash_info_hash(info_hash, secret_));
  if (swarm == nullptr) return {};
  expire_due(*swarm, now_s);
  const ScrapeEntry entry = entry_of(*swarm);
  // Every peer had expired: the swarm goes, as the sweep would take it (once none is held).
  if (swarm->ipv4.empty() && !swarm->activity.has_ipv6 && !keeps_completed(*swarm)) {
    erase(static_cast<std::uint32_t>(swarm - records_));
  }
  return entry;
}

// An empty swarm keeps only its completed count, for completed_keep_s after its last activity:
// its statistics window stays the one in which it emptied (nothing else closes it), and windows
// count the time (16 bits of them: years at any window length the options allow).
bool SwarmStore::keeps_completed(const Swarm& swarm) const noexcept {
  return swarm.completed != 0 && limits_.completed_keep_s != 0;
}

bool SwarmStore::empty_expired(const Swarm& swarm, std::uint32_t now_s) const noexcept {
  const auto window_s = std::max<std::uint32_t>(1, limits_.statistics_window_s);
  const std::uint32_t keep_windows =
      std::min<std::uint32_t>((limits_.completed_keep_s + window_s - 1) / window_s, 0x7fff);
  return !keeps_completed(swarm) ||
         static_cast<std::uint16_t>(window_of(now_s) - swarm.activity.window) > keep_windows;
}

// Expiry on a swarm's first touch in a stamp unit (README "Cluster", agreement): every read of a
// swarm (announce, scrape, statistics, a replicated change) first drops the peers past the
// timeout, so what a node answers follows from its peers' last announces and the time alone,
// never from where the background sweep happens to be: nodes holding the same peers answer the
// same, and drop a silent peer at the same moment. A set is swept at most once per unit; any
// other touch compares one byte.
//
// A large (staged) set's expired peers are counted out at once but removed in steps (issue 21
// §2, PeerSet::expire): a few on each touch, and `expiry_removals_per_step` per expiry step
// from the sets followed in expiring_ (up to expiring_swarms_max swarms; one more waits for
// touches and the sweep's visits, correct all the same, only held longer).
void SwarmStore::expire_due(Swarm& swarm, std::uint32_t now_s) noexcept {
  const std::uint8_t now_stamp = stamp_now(now_s);
  const bool ipv4_due = !swarm.ipv4.empty() && swarm.ipv4.expiry_due(now_stamp);
  const bool ipv6_due = swarm.activity.has_ipv6 && ipv6_of(swarm)->expiry_due(now_stamp);
  if (!ipv4_due && !ipv6_due) {
    expire_touch_step(swarm);
    return;
  }
  close_window(swarm, now_s);  // leaves count in the window they happen in
  auto expire = [&](auto& peers, std::uint64_t& family_gauge) {
    counters_.peers_expired +=
        peers.expire(now_s, limits_.peer_timeout_s, stamps_, arena_, secret_,
                     [&](std::uint32_t seeders, std::uint32_t leechers) {
                       counters_.seeders -= seeders;
                       counters_.leechers -= leechers;
                       family_gauge -= seeders + leechers;
                       const std::uint32_t leaves = swarm.activity.leaves + seeders + leechers;
                       swarm.activity.leaves =
                           static_cast<std::uint16_t>(std::min<std::uint32_t>(leaves, 0xffff));
                     });
    if (peers.expiry_pending()) follow_expiry(swarm.info_hash);
  };
  if (ipv4_due) expire(swarm.ipv4, counters_.peers_ipv4);
  if (ipv6_due) {
    expire(*ipv6_of(swarm), counters_.peers_ipv6);
    if (ipv6_of(swarm)->empty()) free_swarm(swarm);
  }
}

void SwarmStore::expire_touch_step(Swarm& swarm) noexcept {
  if (swarm.ipv4.expiry_pending()) {
    swarm.ipv4.expire_step(expiry_removals_per_touch, expiry_stamps_per_touch, arena_, secret_);
  }
  if (swarm.activity.has_ipv6 && ipv6_of(swarm)->expiry_pending()) {
    ipv6_of(swarm)->expire_step(expiry_removals_per_touch, expiry_stamps_per_touch, arena_,
                                secret_);
    if (ipv6_of(swarm)->empty()) free_swarm(swarm);
  }
}

void SwarmStore::follow_expiry(const InfoHash& info_hash) noexcept {
  const auto followed = expiring_.begin() + expiring_count_;
  if (std::find(expiring_.begin(), followed, info_hash) != followed) return;
  if (expiring_count_ < expiring_.size()) expiring_[expiring_count_++] = info_hash;
}

// The expiry step's removals from the followed sets: expiry_removals_per_step in all (the
// first followed gets them until it is done; 16 sets' looks at their stamps cost some 0.1 ms
// at most); a swarm whose sets hold no expired peer any more (or that is gone) is no longer
// followed.
void SwarmStore::expire_followed() noexcept {
  std::uint32_t removals = expiry_removals_per_step;  // stamps looked at: as many per set
  auto step = [&](auto& peers) {
    if (!peers.expiry_pending() || removals == 0) return;
    removals -= peers.expire_step(removals, expiry_stamps_per_step, arena_, secret_);
  };
  for (std::uint32_t i = 0; i < expiring_count_;) {
    Swarm* swarm = find(expiring_[i], hash_info_hash(expiring_[i], secret_));
    if (swarm != nullptr) {
      step(swarm->ipv4);
      if (swarm->activity.has_ipv6) {
        step(*ipv6_of(*swarm));
        if (ipv6_of(*swarm)->empty()) free_swarm(*swarm);
      }
    }
    if (swarm != nullptr && (swarm->ipv4.expiry_pending() ||
                             (swarm->activity.has_ipv6 && ipv6_of(*swarm)->expiry_pending()))) {
      ++i;
    } else {
      expiring_[i] = expiring_[--expiring_count_];
    }
  }
}

bool SwarmStore::sweep_swarm(Swarm& swarm, std::uint32_t now_s) noexcept {
  if (swarm.ipv4.empty() && !swarm.activity.has_ipv6) return empty_expired(swarm, now_s);
  close_window(swarm, now_s);
  expire_due(swarm, now_s);
  // Address concentration: the sweep visits every swarm's peers anyway.
  std::uint32_t share = 0;  // in 1/255 of the family's peers
  auto concentration = [&](const auto& peers, std::size_t prefix_bytes) {
    if (peers.count() < concentration_peers_min) return;
    const std::uint32_t in_prefix = majority_prefix_count(peers, prefix_bytes);
    share = std::max(share, in_prefix * 255 / peers.count());
  };
  concentration(swarm.ipv4, 3);                              // /24
  if (swarm.activity.has_ipv6) concentration(*ipv6_of(swarm), 6);  // /48
  swarm.activity.prefix_share = static_cast<std::uint8_t>(share);
  swarm.activity.flags = static_cast<std::uint8_t>((swarm.activity.flags & ~address_concentration) |
                                                   (share != 0 ? address_concentration : 0));
  return swarm.ipv4.empty() && !swarm.activity.has_ipv6 && !keeps_completed(swarm);
}

std::uint16_t SwarmStore::window_of(std::uint32_t now_s) const noexcept {
  return static_cast<std::uint16_t>(now_s /
                                    std::max<std::uint32_t>(1, limits_.statistics_window_s));
}

void SwarmStore::close_window(Swarm& swarm, std::uint32_t now_s) noexcept {
  SwarmActivity& activity = swarm.activity;
  const std::uint16_t current = window_of(now_s);
  if (activity.window == current) return;
  const auto elapsed = static_cast<std::uint16_t>(current - activity.window);
  const ScrapeEntry entry = entry_of(swarm);
  const std::uint32_t peers = entry.seeders + entry.leechers;
  const std::uint32_t average = activity.leechers_average;
  // Flags describe the window that just ended; after quiet windows there is nothing to judge.
  std::uint8_t flags = activity.flags & address_concentration;
  if (elapsed == 1) {
    if (activity.joins >= 32 && entry.leechers > 4 * std::max<std::uint32_t>(8, average)) {
      flags |= leecher_surge;
    }
    if (activity.unmatched_completions >= 8 && activity.unmatched_completions > average) {
      flags |= completions_without_leechers;
    }
    if (activity.announces >= 64 && activity.announces > 4 * (peers + activity.leaves)) {
      flags |= announce_flood;
    }
  }
  activity.flags = flags;
  activity.last_announces = elapsed == 1 ? activity.announces : 0;
  activity.last_joins = elapsed == 1 ? activity.joins : 0;
  activity.last_leaves = elapsed == 1 ? activity.leaves : 0;
  // The average moves a quarter of the way to the current leechers once per closed window.
  std::int64_t moved = average;
  for (std::uint32_t i = 0; i < std::min<std::uint32_t>(elapsed, 16); ++i) {
    moved += (static_cast<std::int64_t>(entry.leechers) - moved) / 4;
  }
  activity.leechers_average =
      static_cast<std::uint16_t>(std::clamp<std::int64_t>(moved, 0, 0xffff));
  activity.announces = activity.joins = activity.leaves = activity.unmatched_completions = 0;
  activity.window = current;
}

SwarmStatistics SwarmStore::statistics_of(const Swarm& swarm, std::uint32_t now_s) const noexcept {
  const SwarmActivity& activity = swarm.activity;
  const ScrapeEntry entry = entry_of(swarm);
  SwarmStatistics out;
  out.info_hash = swarm.info_hash;
  out.seeders = entry.seeders;
  out.leechers = entry.leechers;
  out.completed = entry.completed;
  out.age_s = now_s - activity.created_s;
  out.window_s = limits_.statistics_window_s;
  out.announces_last_window = activity.last_announces;
  out.joins_last_window = activity.last_joins;
  out.leaves_last_window = activity.last_leaves;
  out.announces_this_window = activity.announces;
  out.joins_this_window = activity.joins;
  out.leaves_this_window = activity.leaves;
  out.unmatched_completions_this_window = activity.unmatched_completions;
  out.leechers_average = activity.leechers_average;
  out.prefix_share_permille = activity.prefix_share * 1000u / 255u;
  out.flags = activity.flags;
  return out;
}

bool SwarmStore::statistics(const InfoHash& info_hash, std::uint32_t now_s,
                            SwarmStatistics& out) noexcept {
  owner_.check();
  Swarm* swarm = find(info_hash, hash_info_hash(info_hash, secret_));
  if (swarm == nullptr) return false;
  expire_due(*swarm, now_s);
  if (!swarm->ipv4.empty() || swarm->activity.has_ipv6) close_window(*swarm, now_s);  // see sweep
  out = statistics_of(*swarm, now_s);
  return true;
}

std::uint32_t SwarmStore::top(TopOrder order, std::uint32_t now_s,
                              std::span<SwarmStatistics> out) noexcept {
  owner_.check();
  if (out.empty()) return 0;
  // A min-heap of the best out.size() so far: its root is the one to beat.
  auto better = [order](const SwarmStatistics& a, const SwarmStatistics& b) {
    return top_key(a, order) > top_key(b, order);
  };
  std::size_t size = 0;
  for (Swarm& swarm : records()) {
    expire_due(swarm, now_s);  // an emptied swarm stays for the sweep: records() is walked
    if (!swarm.ipv4.empty() || swarm.activity.has_ipv6) close_window(swarm, now_s);  // see sweep
    const SwarmStatistics candidate = statistics_of(swarm, now_s);
    if (size < out.size()) {
      out[size++] = candidate;
      std::push_heap(out.begin(), out.begin() + size, better);
    } else if (better(candidate, out[0])) {
      std::pop_heap(out.begin(), out.begin() + size, better);
      out[size - 1] = candidate;
      std::push_heap(out.begin(), out.begin() + size, better);
    }
  }
  std::sort_heap(out.begin(), out.begin() + size, better);
  return static_cast<std::uint32_t>(size);
}

void SwarmStore::expire_step(std::uint32_t now_s) noexcept {
  owner_.check();
  arena_.trim();  // peer arrays freed since the last step: their empty slabs go back
  const std::uint32_t elapsed_s = last_expire_s_ == 0 ? 1 : now_s - last_expire_s_;
  last_expire_s_ = now_s;
  // Each step covers the share of the table that elapsed time asks for, so a full sweep takes
  // at most a quarter of the peer timeout. A growing table migrates at the same pace (at least).
  const std::uint64_t sweep_period_s = std::max<std::uint32_t>(1, limits_.peer_timeout_s / 4);
  auto share = [&](std::uint32_t capacity) {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(
        capacity, (std::uint64_t{capacity} * elapsed_s + sweep_period_s - 1) / sweep_period_s));
  };
  if (previous_.entries != nullptr) {
    const std::int64_t start_ns = thread_cpu_ns();
    migrate(std::min(share(previous_.capacity), migrate_entries_per_step_max) +
            migrate_entries_per_operation);
    note_growth_step(start_ns);
  }
  expire_followed();
  const std::uint32_t budget = share(records_count_);
  for (std::uint32_t visited = 0; visited < budget && records_count_ > 0;) {
    if (sweep_cursor_ >= records_count_) sweep_cursor_ = 0;
    if (sweep_swarm(records_[sweep_cursor_], now_s)) {
      // The last record moves into this position: look again. It may be one this step saw
      // already, but then the erased one no longer needs its visit: the budget still covers all.
      erase(sweep_cursor_);
    } else {
      ++sweep_cursor_;
      ++visited;
    }
  }
}

std::size_t SwarmStore::memory_bytes() const noexcept {
  return records_resident_bytes_ + ipv6_sets_resident_bytes_ +
         (std::size_t{current_.capacity} + previous_.capacity +
          std::min(next_faulted_, next_.capacity)) *
             sizeof(IndexEntry) +
         arena_.stats().slab_bytes + arena_.stats().large_bytes;
}

void SwarmStore::verify() const noexcept {
  std::uint64_t peers4 = 0;
  std::uint64_t peers6 = 0;
  std::uint64_t seeders = 0;
  for (const Swarm& swarm : records()) {
    TYTO_ASSERT(find(swarm.info_hash, hash_info_hash(swarm.info_hash, secret_)) == &swarm);
    swarm.ipv4.verify(secret_);
    peers4 += swarm.ipv4.live_count();
    seeders += swarm.ipv4.live_seeders();
    TYTO_ASSERT((ipv6_sets_[position_of(swarm)] != nullptr) == swarm.activity.has_ipv6);
    if (swarm.activity.has_ipv6) {
      TYTO_ASSERT(!ipv6_of(swarm)->empty());
      ipv6_of(swarm)->verify(secret_);
      peers6 += ipv6_of(swarm)->live_count();
      seeders += ipv6_of(swarm)->live_seeders();
    }
    // An empty swarm is kept only for its completed count.
    TYTO_ASSERT(!swarm.ipv4.empty() || swarm.activity.has_ipv6 || keeps_completed(swarm));
  }
  std::uint64_t entries = 0;
  for (const Index* index : {&current_, &previous_}) {
    std::uint32_t count = 0;
    for (std::uint32_t i = 0; i < index->capacity; ++i) {
      const IndexEntry entry = index->entries[i];
      if (IndexTraits::is_empty(entry)) continue;
      ++count;
      TYTO_ASSERT(entry.position_plus_one <= records_count_);
      const InfoHash& info_hash = records_[entry.position_plus_one - 1].info_hash;
      TYTO_ASSERT(entry.tag == tag_of(hash_info_hash(info_hash, secret_)));
    }
    TYTO_ASSERT(count == index->count);
    entries += count;
  }
  TYTO_ASSERT(entries == records_count_);  // with find() above: one entry per record
  TYTO_ASSERT(records_count_ == counters_.swarms);
  TYTO_ASSERT(peers4 == counters_.peers_ipv4 && peers6 == counters_.peers_ipv6);
  TYTO_ASSERT(seeders == counters_.seeders);
  TYTO_ASSERT(peers4 + peers6 == counters_.seeders + counters_.leechers);
}

}  // namespace tyto::swarm

namespace tyto::store {

std::unique_ptr<PeerStore> make_memory_peer_store(const StoreLimits& limits,
                                                  const HashSecret& secret,
                                                  std::uint64_t random_seed) {
  return std::make_unique<swarm::SwarmStore>(limits, secret, random_seed);
}

}  // namespace tyto::store
