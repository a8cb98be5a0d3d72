#include "tyto/app/process.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tyto::app {

std::string check_environment(const Options& options) {
  if (!options.user.empty() && getpwnam(options.user.c_str()) == nullptr) {
    return "process.user: no such user '" + options.user + "'";
  }
  if (!options.chroot_dir.empty()) {
    struct stat status {};
    if (stat(options.chroot_dir.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
      return "process.chroot: not a directory: " + options.chroot_dir;
    }
  }
  return {};
}

std::string root_refusal(const Options& options) {
  // --migrate binds nothing and serves nobody: it only brings the schema up to date.
  if (geteuid() != 0 || !options.user.empty() || options.allow_root || options.migrate) return {};
  return "refusing to run as root: set process.user (--user NAME) to drop privileges after "
         "binding, or process.allow_root (--allow-root)";
}

std::string drop_privileges(const Options& options) {
  if (options.user.empty()) return {};
  errno = 0;
  const passwd* entry = getpwnam(options.user.c_str());
  if (entry == nullptr) return "process.user: no such user '" + options.user + "'";
  const uid_t uid = entry->pw_uid;
  const gid_t gid = entry->pw_gid;
  if (initgroups(options.user.c_str(), gid) != 0) {
    return "initgroups(" + options.user + "): " + std::strerror(errno);
  }
  if (!options.chroot_dir.empty()) {
    if (chroot(options.chroot_dir.c_str()) != 0 || chdir("/") != 0) {
      return "chroot(" + options.chroot_dir + "): " + std::strerror(errno);
    }
  }
  if (setgid(gid) != 0) return "setgid: " + std::string(std::strerror(errno));
  if (setuid(uid) != 0) return "setuid: " + std::string(std::strerror(errno));
  if (uid != 0 && (setuid(0) == 0 || geteuid() == 0)) return "root could be regained";
  return {};
}

std::string path_before_chroot(const Options& options, const std::string& path) {
  if (options.chroot_dir.empty() || path.empty()) return path;
  return options.chroot_dir + (path.front() == '/' ? "" : "/") + path;
}

}  // namespace tyto::app
