#include "tyto/shard/runtime.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "tyto/core/assert.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/net/steering.hpp"

namespace tyto::shard {

Runtime::Runtime(RuntimeConfig config) : config_(std::move(config)) {}

Runtime::~Runtime() {
  stop();
}

std::string Runtime::start() {
  const auto count = static_cast<std::uint32_t>(config_.cores.size());
  if (count == 0 || count > shards_max) return "between 1 and 64 shards are supported";
  directory_ = std::make_unique<ShardDirectory>(
      count,
      config_.shard_key_seed ? ShardKey::from_seed(*config_.shard_key_seed) : ShardKey::random(),
      config_.shard.clock_speedup);
  if (std::string error = directory_->control.init(count); !error.empty()) return error;
  if (std::string error = directory_->snapshot.init(count); !error.empty()) return error;
  if (config_.shard.cluster) {
    if (std::string error = directory_->cluster.init(count); !error.empty()) return error;
    if (std::string error = directory_->cluster_snapshot.init(count); !error.empty()) return error;
  }
  if (config_.shard.private_tracker.enabled || config_.shard.catalogue_whitelist ||
      config_.shard.completions_persisted) {
    if (std::string error = directory_->storage.init(count); !error.empty()) return error;
    directory_->catalogue_rows = catalogue_rows_;
    directory_->baselines = baselines_;
    directory_->completions = completions_;
  }
  directory_->access_list.store(access_list_.get());
  directory_->snapshot_records = snapshot_records_;
  directory_->snapshot_extra_age_s = snapshot_extra_age_s_;
  const auto connection_ids = config_.connection_id_key
                                  ? proto::ConnectionIds::from_key(*config_.connection_id_key)
                                  : proto::ConnectionIds::random();
  const HashSecret secret = HashSecret::random();
  for (std::uint32_t i = 0; i < count; ++i) {
    shards_.push_back(
        std::make_unique<Shard>(i, config_.shard, *directory_, connection_ids, secret));
  }
  // Shard by shard, so that each UDP socket's index in its reuseport group is its shard's index
  // (the steering program returns shard indexes), before any thread starts.
  for (std::uint32_t i = 0; i < count; ++i) {
    if (std::string error = shards_[i]->bind_udp(); !error.empty()) {
      return "shard " + std::to_string(i) + ": " + error;
    }
  }
  if (count > 1 && config_.shard.udp_steering == net::UdpSteering::info_hash) {
    for (std::uint32_t listener = 0; listener < config_.shard.udp_listeners.size(); ++listener) {
      if (std::string error = net::attach_announce_steering(shards_[0]->udp_fd(listener),
                                                            directory_->shard_key, count);
          !error.empty()) {
        return "UDP steering on " + config_.shard.udp_listeners[listener].to_string() + ": " +
               error;
      }
    }
  }
  threads_.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    threads_.emplace_back([this, i] {
      cpu_set_t cpus;
      CPU_ZERO(&cpus);
      CPU_SET(config_.cores[i], &cpus);
      std::string error;
      if (pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus) != 0) {
        error =
            "cannot pin shard " + std::to_string(i) + " to CPU " + std::to_string(config_.cores[i]);
      }
      if (error.empty()) error = shards_[i]->open();
      // Every ring fd is published before any loop runs: wait for all shards, then go.
      std::unique_lock lock(start_mutex_);
      if (!error.empty() && start_error_.empty())
        start_error_ = "shard " + std::to_string(i) + ": " + error;
      ++shards_opened_;
      start_changed_.notify_all();
      start_changed_.wait(lock, [this] { return start_decided_; });
      const bool run = start_error_.empty();
      lock.unlock();
      if (run) shards_[i]->run();
    });
  }
  std::string error;
  {
    std::unique_lock lock(start_mutex_);
    start_changed_.wait(lock, [this, count] { return shards_opened_ == count; });
    error = start_error_;
    if (!error.empty()) directory_->stopping.store(true);
    start_decided_ = true;
  }
  start_changed_.notify_all();
  // Every shard has restored its part (open() precedes the go-ahead): the records can go.
  directory_->snapshot_records = {};
  std::vector<std::uint8_t>().swap(snapshot_records_);
  directory_->catalogue_rows = nullptr;
  directory_->baselines = {};
  directory_->completions = {};
  if (!error.empty()) stop();
  return error;
}

