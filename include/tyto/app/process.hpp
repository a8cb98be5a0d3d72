// Process hygiene: what tyto checks and changes about its own process around binding.
#pragma once

#include <string>

#include "tyto/app/options.hpp"

namespace tyto::app {

// What a start would trip on outside the configuration's text: the user exists, the chroot is
// a directory. "" when nothing (--check-config runs this too).
std::string check_environment(const Options& options);

// Refuses root unless a user to drop to is given or root is explicitly allowed. "" or why.
std::string root_refusal(const Options& options);

// After binding: chroot (when set), then drop to options.user and its groups, for every thread
// of the process (glibc broadcasts set*id to all threads); checks that root cannot be regained.
// "" or what failed. Nothing to do when options.user is empty.
std::string drop_privileges(const Options& options);

// A configured path as seen before the chroot (at start) when a chroot is set.
std::string path_before_chroot(const Options& options, const std::string& path);

}  // namespace tyto::app
