// HTTP tracker codec (BEP 3, 23, 7, 48, 24). Pure: request heads and queries in, typed results or
// a failure reason out; responses written into caller buffers. No I/O, no allocation; views
// point into the caller's bytes (picohttpparser's style).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "tyto/core/limits.hpp"
#include "tyto/core/request.hpp"
#include "tyto/core/result.hpp"
#include "tyto/core/types.hpp"

namespace tyto::proto::http {

enum class HeadStatus : std::uint8_t {
  complete,
  incomplete,  // no blank line yet, and under the size cap: wait for more bytes
  invalid,     // 400 and close
  too_large,   // more than http_request_head_size_max without the end of the head: 431 and close
};

struct RequestHead {
  std::string_view method;
  std::string_view target;  // path and query
  int minor_version = 1;
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool has_body = false;   // Content-Length > 0 or Transfer-Encoding: a tracker takes GETs only
  std::string_view x_forwarded_for;
  std::string_view x_real_ip;
  std::size_t head_size = 0;  // bytes up to and including the blank line
};

HeadStatus parse_head(std::span<const std::uint8_t> bytes, RequestHead& head) noexcept;

// A request target split at its first '?'; the query is empty when there is none.
struct Target {
  std::string_view path;
  std::string_view query;
};
Target split_target(std::string_view target) noexcept;

enum class Path : std::uint8_t { announce, scrape, unknown };
// Splits the target into its path and query (split_target) and names the path: `/announce`,
// `/scrape`, or the private tracker's `/<passkey>/announce` and `/<passkey>/scrape`, where
// `passkey` is set to the segment as sent (still percent-encoded; empty for the bare paths).
// Also reads BEP 41 URL data (`/<passkey>/announce?...`), which has the same shape.
Path route(std::string_view target, std::string_view& query, std::string_view& passkey) noexcept;

// One key=value pair of a query, still percent-encoded; the value is empty without a '='.
struct QueryParameter {
  std::string_view key;
  std::string_view value;
};
// Takes the next non-empty '&'-separated pair off the front of `query`; false when none is left.
// Inline: it runs once per announce parameter, and the call alone cost ~10% of the parse.
inline bool next_parameter(std::string_view& query, QueryParameter& parameter) noexcept {
  while (!query.empty()) {  // each turn takes at least one byte off the query
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2" or a trailing '&'
    const auto equals = pair.find('=');
    parameter.key = pair.substr(0, equals);
    parameter.value =
        equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1);
    return true;
  }
  return false;
}

// The raw value of the first `key` in `query`; false (value untouched) when it is absent.
bool query_value(std::string_view query, std::string_view key, std::string_view& value) noexcept;

struct AnnounceQuery {
  AnnounceRequest announce;  // peer: family/address set by the caller, port from the query
  std::uint16_t port = 0;
  bool compact = true;  // as sent (BEP 23: default on)
  bool no_peer_id = false;
  std::string_view ip;  // BEP 3 `ip`: honoured by the caller only from trusted proxies

  // The reply's model. BEP 3's dictionaries carry `peer id`, which tyto does not keep (20 bytes
  // per peer); BEP 23 lets a tracker answer compact when asked compact=0. So dictionaries only
  // for compact=0 with no_peer_id=1 (BEP 3's "no peer ids" form); compact otherwise.
  bool answer_compact() const noexcept { return compact || !no_peer_id; }
};

// The failure reason is a static string, sent as the bencoded `failure reason`.
Result<AnnounceQuery, const char*> parse_announce_query(std::string_view query) noexcept;
// Up to out.size() (<= http_scrape_hashes_max) info_hashes. No info_hash at all is refused:
// full scrape is off (DESIGN §6).
Result<std::uint32_t, const char*> parse_scrape_query(std::string_view query,
                                                      std::span<InfoHash> out) noexcept;

// Percent-decoding of one query value ('+' is a space) into `out`, for values the caller decodes
// itself (`ip`). False when malformed or longer than out.
bool percent_decode(std::string_view in, std::span<std::uint8_t> out, std::size_t& size) noexcept;

// Response sizes: the largest 200 peers in either family, plus framing.
inline constexpr std::size_t response_header_size_max = 128;
inline constexpr std::size_t announce_response_size_max =
    response_header_size_max + 160 + limits::numwant_max * 60;  // dictionary model is the largest
inline constexpr std::size_t scrape_response_size_max =
    response_header_size_max + 16 + limits::http_scrape_hashes_max * (3 + 20 + 64);

// Full HTTP responses (status line, headers, body). Return bytes written, 0 if `out` is too small.
// `peers` holds wire-format entries of `family` (6 or 18 bytes each), as the store writes them:
// compact → `peers` (IPv4) or `peers6` (IPv6, BEP 7); otherwise a list of {ip, port} dictionaries.
// `external_ip` (BEP 24) is the address the tracker saw.
std::size_t write_announce_response(std::span<std::uint8_t> out, const AnnounceReply& reply,
                                    std::uint32_t interval_s, std::uint32_t interval_min_s,
                                    AddressFamily family, std::span<const std::uint8_t> peers,
                                    bool compact, const PeerEndpoint& external_ip,
                                    bool keep_alive) noexcept;
// BEP 48: `files` keyed by the raw 20-byte hashes in sorted order, duplicates once.
std::size_t write_scrape_response(std::span<std::uint8_t> out, std::span<const InfoHash> hashes,
                                  std::span<const ScrapeEntry> entries, bool keep_alive) noexcept;
// 200 with a bencoded `failure reason` (what clients display).
std::size_t write_failure(std::span<std::uint8_t> out, std::string_view reason,
                          bool keep_alive) noexcept;
// A bare status (400, 404, 405, 431, 503) with a bencoded failure reason body.
std::size_t write_status(std::span<std::uint8_t> out, int status, std::string_view reason,
                         bool keep_alive) noexcept;

}  // namespace tyto::proto::http
