// Swarm store benchmarks (Google Benchmark). Run a release build pinned to one core, e.g.
//   taskset -c 1 build-release/bench/swarm/swarm_bench --benchmark_counters_tabular=true
//
// - Lookup / insert: the store's table (through scrape / a first announce) against
//   std::unordered_map and absl::flat_hash_map with the same keyed hash, on the same keys.
// - Announce + select with aquatic's load model: 1 M swarms, 2 M peers, swarm popularity
//   ∝ exp(-k·rank) (a long tail), numwant 30, 75 % of announces from seeders; the same in
//   batches of 32 with and without the read-ahead a shard does over a receive batch, and in
//   1 and 2 threads, each a shard with its own store (run that one unpinned or on 2 cores).
// - Bytes per peer: 10 M IPv4 peers over 1 M swarms (opentracker measured ~20 B at 12 M / ~1 M).
// - Turns (issue 21 §2): the longest turn of 256 announces of new peers into one swarm growing
//   to 1 M peers, and the longest store call (a scrape, whose first touch in a stamp unit
//   expires the set) on a swarm of 1 M peers of which a share has timed out; thread CPU time,
//   as counters (turn_max_us, call_max_us), one iteration each. And the same call on sets just
//   under staging, which expire in one call (BM_ExpireSmallSet).
#include <benchmark/benchmark.h>

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#include "tyto/swarm/swarm_store.hpp"

#if __has_include(<absl/container/flat_hash_map.h>) && defined(TYTO_BENCH_ABSL)
#include <absl/container/flat_hash_map.h>
#define TYTO_HAVE_ABSL 1
#endif

