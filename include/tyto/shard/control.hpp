// The control bridge: how the operations thread (metrics, statistics) asks shards about their
// state without locks and without reading shard memory (DESIGN §1: shards share nothing). It is
// a Bridge (bridge.hpp) like every other non-shard thread's.
//
// Policy: a question is answered or times out. The asker may have several questions out per
// shard (one per waiting operator request, bounded by its connections); a question that finds
// the shard's queue full is not sent and the asker answers 503 at once. A shard whose answer
// queue is full drops the answer and counts it (control_answers_dropped): the asker times out.
// Answers carry the question's serial, so a late answer to a question given up on is recognised
// and dropped.
#pragma once

#include <cstdint>

#include "tyto/core/types.hpp"
#include "tyto/shard/bridge.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/store/peer_store.hpp"

namespace tyto::shard {

enum class ControlKind : std::uint8_t {
  counters,  // answer.totals
  swarm,     // answer.swarm for request.info_hash (answer.found)
  top,       // answer.top: the shard's request.count best swarms by request.order
};

inline constexpr std::uint32_t top_count_max = 100;

struct ControlRequest {
  std::uint64_t serial = 0;
  ControlKind kind = ControlKind::counters;
  store::TopOrder order = store::TopOrder::peers;
  std::uint32_t count = 0;  // top: 1..top_count_max
  InfoHash info_hash;       // swarm
};

struct ControlAnswer {
  std::uint64_t serial = 0;
  bool found = false;
  ShardTotals totals;
  store::SwarmStatistics swarm;
  std::uint32_t top_count = 0;
  store::SwarmStatistics top[top_count_max];
};

// 16 questions out per shard at once (the ops server's connection bound); an answer is ~8 KiB.
inline constexpr std::size_t control_questions_max = 16;
using ControlBridge =
    Bridge<ControlRequest, ControlAnswer, control_questions_max, control_questions_max>;

}  // namespace tyto::shard
