// OwnerThread: Redpanda's `oncore` idea. An object that belongs to one shard keeps one of these;
// the first thread that calls check() becomes its owner and debug builds abort when any other
// thread touches the object afterwards. Release builds carry nothing and check nothing.
#pragma once

#include <thread>

#include "tyto/core/assert.hpp"

namespace tyto {

class OwnerThread {
 public:
  void check() noexcept {
#ifndef NDEBUG
    const auto self = std::this_thread::get_id();
    if (owner_ == std::thread::id{}) owner_ = self;
    TYTO_ASSERT(owner_ == self);  // touched from a thread that does not own it
#endif
  }

 private:
#ifndef NDEBUG
  std::thread::id owner_{};
#endif
};

}  // namespace tyto
