// Test support: run a piece of a test in a forked child under a limited address space
// (RLIMIT_AS), as ulimit -v or valgrind would leave it, without limiting the test process.
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

namespace tyto::testing {

inline constexpr int address_space_not_limited = 100;  // the limit could not be set
inline constexpr int address_space_child_died = 101;   // killed by a signal (an assertion)

// Runs body() in a child whose address space is what it maps now plus `headroom_bytes`, and
// returns the child's exit status: body()'s return value (0 for success) or one of the above.
template <class Body>
int exit_status_with_address_space(std::size_t headroom_bytes, Body&& body) {
  const pid_t child = fork();
  if (child < 0) return address_space_child_died;
  if (child == 0) {
    std::size_t mapped_kib = 0;
    if (std::FILE* status = std::fopen("/proc/self/status", "r")) {
      char line[256];
      while (std::fgets(line, sizeof line, status) != nullptr) {
        if (std::sscanf(line, "VmSize: %zu kB", &mapped_kib) == 1) break;
      }
      std::fclose(status);
    }
    const rlim_t limit = mapped_kib * 1024 + headroom_bytes;
    const rlimit address_space{limit, limit};
    if (mapped_kib == 0 || setrlimit(RLIMIT_AS, &address_space) != 0) {
      _exit(address_space_not_limited);
    }
    _exit(body());
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return address_space_child_died;
  return WEXITSTATUS(status);
}

}  // namespace tyto::testing