namespace {

using namespace tyto;

InfoHash random_hash(std::mt19937_64& random) {
  InfoHash hash;
  for (std::size_t i = 0; i < 20; i += 8) {
    const std::uint64_t word = random();
    for (std::size_t j = 0; j < 8 && i + j < 20; ++j)
      hash.bytes[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
  }
  return hash;
}

PeerEndpoint peer_number(std::uint32_t n) {
  const std::uint8_t address[4] = {static_cast<std::uint8_t>(1 + (n >> 24)),
                                   static_cast<std::uint8_t>(n >> 16),
                                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  return PeerEndpoint::ipv4(address, static_cast<std::uint16_t>(1024 + n % 50000));
}

struct KeyedHasher {
  const HashSecret* secret;
  std::size_t operator()(const InfoHash& hash) const noexcept {
    return hash_info_hash(hash, *secret);
  }
};

const HashSecret& bench_secret() {
  static const HashSecret secret = HashSecret::from_seed(1);
  return secret;
}

std::vector<InfoHash> keys(std::size_t count) {
  std::mt19937_64 random(7);
  std::vector<InfoHash> result(count);
  for (auto& key : result) key = random_hash(random);
  return result;
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// ---- lookups and inserts on the same keys ----

void BM_StoreLookup(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto hashes = keys(count);
  swarm::SwarmStore store(swarm::StoreLimits{}, bench_secret(), 1);
  std::uint8_t out[6];
  AnnounceRequest request;
  request.peer = peer_number(1);
  for (const auto& hash : hashes) {
    request.info_hash = hash;
    store.announce(request, 1, out);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.scrape(hashes[i], 1));
    i = i + 1 == count ? 0 : i + 1;
  }
}

template <class Map>
void BM_MapLookup(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto hashes = keys(count);
  Map map(0, KeyedHasher{&bench_secret()});
  for (const auto& hash : hashes) map.emplace(hash, ScrapeEntry{1, 0, 0});
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map.find(hashes[i])->second);
    i = i + 1 == count ? 0 : i + 1;
  }
}

void BM_StoreInsert(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto hashes = keys(count);
  std::uint8_t out[6];
  for (auto _ : state) {
    swarm::SwarmStore store(swarm::StoreLimits{}, bench_secret(), 1);
    AnnounceRequest request;
    request.peer = peer_number(1);
    for (const auto& hash : hashes) {
      request.info_hash = hash;
      benchmark::DoNotOptimize(store.announce(request, 1, out));
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}

template <class Map>
void BM_MapInsert(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto hashes = keys(count);
  for (auto _ : state) {
    Map map(0, KeyedHasher{&bench_secret()});
    for (const auto& hash : hashes) map.emplace(hash, ScrapeEntry{1, 0, 0});
    benchmark::DoNotOptimize(map.size());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}

using StdMap = std::unordered_map<InfoHash, ScrapeEntry, KeyedHasher>;
BENCHMARK(BM_StoreLookup)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_MapLookup, StdMap)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_StoreInsert)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_MapInsert, StdMap)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
#ifdef TYTO_HAVE_ABSL
using AbslMap = absl::flat_hash_map<InfoHash, ScrapeEntry, KeyedHasher>;
BENCHMARK_TEMPLATE(BM_MapLookup, AbslMap)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK_TEMPLATE(BM_MapInsert, AbslMap)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
#endif

// ---- announce + select, aquatic's load model ----

struct LoadModel {
  static constexpr std::uint32_t torrents = 1'000'000;
  static constexpr std::uint32_t peers = 2'000'000;
  std::vector<InfoHash> hashes = keys(torrents);
  std::exponential_distribution<double> rank{1.0};
  // Torrent rank ∝ exp(-k·rank): most traffic on a few torrents, a long tail to all of them.
  std::uint32_t pick_torrent(std::mt19937_64& random) {
    const double x = rank(random) * (torrents / 8.0);  // k = 8 / torrents
    return static_cast<std::uint32_t>(x) % torrents;
  }
};

// The load model's store of one shard, filled once by the thread that first asks for it (so
// its pages are that thread's first touch): every peer in one swarm, 25 % leechers. Each
// shard's store holds the whole model, as a core would under the same load per core.
constexpr int shards_max = 8;

swarm::SwarmStore& filled_store(LoadModel& model, int shard = 0) {
  static std::unique_ptr<swarm::SwarmStore> stores[shards_max];
  if (shard < 0 || shard >= shards_max) std::abort();
  std::unique_ptr<swarm::SwarmStore>& store = stores[shard];  // one thread per shard touches it
  if (!store) {
    store = std::make_unique<swarm::SwarmStore>(swarm::StoreLimits{}, bench_secret(), 1);
    std::mt19937_64 random(3);
    std::uint8_t out[30 * 6];
    AnnounceRequest request;
    request.numwant = 30;
    for (std::uint32_t p = 0; p < LoadModel::peers; ++p) {
      request.info_hash = model.hashes[model.pick_torrent(random)];
      request.peer = peer_number(p);
      request.left_bytes = random() % 4 == 0 ? 1 : 0;
      store->announce(request, 1, out);
    }
  }
  return *store;
}

AnnounceRequest model_announce(LoadModel& model, std::mt19937_64& random) {
  AnnounceRequest request;
  request.numwant = 30;
  request.info_hash = model.hashes[model.pick_torrent(random)];
  request.peer = peer_number(static_cast<std::uint32_t>(random() % LoadModel::peers));
  request.left_bytes = random() % 4 == 0 ? 1 : 0;  // 75 % seeders
  return request;
}

LoadModel& load_model() {
  static LoadModel model;
  return model;
}

void BM_AnnounceSelect(benchmark::State& state) {
  LoadModel& model = load_model();
  swarm::SwarmStore& store = filled_store(model);
  std::mt19937_64 random(3);
  std::uint8_t out[30 * 6];
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.announce(model_announce(model, random), 2, out));
  }
  state.counters["swarms"] = static_cast<double>(store.swarms_count());
  state.counters["peers"] = static_cast<double>(store.counters().peers_ipv4);
}
BENCHMARK(BM_AnnounceSelect);

