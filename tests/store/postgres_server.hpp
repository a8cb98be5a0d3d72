// A PostgreSQL server of the test binary's own: initdb in a temp directory, `postgres` on a Unix
// socket in that directory only (no TCP port to collide with), started at the first use, stopped
// and removed when the binary ends (a GoogleTest Environment, postgres_server.cpp). Debian's
// `postgresql` package gives the binaries; without them the PostgreSQL cases skip.
//
// PostgreSQL refuses to run as root, so as root (CI) initdb and postgres run as `nobody`.
#pragma once

#include <string>
#include <string_view>

namespace tyto::store::testing {

class PostgresServer {
 public:
  // The running server, started on the first call; nullptr (and `skip_reason` set) when the
  // binaries are missing or the server did not start.
  static PostgresServer* get(std::string& skip_reason);
  // Stops the server (if started) and removes its directory.
  static void shut_down();

  // A fresh, empty database; its name.
  std::string create_database();
  // libpq key=value connection string for `database` (the site's connections).
  std::string conninfo(std::string_view database) const;
  // tyto's storage.uri for `database`, `options` appended to its query.
  std::string uri(std::string_view database, std::string_view options = "") const;

  // kill -9 of the postmaster and every backend (its process group), as a crash would.
  bool kill_hard();
  // Starts postgres on the same directory and socket; waits (bounded) until it accepts.
  bool start();

  ~PostgresServer();

 private:
  PostgresServer() = default;
  bool init();
  void stop();

  std::string bin_dir_;
  std::string dir_;       // the socket directory, holding data/ and the log
  std::string data_dir_;  // PGDATA
  int pid_ = -1;          // the postmaster; also its process group
  unsigned uid_ = 0, gid_ = 0;
  bool drop_root_ = false;
  int databases_created_ = 0;
};

}  // namespace tyto::store::testing
