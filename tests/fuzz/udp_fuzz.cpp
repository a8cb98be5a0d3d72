// libFuzzer target for the UDP tracker codec: parse as from an IPv4 and an IPv6 source; on
// success write every reply kind into one datagram and check the invariants the shard relies on.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "tyto/proto/http.hpp"
#include "tyto/proto/udp.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tyto;
  namespace udp = tyto::proto::udp;
  using udp::parse_request, udp::write_error_reply, udp::write_announce_reply_header,
      udp::write_scrape_reply, udp::write_connect_reply, udp::udp_peers_max;
  const std::span<const std::uint8_t> packet(data, size);
  const PeerEndpoint sources[2] = {
      PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{127, 0, 0, 1}, 1),
      PeerEndpoint::ipv6(std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8}, 1)};
  std::uint8_t out[limits::udp_reply_size_max];
  for (const PeerEndpoint& source : sources) {
    const auto parsed = parse_request(packet, source);
    if (!parsed.ok()) {
      check(parsed.error().message() != nullptr);
      check(!parsed.error().answerable || size >= 16);
      if (parsed.error().answerable) {
        check(write_error_reply(out, parsed.error().transaction_id, parsed.error().message()) > 8);
      }
      continue;
    }
    const udp::Request& request = parsed.value();
    if (const auto* announce = std::get_if<udp::AnnounceRequest>(&request.body)) {
      check(size >= limits::udp_announce_request_size);
      check(announce->url_data_size + limits::udp_announce_request_size <= size);
      std::vector<std::uint8_t> url(announce->url_data_size + 1u);
      check(announce->url_data(url) == announce->url_data_size);
      check(announce->url_data({url.data(), 7}) ==
            std::min<std::size_t>(7, announce->url_data_size));
      // The private tracker reads its passkey from the URL data as the shard does (route into
      // a 512-byte buffer): a passkey, when found, lies inside the data and holds no '/'.
      std::uint8_t shard_buffer[512];
      const std::size_t used = announce->url_data(shard_buffer);
      std::string_view query, passkey;
      const auto path =
          proto::http::route({reinterpret_cast<const char*>(shard_buffer), used}, query, passkey);
      if (!passkey.empty()) {
        check(path != proto::http::Path::unknown);
        check(passkey.find('/') == std::string_view::npos);
        check(passkey.data() >= reinterpret_cast<const char*>(shard_buffer) &&
              passkey.data() + passkey.size() <=
                  reinterpret_cast<const char*>(shard_buffer) + used);
      }
      check(announce->announce.peer.family == source.family);
      check(static_cast<std::uint8_t>(announce->announce.event) <= 3);
      const std::uint32_t peers = udp_peers_max(announce->announce.numwant, source.family, 50, 200);
      check(limits::udp_announce_reply_header_size + peers * source.wire_size() <= sizeof out);
      check(write_announce_reply_header(out, announce->transaction_id, 1800, 1, 2) == 20);
    } else if (const auto* scrape = std::get_if<udp::ScrapeRequest>(&request.body)) {
      check(scrape->info_hashes_count >= 1 &&
            scrape->info_hashes_count <= limits::udp_scrape_hashes_max);
      check(size == 16 + 20 * scrape->info_hashes_count);
      ScrapeEntry entries[limits::udp_scrape_hashes_max] = {};
      check(write_scrape_reply(out, scrape->transaction_id,
                               std::span(entries, scrape->info_hashes_count)) ==
            8 + 12 * scrape->info_hashes_count);
    } else {
      check(std::get<udp::ConnectRequest>(request.body).transaction_id == 0 || size >= 16);
      check(write_connect_reply(out, 1, 2) == 16);
    }
  }
  return 0;
}
