// SnapshotWriter: periodic snapshots while the shards run (README "Snapshots"), so that kill -9,
// an OOM kill or a power cut loses at most snapshot.interval_s of swarms. It is the snapshot
// bridge's client (shard/snapshot_bridge.hpp) on its own BridgeThread.
//
// Who owns what:
//  - each shard owns its swarms and serialises them itself, a bounded slice per loop turn, into
//    pieces it hands over by message (a shard never blocks, waits or does I/O for this);
//  - this thread owns every piece it received, assembles the file (app/snapshot.hpp: header,
//    records, XXH3), writes it to PATH.tmp, fsyncs, renames, fsyncs the directory; the blocking
//    I/O happens here only.
// Memory: the whole snapshot's records are held here until the file is written (about 9 B per
// IPv4 peer and 36 B per swarm, plus up to 64 pieces of 1 MiB per shard in flight), then freed.
// The snapshot is fuzzy: each shard's swarms are copied over many turns while announces go on,
// so the file is no single instant (see PeerStore::append_snapshot_slice for what is promised).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tyto/shard/bridge_thread.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/shard/snapshot_bridge.hpp"
#include "tyto/shard/waker.hpp"

namespace tyto::app {

// Exported by the ops server (tyto_snapshot_*, /stats "snapshot") and with --print-counters.
struct SnapshotStatus {
  std::atomic<std::uint64_t> written{0};   // periodic snapshots written
  std::atomic<std::uint64_t> failures{0};  // periodic snapshots not written (logged)
  std::atomic<std::uint64_t> last_duration_ms{0};
  std::atomic<std::uint64_t> last_bytes{0};
  std::atomic<std::uint64_t> last_swarms{0};
  std::atomic<std::uint64_t> last_unix_s{0};

  // Every field as a row (shard/counters.hpp), as the shards' counters are exported.
  std::vector<shard::CounterRow> rows() const;
};

class SnapshotWriter final : public shard::BridgeThread::Client {
 public:
  using Clock = shard::BridgeThread::Clock;
  // A snapshot the shards have not finished after this long (or the interval, if longer) is
  // abandoned and counted as a failure.
  static constexpr auto collect_timeout_min = std::chrono::seconds(600);

  SnapshotWriter(std::string path, std::chrono::seconds interval, shard::SnapshotBridge& bridge,
                 std::span<shard::Presence> shards, SnapshotStatus& status);
  ~SnapshotWriter() override;
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Before the thread starts: the waker that rings sleeping shards. Error text or "".
  std::string init();
  void watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) override;
  void turn(std::span<const pollfd> polled) override;
  // Once the writer thread and the shards stopped: frees every piece still queued.
  void discard_pieces() noexcept;

 private:
  void begin(Clock::time_point now);
  void take(std::uint32_t shard, const shard::SnapshotPiece& piece);
  void finish(Clock::time_point now);
  void abandon(Clock::time_point now, const std::string& why);

  std::string path_;
  std::chrono::seconds interval_;
  shard::SnapshotBridge& bridge_;
  std::span<shard::Presence> shards_;
  SnapshotStatus& status_;
  shard::Waker waker_;
  std::uint64_t generation_ = 0;
  bool collecting_ = false;
  Clock::time_point started_at_;
  Clock::time_point next_at_;
  std::uint64_t started_unix_s_ = 0;
  std::vector<bool> shard_done_;
  std::uint32_t shards_left_ = 0;
  std::uint64_t swarms_ = 0;
  std::vector<std::unique_ptr<std::vector<std::uint8_t>>> pieces_;
};

}  // namespace tyto::app
