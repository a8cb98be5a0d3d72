#include "tyto/core/owner.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace tyto {
namespace {

#ifndef NDEBUG
TEST(OwnerThreadDeathTest, AnotherThreadTouchingAnOwnedObjectAborts) {
  EXPECT_DEATH(
      {
        OwnerThread owner;
        owner.check();  // this thread owns it now
        std::thread intruder([&owner] { owner.check(); });
        intruder.join();
      },
      "touched from a thread that does not own it|owner_ == self");
}
#endif

TEST(OwnerThread, TheOwningThreadMayCheckAgain) {
  OwnerThread owner;
  std::thread shard([&owner] {
    owner.check();
    owner.check();
  });
  shard.join();
  SUCCEED();
}

}  // namespace
}  // namespace tyto
