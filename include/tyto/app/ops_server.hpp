// The operations endpoint: GET /metrics (Prometheus text), /stats (JSON), /stats/swarm and
// /stats/top, on its own addresses (metrics.listen) and its own thread, so operator traffic never
// runs on a shard's loop. Answers only clients inside metrics.allow (403 otherwise).
//
// The thread asks the shards through the runtime's control channel (one question at a time,
// 1 s timeout per question) and never reads shard memory. One connection at a time, one request
// per connection, 2 s to send the request head (4 KiB at most): this is an operator's port,
// not a public one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tyto/app/options.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::app {

class OpsServer {
 public:
  OpsServer(const Options& options, shard::Runtime& runtime);
  ~OpsServer();
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  // Binds every metrics address (before privileges are dropped) and starts the thread.
  std::string start();
  void stop();

  // The response to one request target ("/stats/top?by=seeders&n=5"), status line included.
  // Public for tests; runs on the ops thread.
  std::string respond(std::string_view method, std::string_view target);

 private:
  void run() noexcept;
  void serve(int connection) noexcept;
  std::string metrics();
  std::string stats();
  std::string swarm_stats(std::string_view query);
  std::string top_stats(std::string_view query);
  struct ShardAnswer {
    std::uint32_t shard;
    shard::ControlAnswer answer;
  };
  // Every shard's answer to `request` (missing shards are left out and counted in `missing`).
  std::vector<ShardAnswer> ask_all(shard::ControlKind kind, std::uint32_t& missing,
                                   swarm::TopOrder order = {}, std::uint32_t count = 0);

  const Options& options_;
  shard::Runtime& runtime_;
  std::vector<int> listeners_;
  int stop_fd_ = -1;  // eventfd
  std::thread thread_;
  std::uint64_t started_unix_s_ = 0;
};

}  // namespace tyto::app
