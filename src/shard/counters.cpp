#include "tyto/shard/counters.hpp"

#include <algorithm>
#include <utility>

#include "tyto/core/assert.hpp"

namespace tyto::shard {
namespace {

template <class Counters>
void add_fields(Counters& sum, const Counters& part) noexcept {
  for (const CounterField<Counters>& field : Counters::fields) {
    std::uint64_t& total = sum.*field.member;
    const std::uint64_t value = part.*field.member;
    total = field.kind == CounterKind::maximum ? std::max(total, value) : total + value;
  }
}

template <class Counters>
void append_rows(std::vector<CounterRow>& rows, const Counters& part, CounterKind kind) {
  for (const CounterField<Counters>& field : Counters::fields) {
    const bool gauge = field.kind != CounterKind::counter;  // a maximum is exported as a gauge
    if (gauge != (kind == CounterKind::gauge)) continue;
    rows.push_back({field.name, field.help, gauge, part.*field.member});
  }
}

// A member of ShardTotals missing from its parts would be neither added up nor exported.
static_assert(
    std::apply([](auto... part) { return (sizeof(std::declval<ShardTotals&>().*part) + ...); },
               ShardTotals::parts) == sizeof(ShardTotals));

}  // namespace

void ShardTotals::add(const ShardTotals& other) noexcept {
  std::apply([&](auto... part) { (add_fields(this->*part, other.*part), ...); }, parts);
}

std::vector<CounterRow> counter_rows(const ShardTotals& totals) {
  constexpr std::size_t rows_count = sizeof(ShardTotals) / sizeof(std::uint64_t);
  std::vector<CounterRow> rows;
  rows.reserve(rows_count);
  for (const CounterKind kind : {CounterKind::counter, CounterKind::gauge}) {
    std::apply([&](auto... part) { (append_rows(rows, totals.*part, kind), ...); },
               ShardTotals::parts);
  }
  TYTO_ASSERT(rows.size() == rows_count);
  return rows;
}

}  // namespace tyto::shard
