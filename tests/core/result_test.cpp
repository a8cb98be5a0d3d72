#include "tyto/core/result.hpp"

#include <gtest/gtest.h>

namespace tyto {
namespace {

enum class ParseError { too_short, bad_magic };

Result<int, ParseError> parse(int input) {
  if (input < 0) return Failure{ParseError::too_short};
  return input * 2;
}

TEST(Result, CarriesValueOrError) {
  const auto good = parse(21);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value(), 42);
  const auto bad = parse(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), ParseError::too_short);
}

TEST(ResultDeathTest, ValueOfAnErrorAborts) {
  const auto bad = parse(-1);
  EXPECT_DEATH((void)bad.value(), "assertion failed");
}

}  // namespace
}  // namespace tyto
