#include "tyto/proto/udp.hpp"

#include <algorithm>
#include <cstring>

#include "tyto/core/bytes.hpp"

namespace tyto::proto::udp {

namespace {

constexpr std::uint8_t option_end = 0;       // BEP 41
constexpr std::uint8_t option_nop = 1;       // BEP 41
constexpr std::uint8_t option_url_data = 2;  // BEP 41

ParseFailure answerable(ParseError error, std::uint32_t transaction_id) noexcept {
  return ParseFailure{error, true, transaction_id};
}

// BEP 41 options after the 98-byte announce: calls on_url_data(bytes) for each URL data option,
// in order. Unknown option types end the walk (BEP 41 says a client must not send them and a
// tracker cannot know their length); a URL data length running past the packet is an error.
template <class OnUrlData>
bool walk_options(std::span<const std::uint8_t> options, OnUrlData&& on_url_data) noexcept {
  ByteReader reader(options);
  while (reader.remaining() > 0) {
    const std::uint8_t type = reader.u8();
    if (type == option_end) return true;
    if (type == option_nop) continue;
    if (type != option_url_data) return true;
    const std::uint8_t size = reader.u8();
    const auto data = reader.bytes(size);
    if (!reader.ok()) return false;
    on_url_data(data);
  }
  return true;
}

Result<Request, ParseFailure> parse_announce(ByteReader& reader, std::uint64_t connection_id,
                                             std::uint32_t transaction_id, std::size_t size,
                                             const PeerEndpoint& source) noexcept {
  if (size < limits::udp_announce_request_size) {
    return Failure{answerable(ParseError::bad_announce_size, transaction_id)};
  }
  Request request{Action::announce, AnnounceRequest{}};
  auto& announce = std::get<AnnounceRequest>(request.body);
  announce.connection_id = connection_id;
  announce.transaction_id = transaction_id;
  tyto::AnnounceRequest& core = announce.announce;
  reader.copy_to(core.info_hash.bytes);
  reader.copy_to(core.peer_id.bytes);
  core.downloaded_bytes = reader.u64();
  core.left_bytes = reader.u64();
  core.uploaded_bytes = reader.u64();
  const std::uint32_t event = reader.u32();
  reader.u32();  // IP address field: ignored, the source address is the peer's address
  core.key = reader.u32();
  core.numwant = reader.i32();
  const std::uint16_t port = reader.u16();
  TYTO_ASSERT(reader.ok());  // the size was checked above
  if (event > static_cast<std::uint32_t>(AnnounceEvent::stopped)) {
    return Failure{answerable(ParseError::bad_event, transaction_id)};
  }
  core.event = static_cast<AnnounceEvent>(event);
  core.peer = source;
  const std::size_t port_at = source.wire_size() - 2;
  core.peer.wire[port_at] = static_cast<std::uint8_t>(port >> 8);
  core.peer.wire[port_at + 1] = static_cast<std::uint8_t>(port);
  announce.options_wire = reader.bytes(reader.remaining());
  std::size_t url_data_size = 0;
  if (!walk_options(announce.options_wire,
                    [&](std::span<const std::uint8_t> data) { url_data_size += data.size(); })) {
    return Failure{answerable(ParseError::bad_option, transaction_id)};
  }
  announce.url_data_size = static_cast<std::uint32_t>(url_data_size);  // < packet size
  return request;
}

Result<Request, ParseFailure> parse_scrape(ByteReader& reader, std::uint64_t connection_id,
                                           std::uint32_t transaction_id) noexcept {
  const std::size_t hashes_size = reader.remaining();
  if (hashes_size == 0 || hashes_size % limits::info_hash_size != 0) {
    return Failure{answerable(ParseError::bad_scrape_size, transaction_id)};
  }
  const std::size_t count = hashes_size / limits::info_hash_size;
  if (count > limits::udp_scrape_hashes_max) {
    return Failure{answerable(ParseError::too_many_hashes, transaction_id)};
  }
  Request request{Action::scrape, ScrapeRequest{}};
  auto& scrape = std::get<ScrapeRequest>(request.body);
  scrape.connection_id = connection_id;
  scrape.transaction_id = transaction_id;
  scrape.info_hashes_count = static_cast<std::uint32_t>(count);
  scrape.info_hashes_wire = reader.bytes(hashes_size);
  TYTO_ASSERT(reader.ok() && reader.remaining() == 0);
  return request;
}

}  // namespace

const char* ParseFailure::message() const noexcept {
  switch (error) {
    case ParseError::too_short:
      return "packet too short";
    case ParseError::bad_protocol_id:
      return "bad protocol id";
    case ParseError::unknown_action:
      return "unknown action";
    case ParseError::bad_announce_size:
      return "announce too short";
    case ParseError::bad_event:
      return "invalid event";
    case ParseError::bad_option:
      return "malformed BEP 41 option";
    case ParseError::bad_scrape_size:
      return "invalid scrape length";
    case ParseError::too_many_hashes:
      return "too many info_hashes (at most 74)";
  }
  return "malformed request";
}

std::size_t AnnounceRequest::url_data(std::span<std::uint8_t> out) const noexcept {
  std::size_t written = 0;
  walk_options(options_wire, [&](std::span<const std::uint8_t> data) {
    const std::size_t kept = std::min(out.size() - written, data.size());
    if (kept != 0) std::memcpy(out.data() + written, data.data(), kept);
    written += kept;
  });
  return written;
}

std::span<const std::uint8_t> AnnounceRequest::url_data_in_place() const noexcept {
  // The parser checked every option's length against the packet (walk_options).
  if (url_data_size == 0 || options_wire.size() < 2 + std::size_t{url_data_size} ||
      options_wire[0] != option_url_data || options_wire[1] != url_data_size) {
    return {};
  }
  return options_wire.subspan(2, url_data_size);
}

std::optional<InfoHash> peek_announce_info_hash(std::span<const std::uint8_t> packet) noexcept {
  if (packet.size() < limits::udp_announce_request_size) return std::nullopt;
  ByteReader reader(packet);
  reader.u64();  // connection id
  if (reader.u32() != static_cast<std::uint32_t>(Action::announce)) return std::nullopt;
  reader.u32();  // transaction id
  InfoHash info_hash;
  reader.copy_to(info_hash.bytes);
  return info_hash;
}

Result<Request, ParseFailure> parse_request(std::span<const std::uint8_t> packet,
                                            const PeerEndpoint& source) noexcept {
  if (packet.size() < connect_request_size) return Failure{ParseFailure{ParseError::too_short}};
  ByteReader reader(packet);
  const std::uint64_t connection_id = reader.u64();
  const std::uint32_t action = reader.u32();
  const std::uint32_t transaction_id = reader.u32();
  TYTO_ASSERT(reader.ok());
  switch (action) {
    case static_cast<std::uint32_t>(Action::connect):
      // Without the magic this is not BEP 15 traffic: answering would make us a reflector.
      if (connection_id != protocol_id) return Failure{ParseFailure{ParseError::bad_protocol_id}};
      return Request{Action::connect, ConnectRequest{transaction_id}};
    case static_cast<std::uint32_t>(Action::announce):
      return parse_announce(reader, connection_id, transaction_id, packet.size(), source);
    case static_cast<std::uint32_t>(Action::scrape):
      return parse_scrape(reader, connection_id, transaction_id);
    default:
      return Failure{answerable(ParseError::unknown_action, transaction_id)};
  }
}

std::size_t write_connect_reply(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                                std::uint64_t connection_id) noexcept {
  if (out.size() < connect_reply_size) return 0;
  ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(Action::connect));
  writer.u32(transaction_id);
  writer.u64(connection_id);
  return writer.size();
}

