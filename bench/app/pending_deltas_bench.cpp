// PendingDeltas (app/pending_deltas.hpp), the storage thread's per-key sums, against the
// std::map it replaced, on one batch's work: `range` deltas added (one key in 8 repeated, as a
// peer announcing twice within a batch), then taken in key order. Items: deltas. Pin it, e.g.
//   taskset -c 1 build-release/bench/app/pending_deltas_bench
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "tyto/app/pending_deltas.hpp"

namespace {

using namespace tyto;

std::vector<store::AccountingDelta> make_deltas(std::size_t count) {
  std::mt19937_64 random(11);
  std::vector<store::AccountingDelta> deltas(count);
  for (std::size_t i = 0; i < count; ++i) {
    store::AccountingDelta& delta = deltas[i];
    if (i % 8 == 7) {
      delta = deltas[random() % i];  // a repeat of an earlier key
    } else {
      delta.key.user_id = 1 + random() % 100000;
      delta.key.torrent_id = 1 + random() % 1000000;
      for (auto& byte : delta.key.peer_id.bytes) byte = static_cast<std::uint8_t>(random());
    }
    delta.uploaded = i;
    delta.baseline_uploaded = 1000 + i;
  }
  return deltas;
}

struct KeyLess {
  bool operator()(const store::PeerKey& a, const store::PeerKey& b) const noexcept {
    if (a.user_id != b.user_id) return a.user_id < b.user_id;
    if (a.torrent_id != b.torrent_id) return a.torrent_id < b.torrent_id;
    return std::memcmp(a.peer_id.bytes.data(), b.peer_id.bytes.data(), 20) < 0;
  }
};

void BM_PendingDeltas(benchmark::State& state) {
  const auto deltas = make_deltas(static_cast<std::size_t>(state.range(0)));
  app::PendingDeltas pending(HashSecret::from_seed(1));
  std::vector<store::AccountingDelta> batch;
  for (auto _ : state) {
    for (const auto& delta : deltas) pending.add(delta);
    batch.clear();
    pending.take_sorted(batch);
    benchmark::DoNotOptimize(batch.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * deltas.size()));
}
BENCHMARK(BM_PendingDeltas)->Arg(20000)->Arg(100000);

void BM_StdMap(benchmark::State& state) {
  const auto deltas = make_deltas(static_cast<std::size_t>(state.range(0)));
  std::map<store::PeerKey, store::AccountingDelta, KeyLess> pending;
  std::vector<store::AccountingDelta> batch;
  for (auto _ : state) {
    for (const auto& delta : deltas) {
      const auto [at, inserted] = pending.try_emplace(delta.key, delta);
      if (!inserted) app::merge_delta(at->second, delta);
    }
    batch.clear();
    for (const auto& [key, delta] : pending) batch.push_back(delta);
    pending.clear();
    benchmark::DoNotOptimize(batch.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * deltas.size()));
}
BENCHMARK(BM_StdMap)->Arg(20000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
