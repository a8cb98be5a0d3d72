#include "tyto/core/arena.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "support/address_space.hpp"

namespace tyto {
namespace {

TEST(SlabArena, BlockSizesAreClassesAtLeastTheRequest) {
  EXPECT_EQ(SlabArena::block_size(1), 8u);
  EXPECT_EQ(SlabArena::block_size(8), 8u);
  EXPECT_EQ(SlabArena::block_size(9), 16u);
  EXPECT_EQ(SlabArena::block_size(72), 72u);
  EXPECT_EQ(SlabArena::block_size(256), 256u);
  std::size_t previous = 0;
  for (std::size_t size = 1; size <= SlabArena::block_size_max; ++size) {
    const std::size_t block = SlabArena::block_size(size);
    ASSERT_GE(block, size);
    ASSERT_GE(block, previous);
    ASSERT_EQ(block % SlabArena::alignment, 0u);
    // Waste stays bounded: at most 1/8 + 8 bytes above the request.
    ASSERT_LE(block, size + size / 8 + 8) << size;
    previous = block;
  }
}

TEST(SlabArena, ReusesFreedBlocksWithoutNewSlabs) {
  SlabArena arena;
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(arena.allocate(48));
  const auto slabs = arena.stats().slabs_allocated;
  EXPECT_GT(slabs, 0u);
  for (void* block : blocks) arena.deallocate(block, 48);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
  for (int i = 0; i < 1000; ++i) blocks[i] = arena.allocate(44);  // same class as 48
  EXPECT_EQ(arena.stats().slabs_allocated, slabs);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 1000u * 48);
  for (void* block : blocks) arena.deallocate(block, 44);
}

// Blocks that come and go (HTTP buffers: one per request) empty and refill slabs at a class's
// boundary all the time; those slabs stay until trim() finds them unneeded for a whole period,
// and then all but one per class go back to the kernel.
TEST(SlabArena, EmptySlabsGoBackOnlyWhenATrimPeriodDidNotNeedThem) {
  SlabArena arena;
  constexpr std::size_t size = SlabArena::block_size_max;  // 7 blocks per slab
  constexpr std::size_t slab_blocks = SlabArena::slab_size / size - 1;
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < 3 * slab_blocks; ++i) blocks.push_back(arena.allocate(size));
  const std::uint64_t slab_bytes_full = arena.stats().slab_bytes;
  ASSERT_EQ(slab_bytes_full, 3 * SlabArena::slab_size);
  // Churn: the last two slabs empty and refill every time (with one spare kept and the rest
  // given back at once, the second would be a madvise each time).
  for (int i = 0; i < 1000; ++i) {
    for (std::size_t j = slab_blocks; j < blocks.size(); ++j) arena.deallocate(blocks[j], size);
    for (std::size_t j = slab_blocks; j < blocks.size(); ++j) blocks[j] = arena.allocate(size);
    if (i % 100 == 0) arena.trim();
  }
  EXPECT_EQ(arena.stats().slabs_released, 0u);
  EXPECT_EQ(arena.stats().slab_bytes, slab_bytes_full);
  for (void* block : blocks) arena.deallocate(block, size);
  blocks.clear();
  EXPECT_EQ(arena.stats().slab_bytes, slab_bytes_full);  // kept: they may be wanted again
  arena.trim();                                          // they emptied during this period: not yet
  EXPECT_EQ(arena.stats().slabs_released, 0u);
  // One of the three is taken and freed again: two stayed empty all through the period.
  arena.deallocate(arena.allocate(size), size);
  arena.trim();
  EXPECT_EQ(arena.stats().slabs_released, 1u);
  EXPECT_EQ(arena.stats().slab_bytes, 2 * SlabArena::slab_size);
  arena.trim();
  EXPECT_EQ(arena.stats().slabs_released, 2u);  // one per class stays
  EXPECT_EQ(arena.stats().slab_bytes, SlabArena::slab_size);
  arena.trim();
  EXPECT_EQ(arena.stats().slabs_released, 2u);
  // Given-back slabs are reused, and their blocks are whole.
  for (std::size_t i = 0; i < 3 * slab_blocks; ++i) {
    blocks.push_back(arena.allocate(size));
    std::memset(blocks.back(), static_cast<int>(i), size);
  }
  EXPECT_EQ(arena.stats().slab_bytes, slab_bytes_full);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    ASSERT_EQ(static_cast<std::uint8_t*>(blocks[i])[size - 1], static_cast<std::uint8_t>(i));
    arena.deallocate(blocks[i], size);
  }
}

TEST(SlabArena, BlocksDoNotOverlapUnderRandomChurn) {
  SlabArena arena;
  std::mt19937_64 random(12345);
  struct Live {
    std::uint8_t* block;
    std::size_t size;
    std::uint8_t fill;
  };
  std::vector<Live> live;
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || random() % 3 != 0) {
      const std::size_t size = 1 + random() % (random() % 8 == 0 ? 40000 : 600);
      auto* block = static_cast<std::uint8_t*>(arena.allocate(size));
      ASSERT_EQ(reinterpret_cast<std::uintptr_t>(block) % SlabArena::alignment, 0u);
      const auto fill = static_cast<std::uint8_t>(step);
      std::memset(block, fill, size);
      live.push_back({block, size, fill});
    } else {
      const std::size_t at = random() % live.size();
      const Live victim = live[at];
      for (std::size_t i = 0; i < victim.size; ++i) ASSERT_EQ(victim.block[i], victim.fill);
      arena.deallocate(victim.block, victim.size);
      live[at] = live.back();
      live.pop_back();
    }
  }
  std::uint64_t expected_in_use = 0;
  for (const Live& entry : live) {
    for (std::size_t i = 0; i < entry.size; ++i) ASSERT_EQ(entry.block[i], entry.fill);
    expected_in_use += SlabArena::block_size(entry.size);
  }
  EXPECT_EQ(arena.stats().block_bytes_in_use, expected_in_use);
  for (const Live& entry : live) arena.deallocate(entry.block, entry.size);
  EXPECT_EQ(arena.stats().block_bytes_in_use, 0u);
  EXPECT_EQ(arena.stats().large_bytes, 0u);
}

}  // namespace
}  // namespace tyto

namespace tyto {
namespace {

// Where address space is limited (ulimit -v, valgrind), the reservation halves until it fits. In
// a child process: allow the current address space plus 40 GiB, so 64 GiB cannot be reserved
// but 32 GiB can, and the arena still serves blocks.
TEST(SlabArena, ReservationShrinksToFitLimitedAddressSpace) {
  const int status = testing::exit_status_with_address_space(std::size_t{40} << 30, [] {
    SlabArena arena;
    void* block = arena.allocate(64);
    if (block == nullptr) return 11;
    arena.deallocate(block, 64);
    return arena.reservation_size() == (std::size_t{32} << 30) ? 0 : 12;
  });
  EXPECT_EQ(status, 0) << "100: no limit set, 101: died, 11: no block, 12: other size";
}

}  // namespace
}  // namespace tyto
