// OwnerThread: Redpanda's `oncore` idea. An object that belongs to one shard keeps one of these;
// the first thread that claims it becomes its owner. check() asserts that in debug builds only
// (release builds check nothing on the hot path); claim() answers in every build, for tests.
#pragma once

#include <thread>

#include "tyto/core/assert.hpp"

namespace tyto {

class OwnerThread {
 public:
  // True when the calling thread owns the object, taking it first if no thread has yet.
  bool claim() noexcept {
    const auto self = std::this_thread::get_id();
    if (owner_ == std::thread::id{}) owner_ = self;
    return owner_ == self;
  }

  // The owning thread has ended (joined): the next thread to claim the object owns it. The
  // join orders everything the old owner did before the new owner's first access.
  void release() noexcept { owner_ = std::thread::id{}; }

  void check() noexcept {
#ifndef NDEBUG
    const bool owned = claim();
    TYTO_ASSERT(owned);  // touched from a thread that does not own it
#endif
  }

 private:
  std::thread::id owner_{};  // 8 bytes in release builds too, so claim() can answer there
};

}  // namespace tyto
