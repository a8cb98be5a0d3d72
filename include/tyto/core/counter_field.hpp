// CounterField: one exported counter, declared in its counters struct next to the field it reads,
// so every reader (the exit summary, /metrics, /stats, the totals) walks that struct's `fields`
// table instead of naming fields. A counters struct holds only std::uint64_t fields and a
// `static constexpr CounterField<Struct> fields[]` with one row per field;
// `static_assert(counter_fields_complete<Struct>())` after the struct makes a field without a
// row, or a row repeated, a compile error.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>

namespace tyto {

enum class CounterKind : std::uint8_t {
  counter,  // only grows (Prometheus adds _total)
  gauge,    // goes up and down
  maximum,  // a gauge whose total over shards is the largest shard's, not the sum
};

template <class Counters>
struct CounterField {
  std::uint64_t Counters::*member;
  const char* name;  // exported: snake_case, without the tyto_ prefix or a _total suffix
  const char* help;  // says what is counted, without a final period (readers add one)
  CounterKind kind = CounterKind::counter;
};

// True when Counters::fields has one row per field and no two rows read the same field: marking
// each row's field once must leave every std::uint64_t of the struct at exactly 1.
template <class Counters>
consteval bool counter_fields_complete() {
  constexpr std::size_t slots_count = sizeof(Counters) / sizeof(std::uint64_t);
  if (sizeof(Counters) != slots_count * sizeof(std::uint64_t)) return false;
  if (std::size(Counters::fields) != slots_count) return false;
  Counters marked{};
  for (const CounterField<Counters>& field : Counters::fields) marked.*field.member += 1;
  for (const std::uint64_t mark : std::bit_cast<std::array<std::uint64_t, slots_count>>(marked)) {
    if (mark != 1) return false;
  }
  return true;
}

}  // namespace tyto
