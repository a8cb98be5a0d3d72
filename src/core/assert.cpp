#include "tyto/core/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace tyto::detail {

void assert_failed(const char* expression, const char* file, int line) noexcept {
  std::fprintf(stderr, "tyto: assertion failed: %s (%s:%d)\n", expression, file, line);
  std::abort();
}

}  // namespace tyto::detail
