// The open-addressing core against a std::unordered_map reference: random inserts, erases and
// lookups on small tables whose homes are uniform, clustered at the table's end (runs wrap to
// slot 0) or bunched on a few slots (runs merge), with the probing invariant checked after each.
#include "tyto/core/open_addressing.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

namespace tyto {
namespace {

struct Entry {
  std::uint32_t key = 0;
  std::uint32_t value_plus_one = 0;  // 0 = empty
};
struct Traits {
  using Entry = tyto::Entry;
  static bool is_empty(const Entry& entry) noexcept { return entry.value_plus_one == 0; }
  static Entry empty() noexcept { return {}; }
};

// A set of keys over the core, as its callers use it: homes from a function of the key, the
// count kept here.
class Table {
 public:
  Table(std::uint32_t capacity, std::function<std::uint32_t(std::uint32_t)> home)
      : entries_(capacity), home_(std::move(home)) {}

  std::uint32_t slot_of(std::uint32_t key) const {
    return open_addressing::find<Traits>(entries_, home_(key),
                                         [key](const Entry& entry) { return entry.key == key; });
  }
  std::optional<std::uint32_t> find(std::uint32_t key) const {
    const Entry& entry = entries_[slot_of(key)];
    if (Traits::is_empty(entry)) return std::nullopt;
    return entry.value_plus_one - 1;
  }
  void insert(std::uint32_t key, std::uint32_t value) {
    open_addressing::insert<Traits>(entries_, home_(key), Entry{key, value + 1});
    ++count_;
  }
  void erase(std::uint32_t key) {
    open_addressing::erase<Traits>(entries_, slot_of(key),
                                   [this](const Entry& entry) { return home_(entry.key); });
    --count_;
  }
  std::uint32_t count() const { return count_; }
  std::uint32_t capacity() const { return static_cast<std::uint32_t>(entries_.size()); }

  // Every entry is reachable: no empty slot between its home and it. Returns the entries seen.
  std::uint32_t check_runs() const {
    std::uint32_t seen = 0;
    for (std::uint32_t slot = 0; slot < capacity(); ++slot) {
      if (Traits::is_empty(entries_[slot])) continue;
      ++seen;
      for (std::uint32_t at = home_(entries_[slot].key); at != slot;
           at = open_addressing::next_slot(at, capacity())) {
        EXPECT_FALSE(Traits::is_empty(entries_[at]))
            << "key " << entries_[slot].key << " at " << slot << " cut off at " << at;
      }
    }
    return seen;
  }

