// Growth steps (issue 21 §2): the longest single operation, and the longest run of
// `turn_announces` operations (one loop turn's worth), while a table grows from empty to its
// configured maximum. Not a Google Benchmark: what matters is the worst operation, not the mean.
//   build-release/bench/swarm/growth_steps [swarms|peers|peers6|catalogue|all] [count|0] [turns]
// - swarms: one SwarmStore filled with new swarms by announces, to limits.swarms_per_shard_max
//   (8 M), one expire_step per simulated second at 1 M announces per second.
// - peers, peers6: one swarm filled with new IPv4 (IPv6) peers to limits.peers_per_swarm_max
//   (1 M): from capacity 1778 on, each class change is staged over many announces (peer_set.hpp).
// - catalogue: CatalogueCopy::put_torrent and put_user of new rows, from an empty copy to 8 M.
// Operations are timed in the thread's CPU time (a shared machine preempts the thread for whole
// scheduler ticks, which wall time would count); turns in both.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tyto/shard/catalogue_copy.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace {

using namespace tyto;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t turn_announces = 256;
// false ("turns" as the third argument): operations are not timed one by one, so a turn's
// figure holds no clock reads (two per operation otherwise: some 0.3 ms per turn).
bool time_ops = true;

std::int64_t thread_cpu_ns() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

InfoHash hash_number(std::uint64_t n) {
  InfoHash hash;
  std::uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
  for (std::size_t i = 0; i < 20; ++i) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    hash.bytes[i] = static_cast<std::uint8_t>(x >> 56);
  }
  return hash;
}

