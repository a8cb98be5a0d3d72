#include "tyto/app/snapshot_writer.hpp"

#include <algorithm>

#include "tyto/app/snapshot.hpp"
#include "tyto/core/assert.hpp"
#include "tyto/core/clock.hpp"
#include "tyto/core/log.hpp"

namespace tyto::app {

std::vector<shard::CounterRow> SnapshotStatus::rows() const {
  auto read = [](const std::atomic<std::uint64_t>& field) {
    return field.load(std::memory_order_relaxed);
  };
  return {
      {"written", "periodic snapshots written", false, read(written)},
      {"failures", "periodic snapshots not written (the reason is logged)", false, read(failures)},
      {"last_duration_ms", "the last periodic snapshot: request to rename, in milliseconds", true,
       read(last_duration_ms)},
      {"last_bytes", "the last periodic snapshot's file size", true, read(last_bytes)},
      {"last_swarms", "swarms in the last periodic snapshot", true, read(last_swarms)},
      {"last_unix_seconds", "when the last periodic snapshot was asked for (Unix time)", true,
       read(last_unix_s)},
  };
}

SnapshotWriter::SnapshotWriter(std::string path, std::chrono::seconds interval,
                               shard::SnapshotBridge& bridge, std::span<shard::Presence> shards,
                               SnapshotStatus& status)
    : path_(std::move(path)),
      interval_(interval),
      bridge_(bridge),
      shards_(shards),
      status_(status),
      next_at_(Clock::now() + interval),
      shard_done_(shards.size()) {
  TYTO_ASSERT(interval.count() > 0 && !shards.empty());
}

SnapshotWriter::~SnapshotWriter() = default;

std::string SnapshotWriter::init() {
  return waker_.init();
}

void SnapshotWriter::watch(std::vector<pollfd>&, Clock::time_point& wake_at) {
  const auto deadline =
      collecting_ ? started_at_ + std::max<Clock::duration>(interval_, collect_timeout_min)
                  : next_at_;
  wake_at = std::min(wake_at, deadline);
}

void SnapshotWriter::turn(std::span<const pollfd>) {
  bridge_.receive(
      [this](std::uint32_t shard, const shard::SnapshotPiece& piece) { take(shard, piece); });
  const auto now = Clock::now();
  if (collecting_ && shards_left_ == 0) {
    finish(now);
  } else if (collecting_ &&
             now >= started_at_ + std::max<Clock::duration>(interval_, collect_timeout_min)) {
    abandon(now, "the shards did not finish it in time");
  }
  if (!collecting_ && now >= next_at_) begin(now);
}

// A new generation to every shard (a shard still on an older one starts over).
void SnapshotWriter::begin(Clock::time_point now) {
  ++generation_;
  collecting_ = true;
  started_at_ = now;
  started_unix_s_ = unix_time_s();
  swarms_ = 0;
  std::fill(shard_done_.begin(), shard_done_.end(), false);
  shards_left_ = static_cast<std::uint32_t>(shards_.size());
  bool sent = true;
  for (std::uint32_t i = 0; i < shards_.size(); ++i) {
    sent = bridge_.send(i, shard::SnapshotRequest{generation_}) && sent;
  }
  bridge_.publish(shards_, waker_);
  if (!sent) abandon(now, "a shard's request queue is full");
}

void SnapshotWriter::take(std::uint32_t shard, const shard::SnapshotPiece& piece) {
  std::unique_ptr<std::vector<std::uint8_t>> bytes(piece.bytes);  // ours from here on
  if (!collecting_ || piece.generation != generation_) return;    // abandoned: freed
  TYTO_ASSERT(shard < shard_done_.size() && !shard_done_[shard]);
  swarms_ += piece.swarms;
  if (bytes != nullptr && !bytes->empty()) pieces_.push_back(std::move(bytes));
  if (piece.last) {
    shard_done_[shard] = true;
    --shards_left_;
  }
}

void SnapshotWriter::finish(Clock::time_point now) {
  TYTO_ASSERT(collecting_ && shards_left_ == 0);
  std::vector<std::span<const std::uint8_t>> spans;
  spans.reserve(pieces_.size());
  std::uint64_t bytes = 0;
  for (const auto& piece : pieces_) {
    spans.emplace_back(*piece);
    bytes += piece->size();
  }
  const std::string error = write_snapshot_pieces(path_, started_unix_s_, swarms_, spans);
  const auto done = Clock::now();
  const auto duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(done - started_at_).count();
  if (!error.empty()) {
    abandon(now, error);
    return;
  }
  bytes += 40 + 8;  // header and checksum (app/snapshot.hpp)
  status_.written.fetch_add(1, std::memory_order_relaxed);
  status_.last_duration_ms.store(static_cast<std::uint64_t>(duration_ms));
  status_.last_bytes.store(bytes);
  status_.last_swarms.store(swarms_);
  status_.last_unix_s.store(started_unix_s_);
  TYTO_LOG(log::Level::info, "periodic snapshot: {} swarms, {} bytes written to {} in {} ms",
           swarms_, bytes, path_, duration_ms);
  pieces_.clear();
  pieces_.shrink_to_fit();
  collecting_ = false;
  next_at_ = std::max(started_at_ + interval_, done);
}

void SnapshotWriter::abandon(Clock::time_point now, const std::string& why) {
  status_.failures.fetch_add(1, std::memory_order_relaxed);
  TYTO_LOG(log::Level::error, "periodic snapshot not written: {}", why);
  pieces_.clear();
  pieces_.shrink_to_fit();
  collecting_ = false;
  next_at_ = now + interval_;
}

void SnapshotWriter::discard_pieces() noexcept {
  bridge_.release_bridge_side();
  bridge_.receive([](std::uint32_t, const shard::SnapshotPiece& piece) { delete piece.bytes; });
  pieces_.clear();
}

}  // namespace tyto::app
