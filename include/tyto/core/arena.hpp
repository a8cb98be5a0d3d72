// SlabArena: a shard-local allocator for variable-size blocks (peer arrays, indexes).
//
// Blocks are served from size classes: multiples of 16 bytes up to 256, then steps of 1/8
// (about 12 % apart) up to block_size_max. Each class carves blocks out of 64 KiB slabs taken
// from mimalloc and keeps freed blocks on an intrusive free list; blocks larger than
// block_size_max go straight to mimalloc. Callers pass the size back on deallocate (sized free),
// so no header is stored per block. Slabs are only returned when the arena is destroyed.
//
// Ownership: one arena per shard; not thread-safe. Under AddressSanitizer free blocks are
// poisoned, so a use after free inside a slab is still reported.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tyto {

struct ArenaStats {
  std::uint64_t slab_bytes = 0;        // memory held in slabs (resident upper bound)
  std::uint64_t large_bytes = 0;       // memory in blocks above block_size_max
  std::uint64_t block_bytes_in_use = 0;  // sum of class sizes of live blocks (incl. large)
  std::uint64_t slabs_allocated = 0;   // slab allocations ever (0 growth = no heap calls)
  std::uint64_t large_allocations = 0; // large allocations ever
};

class SlabArena {
 public:
  static constexpr std::size_t slab_size = 64 * 1024;
  static constexpr std::size_t block_size_max = 16 * 1024;
  static constexpr std::size_t alignment = 16;

  SlabArena() noexcept;
  ~SlabArena();
  SlabArena(const SlabArena&) = delete;
  SlabArena& operator=(const SlabArena&) = delete;

  // Usable size of the block that allocate(size) returns (>= size). Callers size their arrays
  // to it so no byte of a class is wasted.
  static std::size_t block_size(std::size_t size) noexcept;

  // Never returns nullptr: out of memory aborts (a tracker cannot run half a swarm).
  void* allocate(std::size_t size) noexcept;
  void deallocate(void* block, std::size_t size) noexcept;

  const ArenaStats& stats() const noexcept { return stats_; }

 private:
  static constexpr std::size_t small_classes = 256 / 16;  // 16, 32, ..., 256
  static constexpr std::size_t classes_max = 64;

  struct FreeBlock {
    FreeBlock* next;
  };
  struct SizeClass {
    FreeBlock* free_list = nullptr;
    std::uint8_t* bump = nullptr;      // next unused byte of the current slab
    std::uint8_t* bump_end = nullptr;
  };
  struct Slab {
    Slab* next;
  };

  static std::size_t class_index(std::size_t size) noexcept;
  static std::size_t class_size(std::size_t index) noexcept;

  std::array<SizeClass, classes_max> classes_{};
  Slab* slabs_ = nullptr;
  ArenaStats stats_{};
};

}  // namespace tyto
