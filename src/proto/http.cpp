#include "tyto/proto/http.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "tyto/proto/bencode.hpp"

namespace tyto::proto::http {

namespace {

constexpr std::size_t headers_max = 64;

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool contains_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    const auto comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (equals_ignoring_case(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// The end of the head: the byte after "\n\r\n" or "\n\n"; 0 when not there yet.
std::size_t head_end(std::string_view text) noexcept {
  for (std::size_t i = text.find('\n'); i != std::string_view::npos; i = text.find('\n', i + 1)) {
    if (i + 1 < text.size() && text[i + 1] == '\n') return i + 2;
    if (i + 2 < text.size() && text[i + 1] == '\r' && text[i + 2] == '\n') return i + 3;
  }
  return 0;
}

bool parse_request_line(std::string_view line, RequestHead& head) noexcept {
  const auto first_space = line.find(' ');
  if (first_space == std::string_view::npos || first_space == 0) return false;
  const auto second_space = line.find(' ', first_space + 1);
  if (second_space == std::string_view::npos || second_space == first_space + 1) return false;
  head.method = line.substr(0, first_space);
  head.target = line.substr(first_space + 1, second_space - first_space - 1);
  const std::string_view version = line.substr(second_space + 1);
  if (version == "HTTP/1.1") {
    head.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    head.minor_version = 0;
  } else {
    return false;
  }
  for (char c : head.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return head.target.front() == '/';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of a query value into `out`; '+' is a space. False when malformed or longer
// than out.
bool decode(std::string_view in, std::span<std::uint8_t> out, std::size_t& size) noexcept {
  size = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (size == out.size()) return false;
    std::uint8_t byte = static_cast<std::uint8_t>(in[i]);
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;  // "%", "%4" at the end
      const int high = hex_value(in[i + 1]);
      const int low = hex_value(in[i + 2]);
      if (high < 0 || low < 0) return false;
      byte = static_cast<std::uint8_t>(high * 16 + low);
      i += 2;
    } else if (in[i] == '+') {
      byte = ' ';
    }
    out[size++] = byte;
  }
  return true;
}

bool decode_20(std::string_view in, std::array<std::uint8_t, 20>& out) noexcept {
  std::uint8_t buffer[21];
  std::size_t size = 0;
  if (!decode(in, buffer, size) || size != 20) return false;
  std::memcpy(out.data(), buffer, 20);
  return true;
}

template <class Integer>
bool decimal(std::string_view text, Integer& value) noexcept {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size() && !text.empty();
}

// Calls visit(key, value) for each key=value pair of a query; stops at the first failure.
template <class Visit>
const char* for_each_parameter(std::string_view query, Visit&& visit) noexcept {
  QueryParameter parameter;
  while (next_parameter(query, parameter)) {
    if (const char* failure = visit(parameter.key, parameter.value)) return failure;
  }
  return nullptr;
}

}  // namespace

HeadStatus parse_head(std::span<const std::uint8_t> bytes, RequestHead& head) noexcept {
  const std::size_t limit = std::min(bytes.size(), limits::http_request_head_size_max);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), limit);
  const std::size_t end = head_end(text);
  if (end == 0) {
    return bytes.size() >= limits::http_request_head_size_max ? HeadStatus::too_large
                                                              : HeadStatus::incomplete;
  }
  head = RequestHead{};
  head.head_size = end;
  std::string_view rest = text.substr(0, end);
  auto next_line = [&rest]() {
    const auto newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  if (!parse_request_line(next_line(), head)) return HeadStatus::invalid;
  bool connection_close = false;
  bool connection_keep_alive = false;
  for (std::size_t headers = 0;; ++headers) {
    const std::string_view line = next_line();
    if (line.empty()) break;
    if (headers == headers_max) return HeadStatus::invalid;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return HeadStatus::invalid;
    const std::string_view name = line.substr(0, colon);
    if (name.back() == ' ' || name.back() == '\t') return HeadStatus::invalid;
    const std::string_view value = trim(line.substr(colon + 1));
    if (equals_ignoring_case(name, "connection")) {
      connection_close |= contains_token(value, "close");
      connection_keep_alive |= contains_token(value, "keep-alive");
    } else if (equals_ignoring_case(name, "content-length")) {
      std::uint64_t length = 0;
      if (!decimal(value, length)) return HeadStatus::invalid;
      head.has_body |= length != 0;
    } else if (equals_ignoring_case(name, "transfer-encoding")) {
      head.has_body = true;
    } else if (equals_ignoring_case(name, "x-forwarded-for")) {
      head.x_forwarded_for = value;
    } else if (equals_ignoring_case(name, "x-real-ip")) {
      head.x_real_ip = value;
    }
  }
  head.keep_alive = head.minor_version == 1 ? !connection_close : connection_keep_alive;
  return HeadStatus::complete;
}

Target split_target(std::string_view target) noexcept {
  const auto question = target.find('?');
  if (question == std::string_view::npos) return {target, {}};
  return {target.substr(0, question), target.substr(question + 1)};
}

Path route(std::string_view target, std::string_view& query, std::string_view& passkey) noexcept {
  const Target split = split_target(target);
  query = split.query;
  passkey = {};
  std::string_view path = split.path;
  // "/<passkey>/announce": one non-empty segment before the last.
  const auto last_slash = path.rfind('/');
  if (last_slash != 0 && last_slash != std::string_view::npos && path.front() == '/') {
    const std::string_view segment = path.substr(1, last_slash - 1);
    if (segment.empty() || segment.find('/') != std::string_view::npos) return Path::unknown;
    passkey = segment;
    path = path.substr(last_slash);
  }
  if (path == "/announce") return Path::announce;
  if (path == "/scrape") return Path::scrape;
  passkey = {};
  return Path::unknown;
}

bool query_value(std::string_view query, std::string_view key, std::string_view& value) noexcept {
  QueryParameter parameter;
  while (next_parameter(query, parameter)) {
    if (parameter.key == key) {
      value = parameter.value;
      return true;
    }
  }
  return false;
}

Result<AnnounceQuery, const char*> parse_announce_query(std::string_view query) noexcept {
  AnnounceQuery out;
  bool have_hash = false, have_peer_id = false, have_port = false, have_left = false;
  const char* failure =
      for_each_parameter(query, [&](std::string_view key, std::string_view value) -> const char* {
        AnnounceRequest& announce = out.announce;
        if (key == "info_hash") {
          if (!decode_20(value, announce.info_hash.bytes))
            return "invalid info_hash: must be 20 bytes";
          have_hash = true;
        } else if (key == "peer_id") {
          if (!decode_20(value, announce.peer_id.bytes)) return "invalid peer_id: must be 20 bytes";
          have_peer_id = true;
        } else if (key == "port") {
          unsigned port = 0;
          if (!decimal(value, port) || port == 0 || port > 65535) return "invalid port";
          out.port = static_cast<std::uint16_t>(port);
          have_port = true;
        } else if (key == "uploaded") {
          if (!decimal(value, announce.uploaded_bytes)) return "invalid uploaded";
        } else if (key == "downloaded") {
          if (!decimal(value, announce.downloaded_bytes)) return "invalid downloaded";
        } else if (key == "left") {
          if (!decimal(value, announce.left_bytes)) return "invalid left";
          have_left = true;
        } else if (key == "event") {
          if (value == "started")
            announce.event = AnnounceEvent::started;
          else if (value == "completed")
            announce.event = AnnounceEvent::completed;
          else if (value == "stopped")
            announce.event = AnnounceEvent::stopped;
          else if (value.empty() || value == "paused")
            announce.event = AnnounceEvent::none;
          else
            return "invalid event";
        } else if (key == "numwant") {
          std::int64_t numwant = 0;
          if (!decimal(value, numwant)) return "invalid numwant";
          announce.numwant =
              static_cast<std::int32_t>(std::clamp<std::int64_t>(numwant, -1, 1 << 30));
        } else if (key == "compact") {
          if (value != "0" && value != "1") return "invalid compact";
          out.compact = value == "1";
        } else if (key == "no_peer_id") {
          out.no_peer_id = true;
        } else if (key == "key") {
          std::uint32_t folded = 2166136261u;  // FNV-1a of the raw value: the key is opaque text
          for (char c : value) folded = (folded ^ static_cast<std::uint8_t>(c)) * 16777619u;
          announce.key = folded;
        } else if (key == "ip") {
          out.ip = value;
        }
        return nullptr;  // unknown parameters are ignored
      });
  if (failure != nullptr) return Failure{failure};
  if (!have_hash) return Failure{"missing info_hash"};
  if (!have_peer_id) return Failure{"missing peer_id"};
  if (!have_port) return Failure{"missing port"};
  if (!have_left) return Failure{"missing left"};
  return out;
}

Result<std::uint32_t, const char*> parse_scrape_query(std::string_view query,
                                                      std::span<InfoHash> out) noexcept {
  std::uint32_t count = 0;
  const char* failure =
      for_each_parameter(query, [&](std::string_view key, std::string_view value) -> const char* {
        if (key != "info_hash") return nullptr;
        if (count == out.size()) return "too many info_hashes (at most 64)";
        if (!decode_20(value, out[count].bytes)) return "invalid info_hash: must be 20 bytes";
        ++count;
        return nullptr;
      });
  if (failure != nullptr) return Failure{failure};
  if (count == 0) return Failure{"full scrape is not allowed"};
  return count;
}

namespace {

const char* status_text(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// The body was written at out[response_header_size_max...]; put the header in front of it.
std::size_t frame(std::span<std::uint8_t> out, int status, std::size_t body_size,
                  bool keep_alive) noexcept {
  char header[response_header_size_max];
  char* at = header;
  char* const end = header + sizeof header;
  auto append = [&](std::string_view text) {
    const std::size_t size = std::min<std::size_t>(text.size(), static_cast<std::size_t>(end - at));
    std::memcpy(at, text.data(), size);
    at += size;
  };
  append("HTTP/1.1 ");
  char number[24];
  append(
      {number, static_cast<std::size_t>(std::to_chars(number, number + 24, status).ptr - number)});
  append(" ");
  append(status_text(status));
  append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  append({number,
          static_cast<std::size_t>(std::to_chars(number, number + 24, body_size).ptr - number)});
  append(keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  const auto header_size = static_cast<std::size_t>(at - header);
  TYTO_ASSERT(header_size < response_header_size_max);
  std::memmove(out.data() + header_size, out.data() + response_header_size_max, body_size);
  std::memcpy(out.data(), header, header_size);
  return header_size + body_size;
}

std::span<std::uint8_t> body_area(std::span<std::uint8_t> out) noexcept {
  return out.size() > response_header_size_max ? out.subspan(response_header_size_max)
                                               : std::span<std::uint8_t>{};
}

}  // namespace

std::size_t write_announce_response(std::span<std::uint8_t> out, const AnnounceReply& reply,
                                    std::uint32_t interval_s, std::uint32_t interval_min_s,
                                    AddressFamily family, std::span<const std::uint8_t> peers,
                                    bool compact, const PeerEndpoint& external_ip,
                                    bool keep_alive) noexcept {
  BencodeWriter body(body_area(out));
  const std::size_t entry = peer_wire_size(family);
  TYTO_ASSERT(peers.size() % entry == 0);
  body.dictionary_begin();  // keys in bencode's sorted order
  body.string("complete");
  body.integer(reply.seeders);
  body.string("external ip");  // BEP 24
  body.string(external_ip.address_bytes());
  body.string("incomplete");
  body.integer(reply.leechers);
  body.string("interval");
  body.integer(interval_s);
  body.string("min interval");
  body.integer(interval_min_s);
  body.string("peers");
  if (!compact) {  // BEP 3 dictionary model, without peer ids
    body.list_begin();
    for (std::size_t at = 0; at < peers.size(); at += entry) {
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(family == AddressFamily::ipv4 ? AF_INET : AF_INET6, peers.data() + at, text,
                sizeof text);
      body.dictionary_begin();
      body.string("ip");
      body.string(std::string_view(text));
      body.string("port");
      body.integer(peers[at + entry - 2] << 8 | peers[at + entry - 1]);
      body.end();
    }
    body.end();
  } else if (family == AddressFamily::ipv4) {
    body.string(peers);  // BEP 23
  } else {
    body.string(std::span<const std::uint8_t>{});  // an empty `peers` for clients that want one
    body.string("peers6");                         // BEP 7
    body.string(peers);
  }
  body.end();
  return body.ok() ? frame(out, 200, body.size(), keep_alive) : 0;
}

std::size_t write_scrape_response(std::span<std::uint8_t> out, std::span<const InfoHash> hashes,
                                  std::span<const ScrapeEntry> entries, bool keep_alive) noexcept {
  TYTO_ASSERT(hashes.size() == entries.size() && hashes.size() <= limits::http_scrape_hashes_max);
  std::uint8_t order[limits::http_scrape_hashes_max];
  for (std::size_t i = 0; i < hashes.size(); ++i) order[i] = static_cast<std::uint8_t>(i);
  std::sort(order, order + hashes.size(),
            [&](std::uint8_t a, std::uint8_t b) { return hashes[a] < hashes[b]; });
  BencodeWriter body(body_area(out));
  body.dictionary_begin();
  body.string("files");  // BEP 48
  body.dictionary_begin();
  for (std::size_t k = 0; k < hashes.size(); ++k) {
    if (k > 0 && hashes[order[k]] == hashes[order[k - 1]]) continue;  // each hash once
    body.string(hashes[order[k]].bytes);
    body.dictionary_begin();
    body.string("complete");
    body.integer(entries[order[k]].seeders);
    body.string("downloaded");
    body.integer(entries[order[k]].completed);
    body.string("incomplete");
    body.integer(entries[order[k]].leechers);
    body.end();
  }
  body.end();
  body.end();
  return body.ok() ? frame(out, 200, body.size(), keep_alive) : 0;
}

std::size_t write_status(std::span<std::uint8_t> out, int status, std::string_view reason,
                         bool keep_alive) noexcept {
  BencodeWriter body(body_area(out));
  body.dictionary_begin();
  body.string("failure reason");
  body.string(reason);
  body.end();
  return body.ok() ? frame(out, status, body.size(), keep_alive) : 0;
}

std::size_t write_failure(std::span<std::uint8_t> out, std::string_view reason,
                          bool keep_alive) noexcept {
  return write_status(out, 200, reason, keep_alive);
}

bool percent_decode(std::string_view in, std::span<std::uint8_t> out, std::size_t& size) noexcept {
  return decode(in, out, size);
}

}  // namespace tyto::proto::http
