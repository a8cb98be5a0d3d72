#include "tyto/core/arena.hpp"

#include <mimalloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>

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

struct SlabArena::Slab {
  Slab* next = nullptr;  // in its class's partial list, or in the free slab list
  Slab* previous = nullptr;
  FreeBlock* free_list = nullptr;
  std::uint8_t* bump = nullptr;  // next never-used byte
  std::uint32_t live = 0;
  std::uint32_t class_index = 0;
  bool in_partial = false;
};

namespace {

constexpr std::size_t slab_header_size = 64;

struct ClassTable {
  std::array<std::uint32_t, SlabArena::classes_max> sizes{};
  std::size_t count = 0;
};

// 8, 16, ..., 256, then about 1/8 apart (rounded up to 8) up to block_size_max.
constexpr ClassTable make_class_table() {
  ClassTable table;
  for (std::uint32_t size = 8; size <= 256; size += 8) table.sizes[table.count++] = size;
  std::uint32_t size = 256;
  while (size < SlabArena::block_size_max) {
    size = std::min<std::uint32_t>((size + size / 8 + 7) / 8 * 8, SlabArena::block_size_max);
    table.sizes[table.count++] = size;
  }
  return table;
}

constexpr ClassTable class_table = make_class_table();
static_assert(class_table.count <= SlabArena::classes_max);
static_assert(class_table.sizes[class_table.count - 1] == SlabArena::block_size_max);
static_assert(SlabArena::slab_size / SlabArena::block_size_max >= 7, "waste at most 1/8");
static_assert(SlabArena::slab_size % 4096 == 0);

[[noreturn]] void out_of_memory(std::size_t size) noexcept {
  std::fprintf(stderr, "tyto: out of memory allocating %zu bytes\n", size);
  std::abort();
}

}  // namespace

SlabArena::SlabArena() noexcept {
  // Reserve address space only (NORESERVE): pages become resident when first touched.
  void* mapped = MAP_FAILED;
  for (reservation_size_ = reservation_size_max; reservation_size_ >= reservation_size_min;
       reservation_size_ /= 2) {
    mapped = mmap(nullptr, reservation_size_ + slab_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapped != MAP_FAILED) break;
  }
  if (mapped == MAP_FAILED) out_of_memory(reservation_size_min);
  reservation_mapped_ = static_cast<std::uint8_t*>(mapped);
  const auto address = reinterpret_cast<std::uintptr_t>(mapped);
  reservation_ = reinterpret_cast<std::uint8_t*>((address + slab_size - 1) & ~(slab_size - 1));
}

SlabArena::~SlabArena() {
  TYTO_UNPOISON(reservation_, slabs_carved_ * slab_size);
  munmap(reservation_mapped_, reservation_size_ + slab_size);
}