// Receive batches of 32 announces served in turn, with (1) and without (0) the shard's
// read-ahead over the batch first (SwarmStore::prefetch): the ratio is what overlapping the
// index and record misses buys. The requests are drawn beforehand (256 Ki of them, cycled).
//
// Run with threads (the /threads:N rows, wall time), each thread is a shard serving its own
// store, sharing nothing: items per second at N threads over 1 is how the shards' swarm work
// scales across cores (what they contend for is the memory system: the shared cache, DRAM).
void BM_AnnounceBatch(benchmark::State& state) {
  constexpr std::size_t batch_size = 32;
  constexpr std::size_t requests_count = std::size_t{1} << 18;
  LoadModel& model = load_model();
  swarm::SwarmStore& store = filled_store(model, state.thread_index());
  std::mt19937_64 random(5 + static_cast<std::uint64_t>(state.thread_index()));
  std::vector<AnnounceRequest> requests(requests_count);
  std::vector<InfoHash> info_hashes(requests_count);
  for (std::size_t i = 0; i < requests_count; ++i) {
    requests[i] = model_announce(model, random);
    info_hashes[i] = requests[i].info_hash;
  }
  std::uint8_t out[30 * 6];
  const bool read_ahead = state.range(0) != 0;
  std::size_t first = 0;
  swarm::SwarmLookup lookups[batch_size];
  for (auto _ : state) {
    if (read_ahead) {  // as the shard does: start_lookup as each is queued, then the batch
      for (std::size_t i = 0; i < batch_size; ++i) {
        lookups[i] = store.start_lookup(info_hashes[first + i]);
      }
      store.prefetch(lookups);
      for (std::size_t i = 0; i < batch_size; ++i) {
        benchmark::DoNotOptimize(store.announce(requests[first + i], lookups[i], 2, out));
      }
    } else {
      for (std::size_t i = first; i < first + batch_size; ++i) {
        benchmark::DoNotOptimize(store.announce(requests[i], 2, out));
      }
    }
    first = first + batch_size == requests_count ? 0 : first + batch_size;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_size));
}
BENCHMARK(BM_AnnounceBatch)->Arg(0)->Arg(1);
BENCHMARK(BM_AnnounceBatch)->Arg(1)->ThreadRange(1, 2)->UseRealTime();

// ---- turns (issue 21 §2) ----

std::int64_t thread_cpu_ns() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

constexpr std::uint32_t turn_announces = 256;  // growth_steps' and the growth test's turn

AnnounceRequest one_swarm_announce() {  // a leecher's, into the one swarm of these benchmarks
  AnnounceRequest request;
  request.info_hash = keys(1)[0];
  request.left_bytes = 1;
  return request;
}

// Announces of new peers into one swarm, from empty to the default peers_per_swarm_max (1 M),
// in turns of 256: every staged class change of the set on the way.
void BM_GrowthTurns(benchmark::State& state) {
  const swarm::StoreLimits limits;
  for (auto _ : state) {
    auto store = std::make_unique<swarm::SwarmStore>(limits, bench_secret(), 1);
    AnnounceRequest request = one_swarm_announce();
    std::uint8_t out[50 * 6];
    std::vector<std::int64_t> turns_ns;
    for (std::uint32_t first = 0; first < limits.peers_per_swarm_max; first += turn_announces) {
      const std::int64_t start = thread_cpu_ns();
      for (std::uint32_t n = first; n < first + turn_announces; ++n) {
        request.peer = peer_number(n);
        benchmark::DoNotOptimize(store->announce(request, 1, out));
      }
      turns_ns.push_back(thread_cpu_ns() - start);
    }
    std::sort(turns_ns.begin(), turns_ns.end());
    state.counters["turn_max_us"] = turns_ns.back() / 1e3;
    state.counters["turn_p999_us"] = turns_ns[turns_ns.size() * 999 / 1000] / 1e3;
    state.counters["turn_median_us"] = turns_ns[turns_ns.size() / 2] / 1e3;
    state.counters["peers"] = store->counters().peers_ipv4;
  }
}
BENCHMARK(BM_GrowthTurns)->Iterations(1)->Unit(benchmark::kMillisecond);

