// BEP 15 (UDP tracker protocol) and BEP 41 (URL data options) codec. Pure: bytes in, typed
// requests or typed errors out; replies written into caller buffers. No I/O, no allocation.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "tyto/core/limits.hpp"
#include "tyto/core/request.hpp"
#include "tyto/core/result.hpp"
#include "tyto/core/types.hpp"

namespace tyto::proto::udp {

inline constexpr std::uint64_t protocol_id = 0x41727101980;  // BEP 15 magic
inline constexpr std::size_t connect_request_size = 16;
inline constexpr std::size_t connect_reply_size = 16;
inline constexpr std::size_t error_reply_header_size = 8;
static_assert(limits::udp_announce_request_size ==
              8 + 4 + 4 + 20 + 20 + 8 + 8 + 8 + 4 + 4 + 4 + 4 + 2);

enum class Action : std::uint32_t { connect = 0, announce = 1, scrape = 2, error = 3 };

struct ConnectRequest {
  std::uint32_t transaction_id = 0;
};

struct AnnounceRequest {
  std::uint64_t connection_id = 0;
  std::uint32_t transaction_id = 0;
  tyto::AnnounceRequest announce;
  // BEP 41: the option bytes after the 98-byte announce, each URL data length checked by the
  // parser. A view into the packet, valid while the packet is: parsing copies nothing (the
  // request held 512 bytes of URL data inline before, zeroed and copied on every announce).
  std::span<const std::uint8_t> options_wire;
  std::uint32_t url_data_size = 0;  // the URL data options' bytes in all

  // Writes the URL data (path and query, e.g. "/announce?key=…"), the options concatenated in
  // order, into out; returns the bytes written: url_data_size, or out.size() if that is less
  // (the rest is cut).
  std::size_t url_data(std::span<std::uint8_t> out) const noexcept;
  // The URL data in place when the first option holds all of it (what clients send: one
  // option up to 255 bytes, e.g. "/<passkey>/announce"), so nothing is copied; otherwise empty,
  // and url_data() concatenates. Also empty when there is no URL data.
  std::span<const std::uint8_t> url_data_in_place() const noexcept;
};

struct ScrapeRequest {
  std::uint64_t connection_id = 0;
  std::uint32_t transaction_id = 0;
  std::uint32_t info_hashes_count = 0;  // 1 .. limits::udp_scrape_hashes_max
  // info_hashes_count × 20 bytes: a view into the packet, valid while the packet is. Parsing
  // copies nothing, and a Request passed by value stays small (it held 74 hashes inline before:
  // ~1.5 KB copied on every announce too, being the variant's largest alternative).
  std::span<const std::uint8_t> info_hashes_wire;

  InfoHash info_hash(std::size_t index) const noexcept {
    InfoHash hash;
    std::memcpy(hash.bytes.data(), info_hashes_wire.data() + index * sizeof hash.bytes,
                sizeof hash.bytes);
    return hash;
  }
};

struct Request {
  Action action = Action::connect;
  std::variant<ConnectRequest, AnnounceRequest, ScrapeRequest> body;
};

enum class ParseError : std::uint8_t {
  too_short,          // not even a header: dropped
  bad_protocol_id,    // a connect without the BEP 15 magic: not our protocol, dropped
  unknown_action,     // answered
  bad_announce_size,  // shorter than 98 bytes: answered
  bad_event,          // event not 0..3: answered
  bad_option,         // BEP 41 option length runs past the packet: answered
  bad_scrape_size,    // not 16 + 20·N bytes: answered
  too_many_hashes,    // more than 74 info_hashes: answered
};

struct ParseFailure {
  ParseError error = ParseError::too_short;
  bool answerable = false;  // a transaction id was read: reply with a BEP 15 error (action 3)
  std::uint32_t transaction_id = 0;
  const char* message() const noexcept;
};

// `source` is the datagram's source: its IP becomes the peer's IP (the packet's IP field is
// ignored, as it would let anyone announce someone else), the port comes from the packet.
Result<Request, ParseFailure> parse_request(std::span<const std::uint8_t> packet,
                                            const PeerEndpoint& source) noexcept;

// The info_hash of a packet shaped like an announce (at least its 98 bytes, action 1), read
// without validating the rest: a hint for reading ahead over a batch, never for serving.
std::optional<InfoHash> peek_announce_info_hash(std::span<const std::uint8_t> packet) noexcept;

// Writers return the bytes written, or 0 when `out` is too small (nothing past out is touched).
std::size_t write_connect_reply(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                                std::uint64_t connection_id) noexcept;
// The 20-byte announce reply header; the peers follow it in the same buffer.
std::size_t write_announce_reply_header(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                                        std::uint32_t interval_s, std::uint32_t leechers,
                                        std::uint32_t seeders) noexcept;
// BEP 15 order per entry: seeders, completed, leechers.
std::size_t write_scrape_reply(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                               std::span<const ScrapeEntry> entries) noexcept;
std::size_t write_error_reply(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                              std::string_view message) noexcept;

// Peers in one UDP announce reply (peers_wanted: negative is the default, 0 none); never more than
// numwant_max nor than fit one 1452-byte datagram for the family (238 IPv4, 79 IPv6).
std::uint32_t udp_peers_max(std::int32_t numwant, AddressFamily family,
                            std::uint32_t numwant_default, std::uint32_t numwant_max) noexcept;

}  // namespace tyto::proto::udp