PeerEndpoint peer_number(std::uint32_t n, bool ipv6 = false) {
  const std::uint8_t address[4] = {static_cast<std::uint8_t>(1 + (n >> 24)),
                                   static_cast<std::uint8_t>(n >> 16),
                                   static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  if (!ipv6) return PeerEndpoint::ipv4(address, 6881);
  std::uint8_t address6[16] = {0x20, 0x01, 0x0d, 0xb8};
  std::memcpy(address6 + 12, address, 4);
  return PeerEndpoint::ipv6(address6, 6881);
}

// The worst operation and the worst turn, with where they happened.
struct Worst {
  explicit Worst(const char* name_in) : name(name_in) {}
  const char* name;
  std::int64_t op_ns = 0;
  std::uint64_t op_at = 0;
  std::int64_t turn_ns = 0;
  std::int64_t turn_cpu_ns = 0;
  std::uint64_t turn_at = 0;
  std::vector<std::pair<std::int64_t, std::uint64_t>> slow_ops;    // over 250 us: (ns, at)
  std::vector<std::pair<std::int64_t, std::uint64_t>> slow_turns;  // over 700 us CPU: (ns, at)
  std::vector<std::int64_t> turns_cpu_ns;

  template <class Operation>
  void run(std::uint64_t count, Operation&& operation) {
    for (std::uint64_t turn = 0; turn < count; turn += turn_announces) {
      const auto turn_start = Clock::now();
      const std::int64_t cpu_start = thread_cpu_ns();
      const std::uint64_t end = std::min<std::uint64_t>(count, turn + turn_announces);
      for (std::uint64_t i = turn; i < end; ++i) {
        if (!time_ops) {
          operation(i);
          continue;
        }
        const std::int64_t start = thread_cpu_ns();
        operation(i);
        const std::int64_t ns = thread_cpu_ns() - start;
        if (ns > op_ns) op_ns = ns, op_at = i;
        if (ns > 250'000 && slow_ops.size() < 20) slow_ops.emplace_back(ns, i);
      }
      const std::int64_t ns = (Clock::now() - turn_start).count();
      const std::int64_t cpu_ns = thread_cpu_ns() - cpu_start;
      if (ns > turn_ns) turn_ns = ns, turn_at = turn;
      turn_cpu_ns = std::max(turn_cpu_ns, cpu_ns);
      if (cpu_ns > 700'000 && slow_turns.size() < 20) slow_turns.emplace_back(cpu_ns, turn);
      turns_cpu_ns.push_back(cpu_ns);
    }
  }
  void print(double total_s, std::uint64_t count) const {
    std::printf(
        "%-10s %9llu ops in %6.2f s: worst op %8.1f us CPU (at %llu), worst turn of %u %8.1f us "
        "wall (at %llu), %8.1f us thread CPU\n",
        name, static_cast<unsigned long long>(count), total_s, op_ns / 1e3,
        static_cast<unsigned long long>(op_at), turn_announces, turn_ns / 1e3,
        static_cast<unsigned long long>(turn_at), turn_cpu_ns / 1e3);
    for (const auto& [ns, at] : slow_ops) {
      std::printf("    op over 250 us: %8.1f us at %llu\n", ns / 1e3,
                  static_cast<unsigned long long>(at));
    }
    std::vector<std::int64_t> sorted = turns_cpu_ns;
    std::sort(sorted.begin(), sorted.end());
    if (!sorted.empty()) {
      std::printf("    turns' thread CPU: median %.1f us, 99th %.1f us, 99.9th %.1f us\n",
                  sorted[sorted.size() / 2] / 1e3, sorted[sorted.size() * 99 / 100] / 1e3,
                  sorted[sorted.size() * 999 / 1000] / 1e3);
    }
    for (const auto& [ns, at] : slow_turns) {
      std::printf("    turn over 700 us CPU: %8.1f us from %llu\n", ns / 1e3,
                  static_cast<unsigned long long>(at));
    }
  }
};

void swarms(std::uint64_t count) {
  store::StoreLimits limits;
  const HashSecret secret = HashSecret::from_seed(7);
  swarm::SwarmStore store(limits, secret, 1);
  std::uint8_t peers_out[6 * 50];
  Worst worst("swarms");
  const auto start = Clock::now();
  std::uint32_t now_s = 1;
  AnnounceRequest request;
  request.peer = peer_number(1);
  request.left_bytes = 1;
  worst.run(count, [&](std::uint64_t i) {
    request.info_hash = hash_number(i);
    store.announce(request, now_s, peers_out);
    if ((i + 1) % 1'000'000 == 0) store.expire_step(++now_s);
  });
  worst.print(std::chrono::duration<double>(Clock::now() - start).count(), count);
  std::printf("    swarms %llu, store_announces %llu, memory %.1f MB\n",
              static_cast<unsigned long long>(store.counters().swarms),
              static_cast<unsigned long long>(store.counters().announces),
              store.memory_bytes() / 1e6);
}

void peers(std::uint64_t count, bool ipv6) {
  store::StoreLimits limits;
  const HashSecret secret = HashSecret::from_seed(7);
  swarm::SwarmStore store(limits, secret, 1);
  std::uint8_t peers_out[18 * 50];
  Worst worst(ipv6 ? "peers6" : "peers");
  const auto start = Clock::now();
  AnnounceRequest request;
  request.info_hash = hash_number(1);
  request.left_bytes = 1;
  worst.run(count, [&](std::uint64_t i) {
    request.peer = peer_number(static_cast<std::uint32_t>(i), ipv6);
    store.announce(request, 1, peers_out);
  });
  worst.print(std::chrono::duration<double>(Clock::now() - start).count(), count);
  std::printf("    peers %llu, refused %llu, index_growth_step_max_us %llu\n",
              static_cast<unsigned long long>(store.counters().leechers),
              static_cast<unsigned long long>(store.counters().peers_refused),
              static_cast<unsigned long long>(store.counters().index_growth_step_max_us));
}

void catalogue(std::uint64_t count) {
  const HashSecret secret = HashSecret::from_seed(7);
  {
    shard::CatalogueCopy copy(secret);
    Worst worst("torrents");
    const auto start = Clock::now();
    worst.run(count, [&](std::uint64_t i) {
      store::TorrentRow row;
      row.torrent_id = i + 1;
      row.info_hash = hash_number(i);
      copy.put_torrent(row);
    });
    worst.print(std::chrono::duration<double>(Clock::now() - start).count(), count);
    std::uint64_t found = 0;
    for (std::uint64_t i = 0; i < count; i += 997) found += copy.torrent(hash_number(i)) != nullptr;
    std::printf("    torrents %zu, sampled lookups found %llu\n", copy.torrents_count(),
                static_cast<unsigned long long>(found));
  }
  {
    shard::CatalogueCopy copy(secret);
    Worst worst("users");
    const auto start = Clock::now();
    worst.run(count, [&](std::uint64_t i) {
      store::UserRow row;
      row.user_id = i + 1;
      const std::string text = "passkey-" + std::to_string(i);
      row.passkey = *store::Passkey::parse(text);
      copy.put_user(row);
    });
    worst.print(std::chrono::duration<double>(Clock::now() - start).count(), count);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  const std::uint64_t count = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  time_ops = !(argc > 3 && std::string(argv[3]) == "turns");
  if (what == "swarms" || what == "all") swarms(count != 0 ? count : limits::swarms_per_shard_max);
  if (what == "peers" || what == "all") {
    peers(count != 0 ? count : limits::peers_per_swarm_max, false);
  }
  if (what == "peers6" || what == "all") {
    peers(count != 0 ? count : limits::peers_per_swarm_max, true);
  }
  if (what == "catalogue" || what == "all") catalogue(count != 0 ? count : 8'000'000);
  return 0;
}