// One swarm of 1 M peers, Arg % of them announced a timeout ago and the rest since; then
// a scrape and an expiry step once a second: the first scrape's touch is due to expire them.
// call_max_us is the longest of those calls until every timed-out peer is gone (calls: how many
// seconds that took).
void BM_ExpireLargeSet(benchmark::State& state) {
  const swarm::StoreLimits limits;
  const std::uint32_t peers = 1'000'000;
  const auto old_peers = static_cast<std::uint32_t>(std::uint64_t{peers} * state.range(0) / 100);
  for (auto _ : state) {
    auto store = std::make_unique<swarm::SwarmStore>(limits, bench_secret(), 1);
    AnnounceRequest request = one_swarm_announce();
    std::uint8_t out[50 * 6];
    const std::uint32_t fresh_s = limits.peer_timeout_s;
    for (std::uint32_t n = 0; n < peers; ++n) {
      request.peer = peer_number(n);
      request.left_bytes = n % 4 == 0 ? 0 : 1;
      store->announce(request, n < old_peers ? 1 : fresh_s, out);
    }
    std::uint32_t now_s = fresh_s + limits.peer_timeout_s / 2;  // past the old ones' timeout
    const std::uint64_t removed_before = swarm::peer_set_work().expiry_peers_removed;
    std::int64_t scrape_max_ns = 0;
    std::int64_t step_max_ns = 0;
    std::uint32_t calls = 0;
    ScrapeEntry entry;
    do {
      const std::int64_t start = thread_cpu_ns();
      entry = store->scrape(request.info_hash, now_s);
      const std::int64_t step_start = thread_cpu_ns();
      store->expire_step(now_s++);  // the background sweep's slice: timed as a call as well
      scrape_max_ns = std::max(scrape_max_ns, step_start - start);
      step_max_ns = std::max(step_max_ns, thread_cpu_ns() - step_start);
      ++calls;
      // Until the expired peers are removed (at once, or in steps: peer_set_work()).
    } while (swarm::peer_set_work().expiry_peers_removed - removed_before < old_peers &&
             calls < 100'000);
    state.counters["removed"] =
        static_cast<double>(swarm::peer_set_work().expiry_peers_removed - removed_before);
    state.counters["call_max_us"] = std::max(scrape_max_ns, step_max_ns) / 1e3;
    state.counters["scrape_max_us"] = scrape_max_ns / 1e3;
    state.counters["step_max_us"] = step_max_ns / 1e3;
    state.counters["calls"] = calls;
    state.counters["expired"] = static_cast<double>(store->counters().peers_expired);
    state.counters["left"] = entry.seeders + entry.leechers;
  }
}
BENCHMARK(BM_ExpireLargeSet)
    ->Arg(0)
    ->Arg(10)
    ->Arg(100)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Sets that expire in one call (issue 21 §2): one swarm whose set holds range(0) peers, IPv4
// (range(1) = 4), IPv6 (6) or both (46: one call expires both sets), range(2) % of them
// announced a timeout ago (12 and 13 % sit either side of PeerSet::expire_at_once_fraction, 1/8);
// then one scrape, whose touch expires the set(s). Sizes: the three
// largest capacities below staging, full (the largest is the longest call there is), and 4095
// (a staged class: counted and marked in one pass, removed in steps). Rounds of a fresh
// store each; call_max_us is the longest call over the rounds, in thread CPU time. range(3) = 1
// evicts the caches before each timed call (64 MiB written), as for a swarm cold in the cache.
void BM_ExpireSmallSet(benchmark::State& state) {
  const swarm::StoreLimits limits;
  const auto peers = static_cast<std::uint32_t>(state.range(0));
  const bool ipv4 = state.range(1) != 6;
  const bool ipv6 = state.range(1) != 4;
  const auto old_peers = static_cast<std::uint32_t>(std::uint64_t{peers} * state.range(2) / 100);
  const bool cold = state.range(3) != 0;
  const std::uint32_t rounds = cold ? 50 : 200;
  std::vector<std::uint8_t> eviction(cold ? 64u << 20 : 0);
  std::vector<std::int64_t> calls_ns;
  for (auto _ : state) {
    for (std::uint32_t round = 0; round < rounds; ++round) {
      auto store = std::make_unique<swarm::SwarmStore>(limits, bench_secret(), 1);
      AnnounceRequest request = one_swarm_announce();
      std::uint8_t out[50 * 18];
      const std::uint32_t fresh_s = limits.peer_timeout_s;
      for (std::uint32_t n = 0; n < peers; ++n) {
        request.left_bytes = n % 4 == 0 ? 0 : 1;
        const std::uint32_t now_s = n < old_peers ? 1 : fresh_s;
        if (ipv4) {
          request.peer = peer_number(n);
          store->announce(request, now_s, std::span(out, 0));
        }
        if (ipv6) {
          std::uint8_t address[16] = {0x20, 0x01, 0x0d, 0xb8};
          std::memcpy(address + 12, peer_number(n).wire.data(), 4);
          request.peer = PeerEndpoint::ipv6(address, peer_number(n).port());
          store->announce(request, now_s, std::span(out, 0));
        }
      }
      const std::uint32_t now_s = fresh_s + limits.peer_timeout_s / 2;  // past the old ones'
      for (std::size_t i = 0; i < eviction.size(); i += 64) {
        eviction[i] = static_cast<std::uint8_t>(i + round);
      }
      benchmark::ClobberMemory();
      const std::int64_t start = thread_cpu_ns();
      const ScrapeEntry entry = store->scrape(request.info_hash, now_s);
      calls_ns.push_back(thread_cpu_ns() - start);
      const std::uint32_t left = (ipv4 + ipv6) * (peers - old_peers);
      if (entry.seeders + entry.leechers != left) state.SkipWithError("peers left differ");
    }
  }
  std::sort(calls_ns.begin(), calls_ns.end());
  state.counters["call_max_us"] = calls_ns.back() / 1e3;
  state.counters["call_p99_us"] = calls_ns[calls_ns.size() * 99 / 100] / 1e3;
  state.counters["call_median_us"] = calls_ns[calls_ns.size() / 2] / 1e3;
}
BENCHMARK(BM_ExpireSmallSet)
    ->Apply([](benchmark::internal::Benchmark* benchmark) {
      std::vector<std::int64_t> sizes = {4095};
      for (std::uint8_t below = 1; below <= 3; ++below) {
        sizes.push_back(swarm::peer_capacity(swarm::staged_capacity_class_min - below));
      }
      benchmark->ArgsProduct({sizes, {4, 6, 46}, {0, 10, 12, 13, 50, 100}, {0, 1}});
    })
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// ---- memory ----

void BM_BytesPerPeer(benchmark::State& state) {
  const auto peers = static_cast<std::uint32_t>(state.range(0));
  const auto swarms = static_cast<std::uint32_t>(state.range(1));
  const auto hashes = keys(swarms);
  for (auto _ : state) {
    const std::size_t resident_before = resident_bytes();
    auto store = std::make_unique<swarm::SwarmStore>(swarm::StoreLimits{}, bench_secret(), 1);
    std::uint8_t out[6];
    AnnounceRequest request;
    for (std::uint32_t p = 0; p < peers; ++p) {
      request.info_hash = hashes[p % swarms];  // peers / swarms each
      request.peer = peer_number(p);
      request.left_bytes = p % 4 == 0 ? 1 : 0;
      store->announce(request, 1, std::span(out, 0));
    }
    state.counters["bytes_per_peer"] = static_cast<double>(store->memory_bytes()) / peers;
    state.counters["rss_bytes_per_peer"] =
        static_cast<double>(resident_bytes() - resident_before) / peers;
    state.counters["peers"] = store->counters().peers_ipv4;
    state.counters["swarms"] = static_cast<double>(store->swarms_count());
  }
}
BENCHMARK(BM_BytesPerPeer)
    ->Args({10'000'000, 1'000'000})
    ->Args({10'000'000, 100'000})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
