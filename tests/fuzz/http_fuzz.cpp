// libFuzzer target for the HTTP tracker codec: head, route, announce and scrape queries, and the
// responses built from what parsed, with the invariants the shard relies on.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "tyto/proto/http.hpp"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace http = tyto::proto::http;
  http::RequestHead head;
  const auto status = http::parse_head({data, size}, head);
  if (status != http::HeadStatus::complete) return 0;
  check(head.head_size <= size && head.head_size <= tyto::limits::http_request_head_size_max);
  check(head.target.data() >= reinterpret_cast<const char*>(data) &&
        head.target.data() + head.target.size() <= reinterpret_cast<const char*>(data) + size);
  std::string_view query, passkey;
  static std::vector<std::uint8_t> out(http::announce_response_size_max);
  switch (http::route(head.target, query, passkey)) {
    case http::Path::announce: {
      const auto parsed = http::parse_announce_query(query);
      if (!parsed.ok()) {
        check(http::write_failure(out, parsed.error(), head.keep_alive) > 0);
        break;
      }
      check(parsed.value().port != 0);
      std::uint8_t peers[6 * 200] = {};
      const auto client = tyto::PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{1, 2, 3, 4}, 1);
      check(http::write_announce_response(out, tyto::AnnounceReply{}, 1800, 900,
                                          tyto::AddressFamily::ipv4, peers, parsed.value().compact,
                                          client, head.keep_alive) > 0);
      break;
    }
    case http::Path::scrape: {
      tyto::InfoHash hashes[tyto::limits::http_scrape_hashes_max];
      const auto parsed = http::parse_scrape_query(query, hashes);
      if (!parsed.ok()) break;
      check(parsed.value() >= 1 && parsed.value() <= tyto::limits::http_scrape_hashes_max);
      tyto::ScrapeEntry entries[tyto::limits::http_scrape_hashes_max] = {};
      std::vector<std::uint8_t> scrape(http::scrape_response_size_max);
      check(http::write_scrape_response(scrape, std::span(hashes, parsed.value()),
                                        std::span(entries, parsed.value()), true) > 0);
      break;
    }
    case http::Path::unknown:
      check(http::write_status(out, 404, "not found", head.keep_alive) > 0);
      break;
  }
  return 0;
}