void Runtime::set_snapshot(std::vector<std::uint8_t> records, std::uint32_t extra_age_s) {
  TYTO_ASSERT(directory_ == nullptr);  // before start()
  snapshot_records_ = std::move(records);
  snapshot_extra_age_s_ = extra_age_s;
}

void Runtime::set_catalogue(const store::CatalogueRows* rows,
                            std::span<const store::Baseline> baselines) {
  TYTO_ASSERT(directory_ == nullptr);  // before start()
  catalogue_rows_ = rows;
  baselines_ = baselines;
}

void Runtime::set_completions(std::span<const store::CompletionCount> completions) {
  TYTO_ASSERT(directory_ == nullptr);  // before start()
  completions_ = completions;
}

Runtime::Restored Runtime::restored() const noexcept {
  if (directory_ == nullptr) return {};
  return {directory_->restored_swarms.load(), directory_->restored_peers.load()};
}

std::vector<std::uint8_t> Runtime::snapshot_records(std::uint64_t& swarms) const {
  TYTO_ASSERT(threads_.empty());  // only once the shards stopped
  std::vector<std::uint8_t> records;
  swarms = 0;
  for (const auto& shard : shards_) swarms += shard->append_snapshot(records);
  return records;
}

void Runtime::stop() {
  if (stopped_ || directory_ == nullptr) return;
  stopped_ = true;
  directory_->stopping.store(true, std::memory_order_seq_cst);
  // Wake every shard, sleeping or about to.
  Waker waker;
  [[maybe_unused]] const std::string no_waker = waker.init();  // without: shards tick in 1 s
  for (std::uint32_t i = 0; i < directory_->shards_count; ++i) waker.wake(directory_->presence[i]);
  waker.flush();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

ShardTotals Runtime::totals() const {
  TYTO_ASSERT(threads_.empty());  // only once the shards stopped
  ShardTotals totals;
  for (const auto& shard : shards_) totals.add(shard->totals());
  return totals;
}

void Runtime::set_access_list(std::unique_ptr<const AccessList> list) {
  std::unique_ptr<const AccessList> old = std::move(access_list_);
  access_list_ = std::move(list);
  if (directory_ == nullptr || stopped_) return;  // nobody reads it
  directory_->access_list.store(access_list_.get(), std::memory_order_seq_cst);
  const std::uint64_t epoch = directory_->access_epoch.load(std::memory_order_relaxed) + 1;
  directory_->access_epoch.store(epoch, std::memory_order_seq_cst);
  if (old == nullptr) return;
  Waker waker;
  [[maybe_unused]] const std::string no_waker = waker.init();  // without: shards tick in 1 s
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    bool all_moved = true;
    for (std::uint32_t i = 0; i < directory_->shards_count; ++i) {
      if (directory_->entries[i].access_epoch_seen.load(std::memory_order_seq_cst) < epoch) {
        all_moved = false;
        waker.wake(directory_->presence[i]);
      }
    }
    if (all_moved) return;  // `old` is freed here: no shard can still hold it
    if (std::chrono::steady_clock::now() > deadline) {
      retired_access_lists_.push_back(std::move(old));
      return;
    }
    waker.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::uint32_t Runtime::owner_of(const InfoHash& info_hash) const noexcept {
  return shard_of(info_hash, directory_->shard_key, directory_->shards_count);
}

std::vector<int> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto dash = item.find('-');
    const std::string_view first_text = item.substr(0, dash);
    const std::string_view last_text =
        dash == std::string_view::npos ? first_text : item.substr(dash + 1);
    int first = -1;
    int last = -1;
    const auto a = std::from_chars(first_text.data(), first_text.data() + first_text.size(), first);
    const auto b = std::from_chars(last_text.data(), last_text.data() + last_text.size(), last);
    if (a.ec != std::errc{} || a.ptr != first_text.data() + first_text.size() ||
        b.ec != std::errc{} || b.ptr != last_text.data() + last_text.size() || first < 0 ||
        last < first || last >= CPU_SETSIZE) {
      return {};
    }
    for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

std::vector<int> allowed_cpus() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  std::vector<int> result;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0) return {0};
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &cpus)) result.push_back(cpu);
  }
  return result;
}

}  // namespace tyto::shard
