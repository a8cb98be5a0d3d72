// Bounds-checked big-endian reader and writer over a caller's buffer. Failure is sticky:
// a read past the end returns zeros and marks the reader failed; callers check ok() once at the
// end of a parse instead of after every field. Nothing here allocates.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace tyto {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> bytes) noexcept : bytes_(bytes) {}

  bool ok() const noexcept { return ok_; }
  std::size_t offset() const noexcept { return offset_; }
  std::size_t remaining() const noexcept { return bytes_.size() - offset_; }

  std::uint8_t u8() noexcept { return static_cast<std::uint8_t>(read_be(1)); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(read_be(2)); }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(read_be(4)); }
  std::uint64_t u64() noexcept { return read_be(8); }
  std::int32_t i32() noexcept { return static_cast<std::int32_t>(u32()); }

  // The next `size` bytes, or an empty span (and failure) if fewer remain.
  std::span<const std::uint8_t> bytes(std::size_t size) noexcept {
    if (!take(size)) return {};
    return bytes_.subspan(offset_ - size, size);
  }
  template <std::size_t N>
  void copy_to(std::uint8_t (&out)[N]) noexcept {
    copy_to(std::span<std::uint8_t>(out, N));
  }
  void copy_to(std::span<std::uint8_t> out) noexcept {
    const auto in = bytes(out.size());
    if (in.size() == out.size() && !out.empty()) std::memcpy(out.data(), in.data(), out.size());
  }

 private:
  bool take(std::size_t size) noexcept {
    if (!ok_ || size > remaining()) {
      ok_ = false;
      return false;
    }
    offset_ += size;
    return true;
  }
  std::uint64_t read_be(std::size_t size) noexcept {
    if (!take(size)) return 0;
    std::uint64_t value = 0;
    for (std::size_t i = offset_ - size; i < offset_; ++i) value = (value << 8) | bytes_[i];
    return value;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t offset_ = 0;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::span<std::uint8_t> out) noexcept : out_(out) {}

  bool ok() const noexcept { return ok_; }
  std::size_t size() const noexcept { return size_; }  // bytes written so far
  std::size_t remaining() const noexcept { return out_.size() - size_; }
  std::span<const std::uint8_t> written() const noexcept { return out_.first(size_); }

  void u8(std::uint8_t value) noexcept { write_be(value, 1); }
  void u16(std::uint16_t value) noexcept { write_be(value, 2); }
  void u32(std::uint32_t value) noexcept { write_be(value, 4); }
  void u64(std::uint64_t value) noexcept { write_be(value, 8); }
  void i32(std::int32_t value) noexcept { u32(static_cast<std::uint32_t>(value)); }
  void bytes(std::span<const std::uint8_t> in) noexcept {
    std::uint8_t* at = reserve(in.size());
    if (at != nullptr && !in.empty()) std::memcpy(at, in.data(), in.size());
  }
  // Room for `size` bytes the caller fills in place; nullptr (and failure) if it does not fit.
  std::uint8_t* reserve(std::size_t size) noexcept {
    if (!ok_ || size > remaining()) {
      ok_ = false;
      return nullptr;
    }
    std::uint8_t* at = out_.data() + size_;
    size_ += size;
    return at;
  }

 private:
  void write_be(std::uint64_t value, std::size_t size) noexcept {
    std::uint8_t* at = reserve(size);
    if (at == nullptr) return;
    for (std::size_t i = size; i-- > 0;) {
      at[i] = static_cast<std::uint8_t>(value);
      value >>= 8;
    }
  }

  std::span<std::uint8_t> out_;
  std::size_t size_ = 0;
  bool ok_ = true;
};

}  // namespace tyto
