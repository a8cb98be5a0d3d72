// Wire codecs on the announce path: parsing a BEP 15 announce (98 bytes, and with a BEP 41 URL
// data option) and an HTTP announce query. Pin it: taskset -c 1 build-release/bench/proto/...
#include <benchmark/benchmark.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "tyto/core/bytes.hpp"
#include "tyto/proto/http.hpp"
#include "tyto/proto/udp.hpp"

namespace {

using namespace tyto;

std::vector<std::uint8_t> udp_announce(bool with_url_data) {
  std::vector<std::uint8_t> packet(limits::udp_announce_request_size);
  ByteWriter writer(packet);
  writer.u64(0x1234567890abcdefull);                                     // connection id
  writer.u32(1);                                                         // announce
  writer.u32(77);                                                        // transaction id
  for (int i = 0; i < 40; ++i) writer.u8(static_cast<std::uint8_t>(i));  // info_hash, peer_id
  writer.u64(0);
  writer.u64(1000);
  writer.u64(0);
  writer.u32(2);  // started
  writer.u32(0);
  writer.u32(0xcafe);
  writer.u32(30);  // numwant
  writer.u16(6881);
  if (with_url_data) {
    const std::string_view url = "/announce?passkey=0123456789abcdef";
    packet.push_back(2);
    packet.push_back(static_cast<std::uint8_t>(url.size()));
    packet.insert(packet.end(), url.begin(), url.end());
  }
  return packet;
}

void BM_UdpParseAnnounce(benchmark::State& state) {
  const auto packet = udp_announce(state.range(0) != 0);
  const PeerEndpoint source = PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{10, 1, 2, 3}, 9);
  for (auto _ : state) {
    auto parsed = proto::udp::parse_request(packet, source);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UdpParseAnnounce)->Arg(0)->Arg(1);

void BM_HttpParseAnnounceQuery(benchmark::State& state) {
  const std::string_view query =
      "info_hash=%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14"
      "&peer_id=-qB4650-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=1000"
      "&corrupt=0&key=1A2B3C4D&event=started&numwant=30&compact=1&no_peer_id=1";
  for (auto _ : state) {
    auto parsed = proto::http::parse_announce_query(query);
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HttpParseAnnounceQuery);

}  // namespace

BENCHMARK_MAIN();
