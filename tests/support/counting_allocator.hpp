// Replaces the global operator new and delete to count every allocation, for the tests that
// prove a path allocates nothing. Include it in exactly one source file of a test executable
// (replacement functions are defined once per program), then read allocations_count().
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace tyto::testing {
inline std::atomic<std::uint64_t> allocations{0};
inline std::uint64_t allocations_count() noexcept {
  return allocations.load(std::memory_order_relaxed);
}
}  // namespace tyto::testing

void* operator new(std::size_t size) {
  tyto::testing::allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* block = std::malloc(size == 0 ? 1 : size)) return block;
  throw std::bad_alloc();
}
void operator delete(void* block) noexcept {
  std::free(block);
}
void operator delete(void* block, std::size_t) noexcept {
  std::free(block);
}
