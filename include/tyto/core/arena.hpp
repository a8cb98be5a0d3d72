// SlabArena: a shard-local allocator for variable-size blocks (peer arrays, indexes).
//
// Blocks are served from size classes: multiples of 8 bytes up to 256, then steps of about 1/8
// up to block_size_max. Each class carves blocks out of 128 KiB slabs; a slab belongs to one
// class and counts its live blocks. A slab whose last block is freed stays with its class, empty
// and resident, until trim() (the owner calls it about once a second) gives back to the kernel
// (madvise) the empty slabs the class did not need since the last trim, keeping one per class.
// Without the return, a swarm table that grows every swarm through the classes would keep every
// class's slabs forever; without the delay, blocks that come and go on every request (HTTP
// buffers) would cost a madvise and a TLB flush each time a slab at a boundary emptied. Slabs
// are carved from one virtual reservation per arena (aligned, so a block finds its slab by
// masking); blocks above block_size_max come from mimalloc.
// Callers pass the size back on deallocate (sized free): no header per block.
//
// Ownership: one arena per shard; not thread-safe. Under AddressSanitizer free blocks are
// poisoned, so a use after free inside a slab is still reported.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tyto {

struct ArenaStats {
  std::uint64_t slab_bytes = 0;          // slabs in use or empty (resident upper bound)
  std::uint64_t large_bytes = 0;         // memory in blocks above block_size_max
  std::uint64_t block_bytes_in_use = 0;  // sum of class sizes of live blocks (incl. large)
  std::uint64_t slabs_allocated = 0;     // slabs taken from the reservation, ever
  std::uint64_t slabs_released = 0;      // slabs given back to the kernel, ever
  std::uint64_t large_allocations = 0;   // large allocations ever
};

class SlabArena {
 public:
  static constexpr std::size_t slab_size = 128 * 1024;
  static constexpr std::size_t block_size_max = 16 * 1024;
  static constexpr std::size_t alignment = 8;
  static constexpr std::size_t classes_max = 72;  // 32 small + about 36 steps of 1/8
  // Virtual address space reserved per arena; only touched pages are resident. Where the address
  // space is limited (ulimit -v, valgrind) the reservation halves until it fits, down to 1 GiB.
  static constexpr std::size_t reservation_size_max = std::size_t{64} << 30;
  static constexpr std::size_t reservation_size_min = std::size_t{1} << 30;
  std::size_t reservation_size() const noexcept { return reservation_size_; }

  SlabArena() noexcept;
  ~SlabArena();
  SlabArena(const SlabArena&) = delete;
  SlabArena& operator=(const SlabArena&) = delete;

  // Usable size of the block that allocate(size) returns (>= size).
  static std::size_t block_size(std::size_t size) noexcept;

  // Never returns nullptr: out of memory aborts (a tracker cannot run half a swarm).
  void* allocate(std::size_t size) noexcept;
  void deallocate(void* block, std::size_t size) noexcept;

  // Gives back the empty slabs that a class held throughout the time since the last call, but
  // one per class. Never on the hot path: once a second or so.
  void trim() noexcept;

  const ArenaStats& stats() const noexcept { return stats_; }

 private:
  static constexpr std::size_t small_classes = 256 / 8;  // 8, 16, ..., 256

  struct FreeBlock {
    FreeBlock* next;
  };
  struct Slab;
  struct SizeClass {
    Slab* partial = nullptr;  // slabs with room, doubly linked
    Slab* empty = nullptr;    // empty slabs kept resident, singly linked, last emptied first
    std::uint32_t empty_count = 0;
    std::uint32_t empty_count_low = 0;  // the fewest empty slabs since the last trim()
  };

  static std::size_t class_index(std::size_t size) noexcept;
  static std::size_t class_size(std::size_t index) noexcept;
  Slab* take_slab(std::size_t class_index) noexcept;
  void keep_empty(Slab* slab) noexcept;
  void give_back(Slab* slab) noexcept;

  std::array<SizeClass, classes_max> classes_{};
  std::uint8_t* reservation_ = nullptr;  // slab_size-aligned
  std::uint8_t* reservation_mapped_ = nullptr;
  std::size_t reservation_size_ = 0;
  std::size_t slabs_carved_ = 0;  // slabs handed out of the reservation so far
  Slab* free_slabs_ = nullptr;    // released slabs, reusable
  ArenaStats stats_{};
};

}  // namespace tyto
