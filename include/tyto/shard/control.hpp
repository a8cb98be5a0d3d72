// The control channel: how the operations thread (metrics, statistics) asks shards about their
// state without locks and without reading shard memory (DESIGN §1: shards share nothing).
//
// Per shard, two SPSC queues: requests (producer: the ops thread; consumer: the shard) and
// answers (producer: the shard; consumer: the ops thread). The shard drains its requests once
// per loop turn and answers from its own state; the asker posts a MSG_RING so a sleeping shard
// wakes at once (it would anyway within a second). The ops thread has at most one question out
// per shard, so a queue never holds more than one message and the shard's push cannot fail.
// Answers carry the request's serial: a late answer to a question the asker gave up on is
// recognised and dropped.
#pragma once

#include <cstdint>

#include "tyto/core/spsc.hpp"
#include "tyto/core/types.hpp"
#include "tyto/shard/counters.hpp"
#include "tyto/swarm/swarm_store.hpp"

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
  swarm::TopOrder order = swarm::TopOrder::peers;
  std::uint32_t count = 0;  // top: 1..top_count_max
  InfoHash info_hash;       // swarm
};

struct ControlAnswer {
  std::uint64_t serial = 0;
  bool found = false;
  ShardTotals totals;
  swarm::SwarmStatistics swarm;
  std::uint32_t top_count = 0;
  swarm::SwarmStatistics top[top_count_max];
};

// Two slots: one question out at a time, plus room for the asker's next after a timeout.
using ControlRequests = SpscQueue<ControlRequest, 2>;
using ControlAnswers = SpscQueue<ControlAnswer, 2>;

}  // namespace tyto::shard
