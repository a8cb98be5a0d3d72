// BencodeWriter: a non-allocating bencode writer (BEP 3) over a caller's buffer, with ByteWriter's
// sticky overflow. Callers write dictionary keys in sorted order, as bencode requires.
#pragma once

#include <charconv>
#include <cstdint>
#include <span>
#include <string_view>

#include "tyto/core/bytes.hpp"

namespace tyto::proto {

class BencodeWriter {
 public:
  explicit BencodeWriter(std::span<std::uint8_t> out) noexcept : out_(out) {}

  bool ok() const noexcept { return out_.ok(); }
  std::size_t size() const noexcept { return out_.size(); }

  void integer(std::int64_t value) noexcept {
    out_.u8('i');
    decimal(value);
    out_.u8('e');
  }
  void string(std::span<const std::uint8_t> bytes) noexcept {
    decimal(static_cast<std::int64_t>(bytes.size()));
    out_.u8(':');
    out_.bytes(bytes);
  }
  void string(std::string_view text) noexcept {
    string({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  }
  void dictionary_begin() noexcept { out_.u8('d'); }
  void list_begin() noexcept { out_.u8('l'); }
  void end() noexcept { out_.u8('e'); }

 private:
  void decimal(std::int64_t value) noexcept {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out_.bytes({reinterpret_cast<const std::uint8_t*>(digits),
                static_cast<std::size_t>(result.ptr - digits)});
  }

  ByteWriter out_;
};

}  // namespace tyto::proto
