// The operations endpoint: GET /metrics (Prometheus text), /stats (JSON), /stats/swarm,
// /stats/top, and the dashboard (GET / and /dashboard.json, app/dashboard.hpp), on its own
// addresses (metrics.listen) and its own thread, so operator traffic never runs on a shard's loop.
// Answers only clients inside metrics.allow (403 otherwise).
//
// The ops thread is a bridge (shard/bridge.hpp): it asks the shards through the control bridge
// and never reads shard memory. It serves up to connections_max connections at once, each one
// request: 2 s to send the request head (4 KiB at most), 1 s for the shards' answers (a shard
// that misses it is reported as unanswered), 2 s to take the reply. Nothing it does blocks: one
// poll over its listeners, its connections, the bridge's eventfd and the stop eventfd. This is an
// operator's port, not a public one.
//
// Once a second, whether or not anyone looks, it also asks every shard for its counters (one
// question per shard, 900 ms to answer) and records them in the dashboard's history; a
// /dashboard.json request reads that sample; the top swarms (a scan of every swarm on each shard)
// are asked at most once per top_refresh per key, however many pages poll, and served from the
// last answer in between.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tyto/app/dashboard.hpp"
#include "tyto/app/options.hpp"
#include "tyto/app/snapshot_writer.hpp"
#include "tyto/app/storage_client.hpp"
#include "tyto/shard/bridge_thread.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::cluster {
struct ClusterStatus;
}

namespace tyto::app {

class OpsServer : private shard::BridgeThread::Client {
 public:
  static constexpr std::size_t connections_max = shard::control_questions_max;
  static constexpr auto top_refresh = std::chrono::seconds(5);

  OpsServer(const Options& options, shard::Runtime& runtime);
  ~OpsServer() override;
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  // Before start(): the private tracker's storage thread, whose status is exported as
  // tyto_storage_*, in /stats' "storage" and as the dashboard's accounting section.
  void set_storage_status(const StorageStatus* status) noexcept { storage_status_ = status; }
  // Before start(): the periodic snapshot writer's status, exported as tyto_snapshot_* and in
  // /stats' "snapshot".
  void set_snapshot_status(const SnapshotStatus* status) noexcept { snapshot_status_ = status; }
  // Before start(): the cluster client's status, exported as tyto_cluster_*, in /stats'
  // "cluster" and as the dashboard's cluster section.
  void set_cluster_status(const cluster::ClusterStatus* status) noexcept {
    cluster_status_ = status;
  }
  // Binds every metrics address (before privileges are dropped) and starts the thread.
  std::string start();
  void stop();

 private:
  struct ShardAnswer {
    std::uint32_t shard;
    shard::ControlAnswer answer;
  };
  enum class Page : std::uint8_t { metrics, stats, swarm, top, dashboard };
  // One operator request waiting for the shards it asked.
  struct Question {
    Page page = Page::metrics;
    shard::ControlRequest request;
    std::uint32_t asked = 0;         // shards the request went to
    std::uint64_t since_second = 0;  // dashboard: history after this second
    std::vector<ShardAnswer> answers;
  };
  struct Connection;

  using Clock = shard::BridgeThread::Clock;
  void watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) override;
  void turn(std::span<const pollfd> polled) override;
  void accept_from(int listener) noexcept;
  void read_head(Connection& connection) noexcept;
  void ask(Connection& connection, Question question) noexcept;
  void take_answers() noexcept;
  void write_reply(Connection& connection) noexcept;
  void finish_question(Connection& connection);
  // The reply to a request that needs no shard, or the question to ask the shards.
  std::string plan(std::string_view method, std::string_view target, Question& question);
  std::string render(const Question& question);
  std::string metrics(const Question& question);
  std::string stats(const Question& question);
  std::string storage_json() const;
  std::string cluster_json() const;
  // The dashboard's answer from the last sample and the top list cached for `order`.
  std::string dashboard(std::uint64_t since_second, store::TopOrder order, std::uint32_t count);
  std::vector<store::SwarmStatistics> merged_top(const Question& question) const;
  // The history's sample: asked when due, recorded when every shard answered or at its deadline.
  void sample(Clock::time_point now) noexcept;
  void record_sample() noexcept;

  const Options& options_;
  shard::Runtime& runtime_;
  std::vector<int> listeners_;
  std::uint64_t started_unix_s_ = 0;
  // The ops thread's own (run()).
  std::vector<std::unique_ptr<Connection>> connections_;
  std::uint64_t serial_ = 0;
  shard::Waker waker_;
  std::unique_ptr<DashboardHistory> history_;
  Clock::time_point started_at_;
  Clock::time_point sample_due_;       // the next sample's time (when none is out)
  Clock::time_point sample_deadline_;  // the one out: recorded then with what came
  std::uint64_t sample_serial_ = 0;    // 0: no sample out
  std::uint64_t sample_second_ = 0;
  std::uint32_t sample_asked_ = 0;
  std::vector<shard::ShardTotals> sample_totals_;  // per shard, this sample's answers
  std::vector<DashboardHistory::Sample> sample_answers_;
  // The dashboard's top lists, one per store::TopOrder: what the last question for it got.
  struct TopCache {
    Clock::time_point asked_at;
    bool asked = false;
    std::uint32_t count = 0;  // what was asked; a request for more asks again
    std::uint32_t shards_unanswered = 0;
    std::vector<store::SwarmStatistics> swarms;
  };
  std::array<TopCache, std::size(store::top_order_names)> top_cache_;
  const StorageStatus* storage_status_ = nullptr;
  const SnapshotStatus* snapshot_status_ = nullptr;
  const cluster::ClusterStatus* cluster_status_ = nullptr;
  shard::BridgeThread thread_;  // last: stopped (by stop()) before the members it uses go
};

}  // namespace tyto::app
