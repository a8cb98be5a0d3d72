#include "tyto/app/access_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tyto::app {

Result<std::unique_ptr<const shard::AccessList>, std::string> load_access_list(
    const std::string& path, AccessMode mode) {
  std::ifstream file(path);
  if (!file) return Failure{"cannot read access list " + path + ": " + std::strerror(errno)};
  std::ostringstream text;
  text << file.rdbuf();
  auto parsed =
      shard::AccessList::parse(text.str(),
                               mode == AccessMode::whitelist ? shard::AccessList::Mode::whitelist
                                                             : shard::AccessList::Mode::blacklist,
                               path);
  if (!parsed.ok()) return Failure{parsed.error()};
  return std::unique_ptr<const shard::AccessList>(std::move(parsed.value()));
}

bool FileWatch::changed() {
  struct stat status {};
  const bool exists = stat(path_.c_str(), &status) == 0;
  const ino_t inode = exists ? status.st_ino : 0;
  const off_t size = exists ? status.st_size : -1;
  const timespec modified = exists ? status.st_mtim : timespec{};
  const bool differs = inode != inode_ || size != size_ || modified.tv_sec != modified_.tv_sec ||
                       modified.tv_nsec != modified_.tv_nsec;
  const bool first = !recorded_;
  recorded_ = true;
  inode_ = inode;
  size_ = size;
  modified_ = modified;
  return differs && !first;
}

}  // namespace tyto::app
