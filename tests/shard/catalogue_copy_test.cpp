// A shard's catalogue copy (shard/catalogue_copy.hpp): rows in and out by key, growth, and the
// client rules' order of precedence.
#include "tyto/shard/catalogue_copy.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

namespace tyto::shard {
namespace {

store::UserRow user(std::uint64_t id, const std::string& passkey) {
  store::UserRow row;
  row.user_id = id;
  row.passkey = *store::Passkey::parse(passkey);
  return row;
}

PeerId peer_id(const std::string& text) {
  PeerId id;
  std::copy(text.begin(), text.end(), id.bytes.begin());
  return id;
}

TEST(CatalogueCopy, UsersByExactPasskey) {
  CatalogueCopy copy(HashSecret::from_seed(1));
  copy.put_user(user(1, "Abc"));
  ASSERT_NE(copy.user(*store::Passkey::parse("Abc")), nullptr);
  EXPECT_EQ(copy.user(*store::Passkey::parse("Abc"))->user_id, 1u);
  EXPECT_EQ(copy.user(*store::Passkey::parse("abc")), nullptr);  // case matters
  EXPECT_EQ(copy.user(*store::Passkey::parse("Abcd")), nullptr);
  for (const char* text : {"Abc", "abc", "Abcd"}) {  // the batch read-ahead's lookup alike
    const store::Passkey passkey = *store::Passkey::parse(text);
    const std::uint64_t key_hash = copy.users().start_find(passkey);
    copy.users().prefetch_row(key_hash);
    EXPECT_EQ(copy.users().find(passkey, key_hash), copy.user(passkey)) << text;
  }
  auto disabled = user(1, "Abc");
  disabled.enabled = false;
  copy.put_user(disabled);  // replaces
  EXPECT_EQ(copy.users_count(), 1u);
  EXPECT_FALSE(copy.user(*store::Passkey::parse("Abc"))->enabled);
  copy.remove_user(*store::Passkey::parse("Abc"));
  EXPECT_EQ(copy.user(*store::Passkey::parse("Abc")), nullptr);
  EXPECT_EQ(copy.users_count(), 0u);
}

// Against a std::map: random puts and removes through several growths keep every row findable
// (removal moves the last row into the hole and re-points its index entry).
TEST(CatalogueCopy, TorrentsMatchAModelThroughGrowthAndRemoval) {
  CatalogueCopy copy(HashSecret::from_seed(2));
  std::map<InfoHash, std::uint64_t> model;
  std::mt19937_64 random(3);
  for (int step = 0; step < 20000; ++step) {
    InfoHash hash;
    const auto pick = random() % 3000;
    hash.bytes[0] = static_cast<std::uint8_t>(pick);
    hash.bytes[1] = static_cast<std::uint8_t>(pick >> 8);
    if (random() % 3 == 0) {
      copy.remove_torrent(hash);
      model.erase(hash);
    } else {
      store::TorrentRow row;
      row.torrent_id = step + 1;
      row.info_hash = hash;
      copy.put_torrent(row);
      model[hash] = row.torrent_id;
    }
  }
  EXPECT_EQ(copy.torrents_count(), model.size());
  for (std::uint32_t pick = 0; pick < 3000; ++pick) {
    InfoHash hash;
    hash.bytes[0] = static_cast<std::uint8_t>(pick);
    hash.bytes[1] = static_cast<std::uint8_t>(pick >> 8);
    const auto found = model.find(hash);
    const store::TorrentRow* row = copy.torrent(hash);
    if (found == model.end()) {
      EXPECT_EQ(row, nullptr) << pick;
    } else {
      ASSERT_NE(row, nullptr) << pick;
      EXPECT_EQ(row->torrent_id, found->second);
    }
  }
}

// Issue 21: a growth migrates the old index a few entries per put; lookups, replacements and
// removals meanwhile find rows in either index. Puts and removes over 150 k keys pass several
// growths (segments of rows and indexes of up to 2^19 entries, with released chunks) and are
// checked against a model at every step, and whole at checkpoints, growing or not.
TEST(CatalogueCopy, TorrentsStayFoundWhileTheIndexGrowsIncrementally) {
  CatalogueCopy copy(HashSecret::from_seed(4));
  std::map<InfoHash, std::uint64_t> model;
  std::mt19937_64 random(5);
  auto hash_of = [](std::uint32_t pick) {
    InfoHash hash;
    for (int i = 0; i < 4; ++i) hash.bytes[i] = static_cast<std::uint8_t>(pick >> (8 * i));
    hash.bytes[19] = 0x5a;
    return hash;
  };
  int checkpoints_growing = 0;
  for (std::uint32_t step = 0; step < 400'000; ++step) {
    // Mostly puts at first (growth), then a churn of removals and puts.
    const std::uint32_t pick = static_cast<std::uint32_t>(random() % 150'000);
    const InfoHash hash = hash_of(pick);
    if (step > 200'000 && random() % 2 == 0) {
      copy.remove_torrent(hash);
      model.erase(hash);
      ASSERT_EQ(copy.torrent(hash), nullptr) << step;
    } else {
      store::TorrentRow row;
      row.torrent_id = step + 1;
      row.info_hash = hash;
      copy.put_torrent(row);
      model[hash] = row.torrent_id;
      ASSERT_NE(copy.torrent(hash), nullptr) << step;
      ASSERT_EQ(copy.torrent(hash)->torrent_id, step + 1) << step;
    }
    // The batch read-ahead's lookup (start_find, prefetch_row, find by hash) finds the same
    // row in either index, growing or not.
    const std::uint64_t key_hash = copy.torrents().start_find(hash);
    copy.torrents().prefetch_row(key_hash);
    ASSERT_EQ(copy.torrents().find(hash, key_hash), copy.torrent(hash)) << step;
    if (step % 25'000 == 0 || (copy.growing() && step % 997 == 0)) {
      checkpoints_growing += copy.growing();
      copy.verify();
      ASSERT_EQ(copy.torrents_count(), model.size()) << step;
    }
  }
  EXPECT_GT(checkpoints_growing, 0);  // some checks fell inside a migration
  copy.verify();
  for (const auto& [hash, torrent_id] : model) {
    const store::TorrentRow* row = copy.torrent(hash);
    ASSERT_NE(row, nullptr);
    EXPECT_EQ(row->torrent_id, torrent_id);
  }
  for (std::uint32_t pick = 150'000; pick < 151'000; ++pick) {
    EXPECT_EQ(copy.torrent(hash_of(pick)), nullptr);
  }
}

TEST(CatalogueCopy, ClientRules) {
  CatalogueCopy copy(HashSecret::from_seed(4));
  EXPECT_TRUE(copy.client_allowed(peer_id("-XX0001-")));  // no rules: everyone
  copy.put_client_rule(*store::ClientRuleRow::make("-XX", false));
  EXPECT_FALSE(copy.client_allowed(peer_id("-XX0001-")));
  EXPECT_TRUE(copy.client_allowed(peer_id("-qB4500-")));
  // With an allowed prefix, only matching clients pass; a denied match still refuses.
  copy.put_client_rule(*store::ClientRuleRow::make("-qB", true));
  copy.put_client_rule(*store::ClientRuleRow::make("-qB44", false));
  EXPECT_TRUE(copy.client_allowed(peer_id("-qB4500-")));
  EXPECT_FALSE(copy.client_allowed(peer_id("-qB4400-")));
  EXPECT_FALSE(copy.client_allowed(peer_id("-TR3000-")));
  copy.remove_client_rule(*store::ClientRuleRow::make("-qB", true));
  EXPECT_TRUE(copy.client_allowed(peer_id("-TR3000-")));  // no allowed rule left
  EXPECT_EQ(copy.client_rules_count(), 2u);
  // Changing a rule's verdict replaces it.
  copy.put_client_rule(*store::ClientRuleRow::make("-XX", true));
  EXPECT_TRUE(copy.client_allowed(peer_id("-XX0001-")));
  EXPECT_FALSE(copy.client_allowed(peer_id("-TR3000-")));
}

TEST(CatalogueCopy, ClientRulesAreBounded) {
  CatalogueCopy copy(HashSecret::from_seed(5));
  for (std::size_t i = 0; i < CatalogueCopy::client_rules_max; ++i) {
    ASSERT_TRUE(copy.put_client_rule(*store::ClientRuleRow::make("-" + std::to_string(i), false)));
  }
  EXPECT_FALSE(copy.put_client_rule(*store::ClientRuleRow::make("-new", false)));
  EXPECT_TRUE(copy.put_client_rule(*store::ClientRuleRow::make("-1", true)));  // a held one
}

TEST(Passkey, PrintableUpTo64) {
  EXPECT_TRUE(store::Passkey::parse(std::string(64, 'k')));
  EXPECT_FALSE(store::Passkey::parse(std::string(65, 'k')));
  EXPECT_FALSE(store::Passkey::parse(""));
  EXPECT_FALSE(store::Passkey::parse("a b"));
  EXPECT_FALSE(store::Passkey::parse(std::string("a\x7f", 2)));
  EXPECT_TRUE(store::Passkey::parse("!~/%"));
}

}  // namespace
}  // namespace tyto::shard
