// Assertions. TYTO_ASSERT is cheap and always on (release too): a broken invariant stops the
// process rather than corrupting swarms. TYTO_DEBUG_ASSERT is for O(n) checks and owner-shard
// checks; it compiles to nothing under NDEBUG.
#pragma once

namespace tyto::detail {
[[noreturn]] void assert_failed(const char* expression, const char* file, int line) noexcept;
}  // namespace tyto::detail

#define TYTO_ASSERT(expression)                                       \
  do {                                                                \
    if (!(expression)) [[unlikely]]                                   \
      ::tyto::detail::assert_failed(#expression, __FILE__, __LINE__); \
  } while (false)

#ifdef NDEBUG
#define TYTO_DEBUG_ASSERT(expression) \
  do {                                \
  } while (false)
#else
#define TYTO_DEBUG_ASSERT(expression) TYTO_ASSERT(expression)
#endif