std::size_t SlabArena::class_index(std::size_t size) noexcept {
  TYTO_ASSERT(size > 0 && size <= block_size_max);
  if (size <= 256) return (size - 1) / 8;
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

SlabArena::Slab* SlabArena::take_slab(std::size_t index) noexcept {
  SizeClass& size_class = classes_[index];
  Slab* slab = size_class.empty;
  if (slab != nullptr) {
    size_class.empty = slab->next;
    --size_class.empty_count;
    size_class.empty_count_low = std::min(size_class.empty_count_low, size_class.empty_count);
  } else {
    std::uint8_t* memory = nullptr;
    if (free_slabs_ != nullptr) {
      memory = reinterpret_cast<std::uint8_t*>(free_slabs_);
      TYTO_UNPOISON(memory, slab_header_size);
      free_slabs_ = free_slabs_->next;
    } else {
      if ((slabs_carved_ + 1) * slab_size > reservation_size_) out_of_memory(slab_size);
      memory = reservation_ + slabs_carved_++ * slab_size;
    }
    slab = new (memory) Slab();
    slab->class_index = static_cast<std::uint32_t>(index);
    stats_.slab_bytes += slab_size;
    ++stats_.slabs_allocated;
    TYTO_POISON(memory + slab_header_size, slab_size - slab_header_size);
  }
  slab->bump = reinterpret_cast<std::uint8_t*>(slab) + slab_header_size;
  slab->free_list = nullptr;
  slab->live = 0;
  // Link at the head of the class's partial list.
  slab->previous = nullptr;
  slab->next = classes_[index].partial;
  if (slab->next != nullptr) slab->next->previous = slab;
  classes_[index].partial = slab;
  slab->in_partial = true;
  return slab;
}

void SlabArena::keep_empty(Slab* slab) noexcept {
  TYTO_ASSERT(slab->live == 0 && !slab->in_partial);
  SizeClass& size_class = classes_[slab->class_index];
  slab->next = size_class.empty;
  size_class.empty = slab;
  ++size_class.empty_count;
  TYTO_POISON(reinterpret_cast<std::uint8_t*>(slab) + slab_header_size,
              slab_size - slab_header_size);
}

void SlabArena::trim() noexcept {
  for (SizeClass& size_class : classes_) {
    // Slabs that stayed empty since the last trim were not needed; one is kept back.
    TYTO_ASSERT(size_class.empty_count_low <= size_class.empty_count);
    std::uint32_t surplus = size_class.empty_count_low > 0 ? size_class.empty_count_low - 1 : 0;
    for (; surplus > 0; --surplus) {
      Slab* slab = size_class.empty;
      size_class.empty = slab->next;
      --size_class.empty_count;
      give_back(slab);
    }
    size_class.empty_count_low = size_class.empty_count;
  }
}

void SlabArena::give_back(Slab* slab) noexcept {
  stats_.slab_bytes -= slab_size;
  ++stats_.slabs_released;
  madvise(slab, slab_size, MADV_DONTNEED);  // gives the pages back; the range stays reserved
  slab->next = free_slabs_;
  free_slabs_ = slab;
  TYTO_POISON(reinterpret_cast<std::uint8_t*>(slab) + sizeof(Slab*),
              slab_header_size - sizeof(Slab*));
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
  Slab* slab = classes_[index].partial;
  if (slab == nullptr) slab = take_slab(index);
  void* block;
  if (slab->free_list != nullptr) {
    FreeBlock* free_block = slab->free_list;
    TYTO_UNPOISON(free_block, rounded);
    slab->free_list = free_block->next;
    block = free_block;
  } else {
    block = slab->bump;
    slab->bump += rounded;
    TYTO_UNPOISON(block, rounded);
  }
  ++slab->live;
  stats_.block_bytes_in_use += rounded;
  const std::uint8_t* slab_end = reinterpret_cast<std::uint8_t*>(slab) + slab_size;
  if (slab->free_list == nullptr && static_cast<std::size_t>(slab_end - slab->bump) < rounded) {
    // Full: off the partial list until a block comes back.
    classes_[index].partial = slab->next;
    if (slab->next != nullptr) slab->next->previous = nullptr;
    slab->in_partial = false;
  }
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
  auto* slab = reinterpret_cast<Slab*>(reinterpret_cast<std::uintptr_t>(block) & ~(slab_size - 1));
  TYTO_ASSERT(reinterpret_cast<std::uint8_t*>(slab) >= reservation_ &&
              reinterpret_cast<std::uint8_t*>(slab) < reservation_ + slabs_carved_ * slab_size);
  TYTO_ASSERT(slab->class_index == index && slab->live > 0);  // sized free must match
  TYTO_ASSERT(stats_.block_bytes_in_use >= rounded);
  stats_.block_bytes_in_use -= rounded;
  auto* free_block = static_cast<FreeBlock*>(block);
  free_block->next = slab->free_list;
  slab->free_list = free_block;
  TYTO_POISON(reinterpret_cast<std::uint8_t*>(block) + sizeof(FreeBlock),
              rounded - sizeof(FreeBlock));
  SizeClass& size_class = classes_[index];
  if (!slab->in_partial) {
    slab->previous = nullptr;
    slab->next = size_class.partial;
    if (slab->next != nullptr) slab->next->previous = slab;
    size_class.partial = slab;
    slab->in_partial = true;
  }
  if (--slab->live == 0) {
    if (slab->previous != nullptr)
      slab->previous->next = slab->next;
    else
      size_class.partial = slab->next;
    if (slab->next != nullptr) slab->next->previous = slab->previous;
    slab->in_partial = false;
    keep_empty(slab);
  }
}

}  // namespace tyto
