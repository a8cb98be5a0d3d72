// The catalogue role of the storage boundary (DESIGN §9; the seed's TorrentStorage): the rows a
// private tracker decides by — users (passkey → user), registered torrents (info_hash → torrent)
// and client rules (peer_id prefixes allowed or denied). Plain types only: a backend produces
// them from its rows (backend.hpp), the storage bridge streams them to the shards, and each
// shard answers announces from its own in-memory copy (shard/catalogue_copy.hpp). Nothing here
// knows a database, a ring or a shard.
//
// Rows are outside input (a site writes them): a backend checks every field before it makes a
// row and refuses (logs, counts, skips) a row that does not fit these types.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "tyto/core/types.hpp"

namespace tyto::store {

// Passkeys are whatever the site issued: 1..64 printable ASCII characters (0x21..0x7e, no
// space), matched exactly, case included. tyto never generates one or asks for a format.
inline constexpr std::size_t passkey_size_max = 64;

struct Passkey {
  std::uint8_t size = 0;
  std::array<char, passkey_size_max> text{};

  std::string_view view() const noexcept { return {text.data(), size}; }
  // nullopt for an empty, too long or non-printable key.
  static std::optional<Passkey> parse(std::string_view candidate) noexcept {
    if (candidate.empty() || candidate.size() > passkey_size_max) return std::nullopt;
    Passkey key;
    for (std::size_t i = 0; i < candidate.size(); ++i) {
      const auto c = static_cast<unsigned char>(candidate[i]);
      if (c < 0x21 || c > 0x7e) return std::nullopt;
      key.text[i] = static_cast<char>(c);
    }
    key.size = static_cast<std::uint8_t>(candidate.size());
    return key;
  }
  friend bool operator==(const Passkey& a, const Passkey& b) noexcept {
    return a.size == b.size && std::memcmp(a.text.data(), b.text.data(), a.size) == 0;
  }
};

// Upload and download factors: credited bytes = real bytes × torrent factor × user factor
// (freeleech: download factor 0; double upload: upload factor 2). Rows outside this range are
// refused by the backend.
inline constexpr float factor_max = 100.0f;
inline bool factor_valid(double factor) noexcept {
  return factor >= 0.0 && factor <= factor_max;
}

// tyto_users: written by the site.
struct UserRow {
  std::uint64_t user_id = 0;
  Passkey passkey;
  bool enabled = true;
  bool can_leech = true;  // false: announces with left > 0 are refused
  float upload_factor = 1.0f;
  float download_factor = 1.0f;
};

// tyto_torrents: written by the site. A private tracker serves registered torrents only.
struct TorrentRow {
  std::uint64_t torrent_id = 0;
  InfoHash info_hash;
  float upload_factor = 1.0f;
  float download_factor = 1.0f;
};

// tyto_client_rules: a peer_id prefix (1..20 bytes) allowed or denied. With any allowed row
// present only clients matching an allowed prefix are let in; a matching denied row refuses.
inline constexpr std::size_t client_prefix_size_max = limits::peer_id_size;

struct ClientRuleRow {
  std::uint8_t prefix_size = 0;
  std::array<std::uint8_t, client_prefix_size_max> prefix{};
  bool allowed = false;

  std::span<const std::uint8_t> prefix_bytes() const noexcept {
    return {prefix.data(), prefix_size};
  }
  bool matches(const PeerId& peer_id) const noexcept {
    return std::memcmp(peer_id.bytes.data(), prefix.data(), prefix_size) == 0;
  }
  // nullopt for an empty or longer than 20-byte prefix.
  static std::optional<ClientRuleRow> make(std::string_view prefix_text, bool allowed) noexcept {
    if (prefix_text.empty() || prefix_text.size() > client_prefix_size_max) return std::nullopt;
    ClientRuleRow row;
    row.prefix_size = static_cast<std::uint8_t>(prefix_text.size());
    std::memcpy(row.prefix.data(), prefix_text.data(), prefix_text.size());
    row.allowed = allowed;
    return row;
  }
};

// One change to the catalogue, as a backend reports it: a row as it is now (inserted or
// updated) or the key of a row that was deleted (user_id, torrent_id or the rule's prefix; the
// other fields are unset).
enum class CatalogueChangeKind : std::uint8_t {
  user,
  user_removed,
  torrent,
  torrent_removed,
  client_rule,
  client_rule_removed,
};

struct CatalogueChange {
  CatalogueChangeKind kind = CatalogueChangeKind::user;
  UserRow user;
  TorrentRow torrent;
  ClientRuleRow client_rule;
};

}  // namespace tyto::store