 private:
  std::vector<Entry> entries_;
  std::function<std::uint32_t(std::uint32_t)> home_;
  std::uint32_t count_ = 0;
};

std::uint32_t mix(std::uint32_t key) {
  std::uint64_t x = key * 0x9E3779B97F4A7C15ull;
  return static_cast<std::uint32_t>((x ^ (x >> 29)) >> 32);
}

// Random operations on keys [0, 2 × capacity): about half the lookups miss. The table is kept
// at most `load_percent` full (the core needs one empty slot).
void run_against_reference(Table& table, std::uint64_t seed, std::uint32_t operations,
                           std::uint32_t load_percent) {
  std::mt19937_64 random(seed);
  std::unordered_map<std::uint32_t, std::uint32_t> reference;
  const std::uint32_t count_max = table.capacity() * load_percent / 100;
  for (std::uint32_t step = 0; step < operations; ++step) {
    const auto key = static_cast<std::uint32_t>(random() % (2 * table.capacity()));
    const auto value = static_cast<std::uint32_t>(random() % 1000);
    const auto it = reference.find(key);
    const std::optional<std::uint32_t> found = table.find(key);
    ASSERT_EQ(found.has_value(), it != reference.end()) << "seed " << seed << " step " << step;
    if (found) {
      ASSERT_EQ(*found, it->second) << "seed " << seed << " step " << step;
    }
    if (it != reference.end() && random() % 2 == 0) {
      table.erase(key);
      reference.erase(it);
    } else if (it == reference.end() && reference.size() < count_max) {
      table.insert(key, value);
      reference.emplace(key, value);
    }
    if (step % 16 == 0 || table.count() < 8) {
      ASSERT_EQ(table.check_runs(), reference.size()) << "seed " << seed << " step " << step;
      for (const auto& [k, v] : reference) {
        ASSERT_EQ(table.find(k), std::optional<std::uint32_t>(v))
            << "seed " << seed << " key " << k;
      }
    }
  }
  ASSERT_EQ(table.count(), reference.size());
}

TEST(OpenAddressing, UniformHomesMatchTheReference) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    for (std::uint32_t capacity : {61u, 64u}) {  // homes by multiply-shift: any capacity
      Table table(capacity, [capacity](std::uint32_t key) {
        return open_addressing::home_of(mix(key), capacity);
      });
      run_against_reference(table, seed, 20'000, 90);
    }
  }
}

TEST(OpenAddressing, HomesAtTheTableEndWrapAround) {
  // Every home is one of the last four slots: every run crosses from the end to slot 0.
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    Table table(37, [](std::uint32_t key) { return 36 - mix(key) % 4; });
    run_against_reference(table, seed, 20'000, 95);
  }
}

TEST(OpenAddressing, BunchedHomesMerge) {
  // Three homes: runs grow into each other, and erases must not shift past a later home.
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    Table table(48, [](std::uint32_t key) { return mix(key) % 3 * 16 + 10; });
    run_against_reference(table, seed, 20'000, 90);
  }
}

TEST(OpenAddressing, EraseShiftsBackAcrossTheEnd) {
  // Capacity 8, three keys homed at slot 7: they sit at 7, 0, 1; key 9 homed at 0 sits at 2.
  Table table(8, [](std::uint32_t key) { return key < 3 ? 7u : 0u; });
  for (std::uint32_t key : {0u, 1u, 2u, 9u}) table.insert(key, key);
  EXPECT_EQ(table.slot_of(0), 7u);
  EXPECT_EQ(table.slot_of(2), 1u);
  EXPECT_EQ(table.slot_of(9), 2u);
  table.erase(0);  // 1 moves to 7, 2 to 0, 9 to 1 (its home 0 is full)
  EXPECT_EQ(table.find(0), std::nullopt);
  EXPECT_EQ(table.find(1), 1u);
  EXPECT_EQ(table.find(2), 2u);
  EXPECT_EQ(table.find(9), 9u);
  EXPECT_EQ(table.slot_of(1), 7u);
  EXPECT_EQ(table.slot_of(2), 0u);
  EXPECT_EQ(table.slot_of(9), 1u);
  EXPECT_EQ(table.check_runs(), 3u);
  table.erase(2);  // 9 moves to 0, its home
  EXPECT_EQ(table.find(9), 9u);
  EXPECT_EQ(table.slot_of(9), 0u);
  EXPECT_EQ(table.find(3), std::nullopt);
}

TEST(OpenAddressing, EraseLeavesEntriesHomedAfterTheHole) {
  // Keys homed at 1, 2, 2 sit at 1, 2, 3. Erasing the key at 1 must not pull the entries homed
  // at 2 into slot 1 (before their home).
  Table table(8, [](std::uint32_t key) { return key == 0 ? 1u : 2u; });
  for (std::uint32_t key : {0u, 1u, 2u}) table.insert(key, key);
  table.erase(0);
  EXPECT_EQ(table.find(1), 1u);
  EXPECT_EQ(table.find(2), 2u);
  EXPECT_EQ(table.slot_of(1), 2u);
  EXPECT_EQ(table.slot_of(2), 3u);
  EXPECT_EQ(table.check_runs(), 2u);
}

TEST(OpenAddressing, FindNearLooksNoFurtherThanItsBound) {
  std::vector<Entry> entries(16);
  for (std::uint32_t key = 0; key < 5; ++key) {  // slots 14, 15, 0, 1, 2
    open_addressing::insert<Traits>(entries, 14, Entry{key, key + 1});
  }
  const auto key_is = [](std::uint32_t key) {
    return [key](const Entry& entry) { return entry.key == key; };
  };
  EXPECT_EQ(open_addressing::find_near<Traits>(entries, 14, 4, key_is(3)), 1u);
  EXPECT_EQ(open_addressing::find_near<Traits>(entries, 14, 3, key_is(3)), 16u);  // beyond
  EXPECT_EQ(open_addressing::find_near<Traits>(entries, 14, 8, key_is(7)), 16u);  // absent
}

TEST(OpenAddressing, MatchesSeesEachEntryInPlace) {
  // Callers with keys in a parallel array (the access list) find the slot from the address.
  std::vector<Entry> entries(8);
  for (std::uint32_t key = 0; key < 4; ++key) {
    open_addressing::insert<Traits>(entries, 6, Entry{key, key + 1});  // slots 6, 7, 0, 1
  }
  std::vector<std::uint32_t> slots_seen;
  const std::uint32_t slot = open_addressing::find<Traits>(entries, 6, [&](const Entry& entry) {
    slots_seen.push_back(static_cast<std::uint32_t>(&entry - entries.data()));
    return entry.key == 2;
  });
  EXPECT_EQ(slot, 0u);
  EXPECT_EQ(slots_seen, (std::vector<std::uint32_t>{6, 7, 0}));
}

TEST(OpenAddressing, HomeAndDistanceStayInRange) {
  for (std::uint32_t capacity : {1u, 7u, 1024u, 0xffffffffu}) {
    EXPECT_EQ(open_addressing::home_of(0, capacity), 0u);
    EXPECT_EQ(open_addressing::home_of(0xffffffffu, capacity), capacity - 1);
  }
  EXPECT_EQ(open_addressing::distance(6, 1, 8), 3u);
  EXPECT_EQ(open_addressing::distance(1, 6, 8), 5u);
  EXPECT_EQ(open_addressing::distance(3, 3, 8), 0u);
  EXPECT_EQ(open_addressing::next_slot(7, 8), 0u);
}

TEST(OpenAddressing, SentinelTraitsReserveOneValue) {
  using Narrow = open_addressing::SentinelTraits<std::uint16_t, 0xffff>;
  std::vector<std::uint16_t> entries(4, Narrow::empty());
  EXPECT_EQ(open_addressing::insert<Narrow>(entries, 3, 5), 3u);
  EXPECT_EQ(open_addressing::insert<Narrow>(entries, 3, 6), 0u);  // wraps
  open_addressing::erase<Narrow>(entries, 3, [](std::uint16_t) { return 3u; });
  EXPECT_EQ(entries[3], 6);
  EXPECT_TRUE(Narrow::is_empty(entries[0]));
}

}  // namespace
}  // namespace tyto
