// SPSC mailbox throughput between two threads, messages/s, with the shard's batching pattern
// (stage up to `batch` messages, publish once; the consumer drains all it sees). Pin with
// `taskset -c 0,1` on the 2-core machines.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "tyto/core/spsc.hpp"

namespace {

template <class Message>
void BM_SpscThroughput(benchmark::State& state) {
  const auto batch = static_cast<int>(state.range(0));
  static tyto::SpscQueue<Message, 1024> queue;
  constexpr std::uint64_t messages_per_iteration = 1 << 16;
  std::uint64_t total = 0;
  for (auto _ : state) {
    std::thread producer([batch] {
      std::uint64_t sent = 0;
      Message message{};
      while (sent < messages_per_iteration) {
        for (int i = 0; i < batch && sent < messages_per_iteration; ++i) {
          if (!queue.try_push(message)) break;
          ++sent;
        }
        queue.publish();
      }
    });
    std::uint64_t received = 0;
    while (received < messages_per_iteration) {
      received += queue.consume([](const Message& m) { benchmark::DoNotOptimize(&m); });
    }
    producer.join();
    total += received;
  }
  state.counters["messages_per_s"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
  state.counters["message_bytes"] = sizeof(Message);
}

struct Small {
  std::uint64_t words[2];
};

// About the size of a forwarded announce (route + request).
struct AnnounceSized {
  std::uint64_t words[22];
};

BENCHMARK_TEMPLATE(BM_SpscThroughput, Small)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();
BENCHMARK_TEMPLATE(BM_SpscThroughput, AnnounceSized)->Arg(1)->Arg(16)->Arg(64)->UseRealTime();

}  // namespace
BENCHMARK_MAIN();
