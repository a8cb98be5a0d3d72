// The row checks every SQL backend shares (row_check.hpp): each rule, at and past its edge.
#include "tyto/store/row_check.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace tyto::store {
namespace {

UserFields user(Field passkey) {
  return {Field::of(std::int64_t{1}),
          passkey,
          Field::null(),
          Field::null(),
          Field::null(),
          Field::null()};
}

TEST(RowCheck, UserNullsTakeTheColumnDefaults) {
  const auto row = check_user_row(user(Field::of(std::string_view("abc"))));
  ASSERT_TRUE(row.ok()) << row.error();
  EXPECT_EQ(row.value().user_id, 1u);
  EXPECT_EQ(row.value().passkey.view(), "abc");
  EXPECT_TRUE(row.value().enabled);
  EXPECT_TRUE(row.value().can_leech);
  EXPECT_EQ(row.value().upload_factor, 1.0f);
  EXPECT_EQ(row.value().download_factor, 1.0f);
}

TEST(RowCheck, PasskeyMustBe1To64PrintableCharacters) {
  const std::string longest(64, 'k');
  const std::string too_long(65, 'k');
  EXPECT_TRUE(check_user_row(user(Field::of(std::string_view(longest)))).ok());
  EXPECT_FALSE(check_user_row(user(Field::of(std::string_view(too_long)))).ok());
  EXPECT_FALSE(check_user_row(user(Field::of(std::string_view("")))).ok());
  EXPECT_FALSE(check_user_row(user(Field::of(std::string_view("a b")))).ok());
  EXPECT_FALSE(check_user_row(user(Field::of(std::string_view("a\x7f")))).ok());
  EXPECT_FALSE(check_user_row(user(Field::null())).ok());
  EXPECT_FALSE(check_user_row(user(Field::of(std::int64_t{12345}))).ok());
  // The reason never carries the key itself: passkeys are secrets.
  const auto refused = check_user_row(user(Field::of(std::string_view("secret key"))));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().find("secret"), std::string::npos) << refused.error();
}

TEST(RowCheck, IdsArePositiveInt64s) {
  auto fields = user(Field::of(std::string_view("abc")));
  for (const Field bad : {Field::of(std::int64_t{0}), Field::of(std::int64_t{-1}), Field::null(),
                          Field::of(1.0), Field::of(std::string_view("9223372036854775808")),
                          Field::of(std::string_view("12a")), Field::of(std::string_view(""))}) {
    fields.user_id = bad;
    EXPECT_FALSE(check_user_row(fields).ok()) << field_log_text(bad);
  }
  fields.user_id = Field::of(std::string_view("9223372036854775807"));
  ASSERT_TRUE(check_user_row(fields).ok());
  EXPECT_EQ(check_user_row(fields).value().user_id, 9223372036854775807u);
  EXPECT_EQ(check_id(Field::of(std::int64_t{42}), "torrent_id").value(), 42u);
}

TEST(RowCheck, BooleansAre0Or1) {
  auto fields = user(Field::of(std::string_view("abc")));
  fields.enabled = Field::of(std::int64_t{0});
  fields.can_leech = Field::of(std::string_view("f"));
  ASSERT_TRUE(check_user_row(fields).ok());
  EXPECT_FALSE(check_user_row(fields).value().enabled);
  EXPECT_FALSE(check_user_row(fields).value().can_leech);
  fields.enabled = Field::of(std::int64_t{2});
  EXPECT_FALSE(check_user_row(fields).ok());
  fields.enabled = Field::of(std::string_view("yes"));
  EXPECT_FALSE(check_user_row(fields).ok());
}

TEST(RowCheck, FactorsAreWithin0To100) {
  auto fields = user(Field::of(std::string_view("abc")));
  for (const Field good : {Field::of(0.0), Field::of(100.0), Field::of(std::int64_t{2}),
                           Field::of(std::string_view("0.5"))}) {
    fields.download_factor = good;
    EXPECT_TRUE(check_user_row(fields).ok()) << field_log_text(good);
  }
  for (const Field bad :
       {Field::of(-1.0), Field::of(1000.0), Field::of(100.5),
        Field::of(std::numeric_limits<double>::quiet_NaN()),
        Field::of(std::numeric_limits<double>::infinity()), Field::of(std::string_view("x"))}) {
    fields.download_factor = bad;
    EXPECT_FALSE(check_user_row(fields).ok()) << field_log_text(bad);
  }
}

