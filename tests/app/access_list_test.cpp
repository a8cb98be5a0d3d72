#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "tyto/app/access_file.hpp"
#include "tyto/shard/access_list.hpp"

namespace tyto {
namespace {

InfoHash hash_of(std::uint8_t byte) {
  InfoHash hash;
  hash.bytes.fill(byte);
  return hash;
}

TEST(AccessList, ParsesHexLinesCommentsAndBlanks) {
  const std::string text =
      "# torrents we track\n"
      "\n"
      "  1111111111111111111111111111111111111111  \n"
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA # upper case, comment after\r\n"
      "1111111111111111111111111111111111111111\n"  // listed twice: once in the set
      "\tbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  auto parsed = shard::AccessList::parse(text, shard::AccessList::Mode::whitelist, "list");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  const shard::AccessList& list = *parsed.value();
  EXPECT_EQ(list.size(), 3u);
  EXPECT_TRUE(list.allows(hash_of(0x11)));
  EXPECT_TRUE(list.allows(hash_of(0xaa)));
  EXPECT_TRUE(list.allows(hash_of(0xbb)));
  EXPECT_FALSE(list.allows(hash_of(0x12)));
  auto blacklist = shard::AccessList::parse(text, shard::AccessList::Mode::blacklist, "list");
  ASSERT_TRUE(blacklist.ok());
  EXPECT_FALSE(blacklist.value()->allows(hash_of(0xaa)));
  EXPECT_TRUE(blacklist.value()->allows(hash_of(0x12)));
  auto empty = shard::AccessList::parse("# nothing yet\n", shard::AccessList::Mode::whitelist, "e");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty.value()->allows(hash_of(0x11)));  // an empty whitelist allows nothing
}

TEST(AccessList, ABadLineIsAnErrorNamingTheLine) {
  auto short_hash = shard::AccessList::parse("1111111111111111111111111111111111111111\nabc\n",
                                             shard::AccessList::Mode::whitelist, "deny.txt");
  ASSERT_FALSE(short_hash.ok());
  EXPECT_EQ(short_hash.error(), "deny.txt:2: not an info_hash (40 hex digits): 'abc'");
  EXPECT_FALSE(shard::AccessList::parse("111111111111111111111111111111111111111g\n",
                                        shard::AccessList::Mode::whitelist, "x")
                   .ok());
  EXPECT_FALSE(shard::AccessList::parse("1111111111111111111111111111111111111111 2222\n",
                                        shard::AccessList::Mode::whitelist, "x")
                   .ok());
}

TEST(AccessList, ManyEntriesAreAllFound) {
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    InfoHash hash;
    for (int b = 0; b < 20; ++b) hash.bytes[b] = static_cast<std::uint8_t>(i * 7 + b * (i >> 3));
    text += to_hex(hash) + "\n";
  }
  auto parsed = shard::AccessList::parse(text, shard::AccessList::Mode::whitelist, "many");
  ASSERT_TRUE(parsed.ok());
  std::size_t lines = 0;
  for (std::size_t at = 0; at < text.size(); at += 41, ++lines) {
    EXPECT_TRUE(parsed.value()->contains(*parse_info_hash_hex(text.substr(at, 40))));
  }
  EXPECT_EQ(lines, 5000u);
}

TEST(FileWatch, NoticesWritesAndReplacements) {
  const std::string path = "file_watch_test.txt";
  std::remove(path.c_str());
  app::FileWatch watch(path);
  EXPECT_FALSE(watch.changed());  // the first call records (a missing file)
  { std::ofstream(path) << "a\n"; }
  EXPECT_TRUE(watch.changed());
  EXPECT_FALSE(watch.changed());
  { std::ofstream(path) << "bb\n"; }
  EXPECT_TRUE(watch.changed());
  std::remove(path.c_str());
  EXPECT_TRUE(watch.changed());
  const auto missing = app::load_access_list(path, app::AccessMode::whitelist);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find(path), std::string::npos);
}

}  // namespace
}  // namespace tyto