std::size_t write_announce_reply_header(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                                        std::uint32_t interval_s, std::uint32_t leechers,
                                        std::uint32_t seeders) noexcept {
  if (out.size() < limits::udp_announce_reply_header_size) return 0;
  ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(Action::announce));
  writer.u32(transaction_id);
  writer.u32(interval_s);
  writer.u32(leechers);
  writer.u32(seeders);
  return writer.size();
}

std::size_t write_scrape_reply(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                               std::span<const ScrapeEntry> entries) noexcept {
  const std::size_t size =
      limits::udp_scrape_reply_header_size + entries.size() * limits::udp_scrape_reply_entry_size;
  if (out.size() < size) return 0;
  ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(Action::scrape));
  writer.u32(transaction_id);
  for (const ScrapeEntry& entry : entries) {
    writer.u32(entry.seeders);
    writer.u32(entry.completed);
    writer.u32(entry.leechers);
  }
  TYTO_ASSERT(writer.ok() && writer.size() == size);
  return size;
}

std::size_t write_error_reply(std::span<std::uint8_t> out, std::uint32_t transaction_id,
                              std::string_view message) noexcept {
  if (out.size() < error_reply_header_size + message.size()) return 0;
  ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(Action::error));
  writer.u32(transaction_id);
  writer.bytes({reinterpret_cast<const std::uint8_t*>(message.data()), message.size()});
  return writer.size();
}

std::uint32_t udp_peers_max(std::int32_t numwant, AddressFamily family,
                            std::uint32_t numwant_default, std::uint32_t numwant_max) noexcept {
  const std::uint32_t peers = peers_wanted(numwant, numwant_default, numwant_max);
  const std::uint32_t fits =
      family == AddressFamily::ipv4 ? limits::udp_ipv4_peers_max : limits::udp_ipv6_peers_max;
  return std::min(peers, fits);
}

}  // namespace tyto::proto::udp
