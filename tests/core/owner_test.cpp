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
      "assertion failed: owned");
}
#endif

// claim() works without NDEBUG's help, so this fails in release builds too when a second
// thread is not told apart from the owner. The owner is this thread, alive throughout: a joined
// thread's id may be handed to the next thread.
TEST(OwnerThread, TheOwnerMayCheckAgainAndASecondThreadIsDetected) {
  OwnerThread owner;
  EXPECT_TRUE(owner.claim());
  owner.check();
  EXPECT_TRUE(owner.claim());
  bool intruder_owns = true;
  std::thread intruder([&] { intruder_owns = owner.claim(); });
  intruder.join();
  EXPECT_FALSE(intruder_owns);
  EXPECT_TRUE(owner.claim());  // the intruder did not take it over
}

}  // namespace
}  // namespace tyto
