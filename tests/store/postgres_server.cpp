// The test binary's own PostgreSQL server (postgres_server.hpp).
#include "postgres_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

namespace tyto::store::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int port = 5432;  // only names the socket file, inside our own directory
constexpr auto start_timeout = 30s;
constexpr auto stop_timeout = 10s;

std::unique_ptr<PostgresServer> server;
bool server_tried = false;
std::string server_skip_reason;

std::string find_bin_dir() {
  std::vector<std::string> candidates;
  if (const char* forced = ::getenv("TYTO_PG_BIN"); forced != nullptr) {
    candidates.push_back(forced);
  } else {
    for (const char* version : {"17", "16", "15", "14"}) {
      candidates.push_back(fmt::format("/usr/lib/postgresql/{}/bin", version));
    }
  }
  for (const std::string& dir : candidates) {
    if (::access((dir + "/postgres").c_str(), X_OK) == 0 &&
        ::access((dir + "/initdb").c_str(), X_OK) == 0) {
      return dir;
    }
  }
  return "";
}

// argv run in a new process group (as `uid` when dropping root), output appended to `log`.
int spawn(const std::vector<std::string>& argv, const std::string& log, bool drop_root,
          unsigned uid, unsigned gid) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0) {
    if (pid > 0) ::setpgid(pid, pid);
    return pid;
  }
  ::setpgid(0, 0);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int in = ::open("/dev/null", O_RDONLY);
  if (out >= 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
  }
  if (in >= 0) ::dup2(in, 0);
  if (drop_root && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)) {
    ::_exit(126);
  }
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test binary leaves no server behind
  ::execv(args[0], args.data());
  ::_exit(127);
}

// The exit status, or -1 if it did not end within `timeout`.
int wait_exit(int pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0) return -2;
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

// The postmaster's children (backends make themselves session leaders, so its process group
// does not hold them).
std::vector<int> children_of(int parent) {
  std::vector<int> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return children;
  while (const dirent* entry = ::readdir(proc)) {
    const int pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string line;
    std::getline(stat, line);
    const auto name_end = line.rfind(')');
    if (name_end == std::string::npos) continue;
    std::istringstream rest(line.substr(name_end + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) children.push_back(pid);
  }
  ::closedir(proc);
  return children;
}

std::string log_tail(const std::string& path) {
  std::ifstream log(path);
  std::stringstream text;
  text << log.rdbuf();
  const std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace

PostgresServer* PostgresServer::get(std::string& skip_reason) {
  if (!server_tried) {
    server_tried = true;
    std::unique_ptr<PostgresServer> made(new PostgresServer);
    if (made->init()) {
      server = std::move(made);
    }
  }
  skip_reason = server_skip_reason;
  return server.get();
}

void PostgresServer::shut_down() {
  server.reset();
}

bool PostgresServer::init() {
  bin_dir_ = find_bin_dir();
  if (bin_dir_.empty()) {
    server_skip_reason =
        "PostgreSQL binaries not found (/usr/lib/postgresql/*/bin; apt-get install postgresql, "
        "or set TYTO_PG_BIN): PostgreSQL cases skipped";
    return false;
  }
  char dir_template[] = "/tmp/tyto-pg-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (dir == nullptr) {
    server_skip_reason = "mkdtemp failed";
    return false;
  }
  dir_ = dir;
  data_dir_ = dir_ + "/data";
  if (::geteuid() == 0) {
    // postgres refuses root: run it as nobody, which owns the directory.
    const passwd* user = ::getpwnam("nobody");
    if (user == nullptr) {
      server_skip_reason = "running as root and there is no user 'nobody' to run postgres as";
      return false;
    }
    drop_root_ = true;
    uid_ = user->pw_uid;
    gid_ = user->pw_gid;
    if (::chown(dir_.c_str(), uid_, gid_) != 0) {
      server_skip_reason = "chown of the server directory failed";
      return false;
    }
  }
  const int initdb = spawn({bin_dir_ + "/initdb", "-D", data_dir_, "-U", "tyto", "-A", "trust",
                            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                           dir_ + "/initdb.log", drop_root_, uid_, gid_);
  if (initdb < 0 || wait_exit(initdb, 120s) != 0) {
    server_skip_reason = "initdb failed: " + log_tail(dir_ + "/initdb.log");
    ADD_FAILURE() << server_skip_reason;  // binaries present but broken: a failure, not a skip
    return false;
  }
  if (!start()) {
    server_skip_reason = "postgres did not start: " + log_tail(dir_ + "/postgres.log");
    ADD_FAILURE() << server_skip_reason;
    return false;
  }
  return true;
}

bool PostgresServer::start() {
  const auto deadline = Clock::now() + start_timeout;
  const std::string ping = conninfo("postgres");
  // A restart right after a crash may find the old shared memory still held: try again.
  while (Clock::now() < deadline) {
    pid_ = spawn({bin_dir_ + "/postgres", "-D", data_dir_, "-k", dir_, "-p", std::to_string(port),
                  "-c", "listen_addresses=", "-c", "fsync=off", "-c", "shared_buffers=16MB", "-c",
                  "max_connections=50"},
                 dir_ + "/postgres.log", drop_root_, uid_, gid_);
    if (pid_ < 0) return false;
    while (Clock::now() < deadline) {
      if (PQping(ping.c_str()) == PQPING_OK) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) break;  // exited: try again
      std::this_thread::sleep_for(50ms);
    }
    pid_ = -1;
    std::this_thread::sleep_for(200ms);
  }
  if (pid_ > 0) kill_hard();
  return false;
}

bool PostgresServer::kill_hard() {
  if (pid_ <= 0) return false;
  const std::vector<int> children = children_of(pid_);
  ::kill(-pid_, SIGKILL);
  for (const int child : children) ::kill(child, SIGKILL);
  const bool ended = wait_exit(pid_, stop_timeout) >= 0;
  // The children are not ours to reap: wait until they are gone.
  const auto deadline = Clock::now() + stop_timeout;
  for (const int child : children) {
    while (Clock::now() < deadline && ::kill(child, 0) == 0) {
      std::ifstream stat(fmt::format("/proc/{}/stat", child));
      std::string line;
      std::getline(stat, line);
      if (line.find(") Z") != std::string::npos) break;  // a zombie holds nothing
      std::this_thread::sleep_for(10ms);
    }
  }
  pid_ = -1;
  return ended;
}

void PostgresServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // PostgreSQL's fast shutdown (SIGTERM's "smart" one waits for clients)
  if (wait_exit(pid_, stop_timeout) < 0) kill_hard();
  pid_ = -1;
}

PostgresServer::~PostgresServer() {
  stop();
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

std::string PostgresServer::create_database() {
  const std::string name = fmt::format("tyto_test_{}", ++databases_created_);
  PGconn* admin = PQconnectdb(conninfo("postgres").c_str());
  PGresult* created = PQexec(admin, ("CREATE DATABASE " + name).c_str());
  EXPECT_EQ(PQresultStatus(created), PGRES_COMMAND_OK) << PQerrorMessage(admin);
  PQclear(created);
  PQfinish(admin);
  return name;
}

std::string PostgresServer::conninfo(std::string_view database) const {
  return fmt::format("host={} port={} user=tyto dbname={}", dir_, port, database);
}

std::string PostgresServer::uri(std::string_view database, std::string_view options) const {
  return fmt::format("postgresql:///{}?host={}&port={}&user=tyto{}{}", database, dir_, port,
                     options.empty() ? "" : "&", options);
}

namespace {

class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PostgresServer::shut_down(); }
};

[[maybe_unused]] const ::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

}  // namespace
}  // namespace tyto::store::testing