TEST(RowCheck, InfoHashIs40HexDigitsEitherCase) {
  TorrentFields fields{Field::of(std::int64_t{7}), Field::null(), Field::null(), Field::null()};
  const std::string upper = "ABCDEF0123456789ABCDEF0123456789ABCDEF01";
  fields.info_hash = Field::of(std::string_view(upper));
  const auto row = check_torrent_row(fields);
  ASSERT_TRUE(row.ok()) << row.error();
  EXPECT_EQ(to_hex(row.value().info_hash), "abcdef0123456789abcdef0123456789abcdef01");
  const std::string short_hash(39, 'a');
  const std::string long_hash(41, 'a');
  const std::string not_hex = std::string(39, 'a') + "g";
  for (const std::string& bad : {short_hash, long_hash, not_hex}) {
    fields.info_hash = Field::of(std::string_view(bad));
    EXPECT_FALSE(check_torrent_row(fields).ok()) << bad;
  }
  fields.info_hash = Field::null();
  EXPECT_FALSE(check_torrent_row(fields).ok());
}

TEST(RowCheck, ClientRulePrefixIs1To20BytesAndAllowedHasNoDefault) {
  const std::string longest(20, 'p');
  const std::string too_long(21, 'p');
  ClientRuleFields fields{Field::of(std::string_view(longest)), Field::of(std::int64_t{1})};
  ASSERT_TRUE(check_client_rule_row(fields).ok());
  EXPECT_EQ(check_client_rule_row(fields).value().prefix_size, 20u);
  EXPECT_TRUE(check_client_rule_row(fields).value().allowed);
  fields.allowed = Field::null();
  EXPECT_FALSE(check_client_rule_row(fields).ok());
  fields.allowed = Field::of(std::int64_t{0});
  fields.peer_id_prefix = Field::of(std::string_view(too_long));
  EXPECT_FALSE(check_client_rule_row(fields).ok());
  fields.peer_id_prefix = Field::of(std::string_view(""));
  EXPECT_FALSE(check_client_rule_row(fields).ok());
  fields.peer_id_prefix = Field::null();
  EXPECT_FALSE(check_client_rule_row(fields).ok());
}

TEST(RowCheck, BaselineNeedsA20BytePeerId) {
  const std::string peer_id(20, 'x');
  BaselineFields fields{
      Field::of(std::int64_t{1}),  Field::of(std::int64_t{2}), Field::of(std::string_view(peer_id)),
      Field::of(std::int64_t{-1}), Field::of(std::int64_t{3}), Field::of(std::int64_t{4}),
      Field::of(std::int64_t{1})};
  const auto baseline = check_baseline_row(fields);
  ASSERT_TRUE(baseline.ok()) << baseline.error();
  EXPECT_EQ(baseline.value().uploaded, ~std::uint64_t{0});  // the uint64's bits
  EXPECT_EQ(baseline.value().announced_unix_s, 4u);
  EXPECT_TRUE(baseline.value().seeding);
  const std::string short_id(19, 'x');
  fields.peer_id = Field::of(std::string_view(short_id));
  EXPECT_FALSE(check_baseline_row(fields).ok());
}

TEST(RowCheck, LogTextIsPrintableAndCut) {
  EXPECT_EQ(field_log_text(Field::null()), "NULL");
  EXPECT_EQ(field_log_text(Field::of(std::int64_t{-3})), "-3");
  EXPECT_EQ(field_log_text(Field::of(std::string_view("a\nb"))), "'a\\x0ab'");
  const std::string long_text(100, 'z');
  EXPECT_EQ(field_log_text(Field::of(std::string_view(long_text))),
            "'" + std::string(64, 'z') + "'...");
}

}  // namespace
}  // namespace tyto::store
