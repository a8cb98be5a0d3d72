#include "tyto/store/peer_store.hpp"

namespace tyto::store {

std::uint64_t top_key(const SwarmStatistics& statistics, TopOrder order) noexcept {
  switch (order) {
    case TopOrder::peers:
      return std::uint64_t{statistics.seeders} + statistics.leechers;
    case TopOrder::seeders:
      return statistics.seeders;
    case TopOrder::leechers:
      return statistics.leechers;
    case TopOrder::completed:
      return statistics.completed;
    case TopOrder::announces:
      return std::uint64_t{statistics.announces_last_window} + statistics.announces_this_window;
    case TopOrder::churn:
      return std::uint64_t{statistics.joins_last_window} + statistics.leaves_last_window +
             statistics.joins_this_window + statistics.leaves_this_window;
  }
  return 0;
}

}  // namespace tyto::store
