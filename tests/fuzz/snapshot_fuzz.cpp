// libFuzzer target for snapshots: the file framing (decode_snapshot: magic, version, sizes,
// checksum) and the swarm records inside (SwarmStore::restore_snapshot, also the cluster's
// future transfer format), both hostile input. Never a crash; restored records leave a
// consistent store, which writes records that restore to the same swarms and peers again.
// The second store is built only when the first wrote records: a store that holds nothing
// writes nothing, and restoring nothing into a fresh store checked nothing (it saves the
// second map and unmap for about a quarter of inputs). The harness's own code is not
// instrumented for coverage (not_covered.hpp; the library is).
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "not_covered.hpp"
#include "tyto/app/snapshot.hpp"
#include "tyto/swarm/swarm_store.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}

tyto::swarm::StoreLimits small_limits() {
  tyto::swarm::StoreLimits limits;
  limits.swarms_max = 1024;  // a small mapping per input
  limits.peers_per_swarm_max = 256;
  return limits;
}
}  // namespace

extern "C" TYTO_NOT_COVERED int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tyto;
  const std::vector<std::uint8_t> bytes(data, data + size);
  if (const auto file = app::decode_snapshot(bytes); file.ok()) {
    check(app::encode_snapshot(file.value()) == bytes);  // only an exact file decodes
  }
  const auto keep_all = [](const InfoHash&) { return true; };
  swarm::SwarmStore store(small_limits(), HashSecret::from_seed(1), 1);
  const auto restored = store.restore_snapshot(bytes, 1000, 0, keep_all);
  store.verify();
  check(restored.ok() || !restored.error().empty());
  std::vector<std::uint8_t> written;
  const std::uint64_t swarms = store.append_snapshot(1000, written);
  check(swarms == store.swarms_count());
  if (written.empty()) {
    check(swarms == 0);
    return 0;
  }
  swarm::SwarmStore again(small_limits(), HashSecret::from_seed(2), 2);
  const auto reread = again.restore_snapshot(written, 1000, 0, keep_all);
  check(reread.ok());
  // Ages are kept in 1/64 of the timeout, rounded up: a peer at the edge may expire on the way
  // round, never one more appear.
  check(again.swarms_count() <= store.swarms_count());
  check(again.counters().peers_ipv4 <= store.counters().peers_ipv4);
  check(again.counters().peers_ipv6 <= store.counters().peers_ipv6);
  return 0;
}
