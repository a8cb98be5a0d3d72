// The operations endpoint: GET /metrics (Prometheus text), /stats (JSON), /stats/swarm and
// /stats/top, on its own addresses (metrics.listen) and its own thread, so operator traffic never
// runs on a shard's loop. Answers only clients inside metrics.allow (403 otherwise).
//
// The ops thread is a bridge (shard/bridge.hpp): it asks the shards through the control bridge
// and never reads shard memory. It serves up to connections_max connections at once, each one
// request: 2 s to send the request head (4 KiB at most), 1 s for the shards' answers (a shard
// that misses it is reported as unanswered), 2 s to take the reply. Nothing it does blocks: one
// poll over its listeners, its connections, the bridge's eventfd and the stop eventfd. This is an
// operator's port, not a public one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tyto/app/options.hpp"
#include "tyto/shard/bridge_thread.hpp"
#include "tyto/shard/runtime.hpp"

namespace tyto::app {

class OpsServer : private shard::BridgeThread::Client {
 public:
  static constexpr std::size_t connections_max = shard::control_questions_max;

  OpsServer(const Options& options, shard::Runtime& runtime);
  ~OpsServer() override;
  OpsServer(const OpsServer&) = delete;
  OpsServer& operator=(const OpsServer&) = delete;

  // Binds every metrics address (before privileges are dropped) and starts the thread.
  std::string start();
  void stop();

 private:
  struct ShardAnswer {
    std::uint32_t shard;
    shard::ControlAnswer answer;
  };
  enum class Page : std::uint8_t { metrics, stats, swarm, top };
  // One operator request waiting for the shards it asked.
  struct Question {
    Page page = Page::metrics;
    shard::ControlRequest request;
    std::uint32_t asked = 0;  // shards the request went to
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

  const Options& options_;
  shard::Runtime& runtime_;
  std::vector<int> listeners_;
  std::uint64_t started_unix_s_ = 0;
  // The ops thread's own (run()).
  std::vector<std::unique_ptr<Connection>> connections_;
  std::uint64_t serial_ = 0;
  shard::Waker waker_;
  shard::BridgeThread thread_;  // last: stopped (by stop()) before the members it uses go
};

}  // namespace tyto::app
