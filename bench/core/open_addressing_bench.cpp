// The open-addressing core (core/open_addressing.hpp) against std::unordered_map on the same
// keys and hash, in the swarm index's shape: 8-byte entries {tag, position + 1} over a dense key
// array, at most 80 % full. Lookups that hit, and churn (erase one key, insert another: the
// backward shift and the repointing of the moved key's entry). Also the core's user with no
// benchmark of its own: AccessList::allows on a list of 1,000 and 1 Mi info_hashes, half the
// queries unlisted. Pin to one core, e.g.
//   taskset -c 1 build-release/bench/core/open_addressing_bench
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "tyto/core/open_addressing.hpp"
#include "tyto/shard/access_list.hpp"

namespace {

using namespace tyto;

std::uint64_t mix(std::uint64_t key) noexcept {  // stands in for the keyed hash
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return key;
}

struct MixHash {
  std::size_t operator()(std::uint64_t key) const noexcept { return mix(key); }
};

class CoreMap {
 public:
  explicit CoreMap(std::uint32_t count_max) : entries_(count_max + count_max / 4 + 1) {
    keys_.reserve(count_max);
  }

  static constexpr std::uint32_t not_found = 0xffffffffu;

  std::uint32_t find(std::uint64_t key) const noexcept {  // a position, or not_found
    const IndexEntry entry = entries_[slot_of(key, tag_of(key))];
    return Traits::is_empty(entry) ? not_found : entry.position_plus_one - 1;
  }
  void insert(std::uint64_t key) noexcept {
    const auto position = static_cast<std::uint32_t>(keys_.size());
    keys_.push_back(key);
    const std::uint32_t tag = tag_of(key);
    open_addressing::insert<Traits>(entries_, open_addressing::home_of(tag, capacity()),
                                    IndexEntry{tag, position + 1});
  }
  void erase(std::uint64_t key) noexcept {  // must be present; the last key fills its place
    const std::uint32_t slot = slot_of(key, tag_of(key));
    const std::uint32_t position = entries_[slot].position_plus_one - 1;
    const std::uint32_t capacity = this->capacity();
    open_addressing::erase<Traits>(entries_, slot, [capacity](const IndexEntry& entry) {
      return open_addressing::home_of(entry.tag, capacity);
    });
    const std::uint64_t last = keys_.back();
    keys_.pop_back();
    if (position == keys_.size()) return;
    keys_[position] = last;
    entries_[slot_of(last, tag_of(last))].position_plus_one = position + 1;
  }

 private:
  struct IndexEntry {
    std::uint32_t tag = 0;
    std::uint32_t position_plus_one = 0;
  };
  struct Traits {
    using Entry = IndexEntry;
    static bool is_empty(const IndexEntry& entry) noexcept { return entry.position_plus_one == 0; }
    static IndexEntry empty() noexcept { return {}; }
  };

  static std::uint32_t tag_of(std::uint64_t key) noexcept {
    return open_addressing::tag_of(mix(key));
  }
  std::uint32_t capacity() const noexcept { return static_cast<std::uint32_t>(entries_.size()); }
  std::uint32_t slot_of(std::uint64_t key, std::uint32_t tag) const noexcept {
    return open_addressing::find<Traits>(
        entries_, open_addressing::home_of(tag, capacity()), [&](const IndexEntry& entry) {
          return entry.tag == tag && keys_[entry.position_plus_one - 1] == key;
        });
  }

  std::vector<IndexEntry> entries_;
  std::vector<std::uint64_t> keys_;
};

using StdMap = std::unordered_map<std::uint64_t, std::uint32_t, MixHash>;

std::vector<std::uint64_t> random_keys(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<std::uint64_t> keys(count);
  for (auto& key : keys) key = random();
  return keys;
}

void BM_CoreLookup(benchmark::State& state) {
  const auto count = static_cast<std::uint32_t>(state.range(0));
  const auto keys = random_keys(count, 1);
  CoreMap map(count);
  for (std::uint64_t key : keys) map.insert(key);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map.find(keys[i]));
    i = i + 1 == count ? 0 : i + 1;
  }
}

void BM_StdMapLookup(benchmark::State& state) {
  const auto count = static_cast<std::uint32_t>(state.range(0));
  const auto keys = random_keys(count, 1);
  StdMap map;
  for (std::uint32_t i = 0; i < count; ++i) map.emplace(keys[i], i);
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(map.find(keys[i])->second);
    i = i + 1 == count ? 0 : i + 1;
  }
}

// Steady size: each iteration erases the oldest key and inserts a fresh one (a ring of keys).
void BM_CoreChurn(benchmark::State& state) {
  const auto count = static_cast<std::uint32_t>(state.range(0));
  const auto keys = random_keys(2 * std::size_t{count}, 2);
  CoreMap map(count);
  for (std::uint32_t i = 0; i < count; ++i) map.insert(keys[i]);
  std::size_t oldest = 0;
  for (auto _ : state) {
    map.erase(keys[oldest]);
    map.insert(keys[(oldest + count) % keys.size()]);
    oldest = oldest + 1 == keys.size() ? 0 : oldest + 1;
  }
}

void BM_StdMapChurn(benchmark::State& state) {
  const auto count = static_cast<std::uint32_t>(state.range(0));
  const auto keys = random_keys(2 * std::size_t{count}, 2);
  StdMap map;
  for (std::uint32_t i = 0; i < count; ++i) map.emplace(keys[i], i);
  std::size_t oldest = 0;
  for (auto _ : state) {
    map.erase(keys[oldest]);
    map.emplace(keys[(oldest + count) % keys.size()], 0);
    oldest = oldest + 1 == keys.size() ? 0 : oldest + 1;
  }
}

std::string hex_of(const InfoHash& info_hash) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  for (const std::uint8_t byte : info_hash.bytes) {
    text += digits[byte >> 4];
    text += digits[byte & 15];
  }
  return text;
}

void BM_AccessListAllows(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  std::mt19937_64 random(3);
  std::vector<InfoHash> hashes(2 * count);  // the first half listed
  for (InfoHash& hash : hashes) {
    for (std::uint8_t& byte : hash.bytes) byte = static_cast<std::uint8_t>(random());
  }
  std::string text;
  for (std::size_t i = 0; i < count; ++i) text += hex_of(hashes[i]) + "\n";
  const auto list = shard::AccessList::parse(text, shard::AccessList::Mode::whitelist, "bench");
  std::vector<InfoHash> queries(std::size_t{1} << 16);
  for (InfoHash& query : queries) query = hashes[random() % hashes.size()];
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(list.value()->allows(queries[i]));
    i = (i + 1) & (queries.size() - 1);
  }
}

BENCHMARK(BM_CoreLookup)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_StdMapLookup)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_CoreChurn)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_StdMapChurn)->Arg(1 << 10)->Arg(1 << 20);
BENCHMARK(BM_AccessListAllows)->Arg(1000)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
