// The access list file on disk: loading it, and noticing when it changes (polled once a second
// by the main thread; SIGHUP forces a reload).
#pragma once

#include <sys/types.h>

#include <ctime>
#include <memory>
#include <string>

#include "tyto/app/options.hpp"
#include "tyto/core/result.hpp"
#include "tyto/shard/access_list.hpp"

namespace tyto::app {

// Reads and parses `path` as an access list of `mode` (not off). Errors name the file and line.
Result<std::unique_ptr<const shard::AccessList>, std::string> load_access_list(
    const std::string& path, AccessMode mode);

// Whether a file changed (inode, size or modification time, to the nanosecond) since the last
// call; the first call only records. A missing file counts as a state of its own.
class FileWatch {
 public:
  explicit FileWatch(std::string path) : path_(std::move(path)) {}
  bool changed();

 private:
  std::string path_;
  bool recorded_ = false;
  ino_t inode_ = 0;
  off_t size_ = -1;
  timespec modified_{};
};

}  // namespace tyto::app
