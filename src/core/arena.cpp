#include "tyto/core/arena.hpp"

#include <mimalloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "tyto/core/assert.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define TYTO_POISON(address, size) ASAN_POISON_MEMORY_REGION(address, size)
#define TYTO_UNPOISON(address, size) ASAN_UNPOISON_MEMORY_REGION(address, size)
#else
#define TYTO_POISON(address, size) ((void)(address), (void)(size))
#define TYTO_UNPOISON(address, size) ((void)(address), (void)(size))
#endif

namespace tyto {

namespace {

struct ClassTable {
  std::array<std::uint32_t, 64> sizes{};
  std::size_t count = 0;
};

// 16, 32, ..., 256, then about 1/8 apart (rounded up to 16) up to block_size_max.
constexpr ClassTable make_class_table() {
  ClassTable table;
  for (std::uint32_t size = 16; size <= 256; size += 16) table.sizes[table.count++] = size;
  std::uint32_t size = 256;
  while (size < SlabArena::block_size_max) {
    size = std::min<std::uint32_t>((size + size / 8 + 15) / 16 * 16, SlabArena::block_size_max);
    table.sizes[table.count++] = size;
  }
  return table;
}

constexpr ClassTable class_table = make_class_table();
static_assert(class_table.count <= 64);
static_assert(class_table.sizes[class_table.count - 1] == SlabArena::block_size_max);
static_assert(SlabArena::slab_size % SlabArena::block_size_max == 0);

[[noreturn]] void out_of_memory(std::size_t size) noexcept {
  std::fprintf(stderr, "tyto: out of memory allocating %zu bytes\n", size);
  std::abort();
}

}  // namespace

SlabArena::SlabArena() noexcept = default;

SlabArena::~SlabArena() {
  while (slabs_ != nullptr) {
    Slab* next = slabs_->next;
    TYTO_UNPOISON(slabs_, slab_size);
    mi_free(slabs_);
    slabs_ = next;
  }
}

std::size_t SlabArena::class_index(std::size_t size) noexcept {
  TYTO_ASSERT(size > 0 && size <= block_size_max);
  if (size <= 256) return (size - 1) / 16;
  const auto* begin = class_table.sizes.data() + small_classes;
  const auto* end = class_table.sizes.data() + class_table.count;
  return static_cast<std::size_t>(std::lower_bound(begin, end, size) - class_table.sizes.data());
}

std::size_t SlabArena::class_size(std::size_t index) noexcept {
  TYTO_ASSERT(index < class_table.count);
  return class_table.sizes[index];
}

std::size_t SlabArena::block_size(std::size_t size) noexcept {
  if (size == 0) size = 1;
  if (size > block_size_max) return (size + alignment - 1) / alignment * alignment;
  return class_size(class_index(size));
}

void* SlabArena::allocate(std::size_t size) noexcept {
  if (size == 0) size = 1;
  if (size > block_size_max) {
    const std::size_t rounded = block_size(size);
    void* block = mi_malloc_aligned(rounded, alignment);
    if (block == nullptr) out_of_memory(rounded);
    stats_.large_bytes += rounded;
    stats_.block_bytes_in_use += rounded;
    ++stats_.large_allocations;
    return block;
  }
  const std::size_t index = class_index(size);
  const std::size_t rounded = class_size(index);
  SizeClass& size_class = classes_[index];
  stats_.block_bytes_in_use += rounded;
  if (FreeBlock* block = size_class.free_list; block != nullptr) {
    TYTO_UNPOISON(block, rounded);
    size_class.free_list = block->next;
    return block;
  }
  if (size_class.bump == nullptr ||
      static_cast<std::size_t>(size_class.bump_end - size_class.bump) < rounded) {
    // New slab. The first 16 bytes link the slab list; the rest is carved for this class.
    auto* slab = static_cast<std::uint8_t*>(mi_malloc_aligned(slab_size, alignment));
    if (slab == nullptr) out_of_memory(slab_size);
    reinterpret_cast<Slab*>(slab)->next = slabs_;
    slabs_ = reinterpret_cast<Slab*>(slab);
    stats_.slab_bytes += slab_size;
    ++stats_.slabs_allocated;
    size_class.bump = slab + alignment;
    size_class.bump_end = slab + slab_size;
    TYTO_POISON(size_class.bump, slab_size - alignment);
  }
  std::uint8_t* block = size_class.bump;
  size_class.bump += rounded;
  TYTO_UNPOISON(block, rounded);
  return block;
}

void SlabArena::deallocate(void* block, std::size_t size) noexcept {
  if (block == nullptr) return;
  if (size == 0) size = 1;
  if (size > block_size_max) {
    const std::size_t rounded = block_size(size);
    TYTO_ASSERT(stats_.large_bytes >= rounded);
    stats_.large_bytes -= rounded;
    stats_.block_bytes_in_use -= rounded;
    mi_free(block);
    return;
  }
  const std::size_t index = class_index(size);
  const std::size_t rounded = class_size(index);
  TYTO_ASSERT(stats_.block_bytes_in_use >= rounded);
  stats_.block_bytes_in_use -= rounded;
  auto* free_block = static_cast<FreeBlock*>(block);
  free_block->next = classes_[index].free_list;
  classes_[index].free_list = free_block;
  TYTO_POISON(reinterpret_cast<std::uint8_t*>(block) + sizeof(FreeBlock),
              rounded - sizeof(FreeBlock));
}

}  // namespace tyto
