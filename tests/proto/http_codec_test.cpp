// HTTP tracker codec: heads (keep-alive rules, limits, guard page against over-reads), queries
// (any order, %-encoding of every byte, case of hex, bad escapes), and byte-exact bencoded
// responses written out by hand.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tyto/proto/bencode.hpp"
#include "tyto/proto/http.hpp"

namespace tyto::proto::http {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string percent_encode_all(std::span<const std::uint8_t> bytes, bool upper) {
  std::string out;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  for (std::uint8_t b : bytes) {
    out += '%';
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

TEST(HttpHead, ParsesAGetWithHeaders) {
  const std::string text =
      "GET /announce?x=1 HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n"
      "x-real-ip: 10.0.0.9\r\n\r\nGET /next";
  RequestHead head;
  ASSERT_EQ(parse_head(bytes_of(text), head), HeadStatus::complete);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/announce?x=1");
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(head.x_forwarded_for, "10.0.0.1, 10.0.0.2");
  EXPECT_EQ(head.x_real_ip, "10.0.0.9");
  EXPECT_EQ(head.head_size, text.size() - std::string("GET /next").size());
}

TEST(HttpHead, KeepAliveRules) {
  RequestHead head;
  ASSERT_EQ(parse_head(bytes_of("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), head),
            HeadStatus::complete);
  EXPECT_FALSE(head.keep_alive);
  ASSERT_EQ(parse_head(bytes_of("GET / HTTP/1.0\r\n\r\n"), head), HeadStatus::complete);
  EXPECT_FALSE(head.keep_alive);
  ASSERT_EQ(parse_head(bytes_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), head),
            HeadStatus::complete);
  EXPECT_TRUE(head.keep_alive);
  ASSERT_EQ(parse_head(bytes_of("GET / HTTP/1.1\n\n"), head), HeadStatus::complete);  // bare LF
  EXPECT_TRUE(head.keep_alive);
}

TEST(HttpHead, EveryTruncationIsIncompleteNeverInvalid) {
  const std::string text = "GET /announce?info_hash=%01 HTTP/1.1\r\nHost: tracker\r\n\r\n";
  for (std::size_t size = 0; size < text.size(); ++size) {
    RequestHead head;
    EXPECT_EQ(parse_head(bytes_of(text).first(size), head), HeadStatus::incomplete) << size;
  }
}

TEST(HttpHead, InvalidAndTooLarge) {
  RequestHead head;
  for (const char* bad : {"GET\r\n\r\n", "GET /x HTTP/2.0\r\n\r\n", "GET x HTTP/1.1\r\n\r\n",
                          "GET /x HTTP/1.1\r\nNoColon\r\n\r\n", "GET  /x HTTP/1.1\r\n\r\n",
                          "GET /x HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
    EXPECT_EQ(parse_head(bytes_of(bad), head), HeadStatus::invalid) << bad;
  }
  std::string huge = "GET /" + std::string(5000, 'a');
  EXPECT_EQ(parse_head(bytes_of(huge), head), HeadStatus::too_large);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 70; ++i) many += "A: b\r\n";
  EXPECT_EQ(parse_head(bytes_of(many + "\r\n"), head), HeadStatus::invalid);
  ASSERT_EQ(parse_head(bytes_of("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"), head),
            HeadStatus::complete);
  EXPECT_TRUE(head.has_body);
}

TEST(HttpHead, NeverReadsPastTheInput) {
  // The input ends right before a PROT_NONE page: an over-read crashes the test.
  const long page = sysconf(_SC_PAGESIZE);
  auto* memory = static_cast<std::uint8_t*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(memory, MAP_FAILED);
  ASSERT_EQ(mprotect(memory + page, page, PROT_NONE), 0);
  for (const std::string& text : {std::string("GET /announce HTTP/1.1\r\nHost: a\r\n\r"),
                                  std::string("GET /announce HTTP/1.1\r\nHost: a\r\n\r\n"),
                                  std::string("GET /a?info_hash=%4")}) {
    std::uint8_t* at = memory + page - text.size();
    std::memcpy(at, text.data(), text.size());
    RequestHead head;
    parse_head({at, text.size()}, head);
    std::string_view query, passkey;
    route(std::string_view(reinterpret_cast<char*>(at), text.size()), query, passkey);
    (void)parse_announce_query(query);
  }
  munmap(memory, 2 * page);
}

TEST(HttpRoute, PathsAndQueries) {
  std::string_view query, passkey;
  EXPECT_EQ(route("/announce?a=b", query, passkey), Path::announce);
  EXPECT_EQ(query, "a=b");
  EXPECT_TRUE(passkey.empty());
  EXPECT_EQ(route("/scrape", query, passkey), Path::scrape);
  EXPECT_TRUE(query.empty());
  EXPECT_EQ(route("/announce/extra?a", query, passkey), Path::unknown);
  EXPECT_EQ(route("/", query, passkey), Path::unknown);
  EXPECT_EQ(route("", query, passkey), Path::unknown);
}

// The private tracker's URLs: one segment before the action is the passkey, as sent.
TEST(HttpRoute, PasskeyPaths) {
  std::string_view query, passkey;
  EXPECT_EQ(route("/Ab3%2Fx/announce?a=b", query, passkey), Path::announce);
  EXPECT_EQ(passkey, "Ab3%2Fx");
  EXPECT_EQ(query, "a=b");
  EXPECT_EQ(route("/k/scrape", query, passkey), Path::scrape);
  EXPECT_EQ(passkey, "k");
  for (const char* unknown : {"//announce", "/a/b/announce", "/k/announce/", "/k/stats", "k/announce",
                              "/k/announcex"}) {
    EXPECT_EQ(route(unknown, query, passkey), Path::unknown) << unknown;
    EXPECT_TRUE(passkey.empty()) << unknown;
  }
}

TEST(HttpRoute, TargetsSplitAtTheFirstQuestionMark) {
  EXPECT_EQ(split_target("/stats/top?by=peers?x").path, "/stats/top");
  EXPECT_EQ(split_target("/stats/top?by=peers?x").query, "by=peers?x");
  EXPECT_EQ(split_target("/metrics").path, "/metrics");
  EXPECT_TRUE(split_target("/metrics").query.empty());
  EXPECT_TRUE(split_target("/metrics?").query.empty());
}

TEST(HttpQuery, ParametersSkipEmptyPairsAndKeepRawValues) {
  std::string_view query = "&a=1&&flag&b=%41=x&";
  QueryParameter parameter;
  std::vector<std::pair<std::string_view, std::string_view>> seen;
  while (next_parameter(query, parameter)) seen.emplace_back(parameter.key, parameter.value);
  const std::vector<std::pair<std::string_view, std::string_view>> expected = {
      {"a", "1"}, {"flag", ""}, {"b", "%41=x"}};
  EXPECT_EQ(seen, expected);
  EXPECT_TRUE(query.empty());
}

TEST(HttpQuery, QueryValueFindsTheFirstOfAKey) {
  std::string_view value = "untouched";
  EXPECT_FALSE(query_value("by=peers&n=5", "m", value));
  EXPECT_EQ(value, "untouched");
  EXPECT_FALSE(query_value("byx=1&xby=2", "by", value));
  EXPECT_TRUE(query_value("n=5&by=seeders&by=peers", "by", value));
  EXPECT_EQ(value, "seeders");
  EXPECT_TRUE(query_value("n", "n", value));
  EXPECT_EQ(value, "");
}

std::string valid_query(const std::string& hash_encoding) {
  return "info_hash=" + hash_encoding +
         "&peer_id=-TY0001-abcdefghijkl&port=6881&uploaded=1"
         "&downloaded=2&left=3&event=started&numwant=30&compact=1&key=ab12&ip=10.1.2.3";
}

TEST(HttpAnnounceQuery, EveryByteValuePercentEncodedInEitherCase) {
  for (int start = 0; start < 256; start += 20) {
    std::array<std::uint8_t, 20> hash{};
    for (int i = 0; i < 20; ++i) hash[i] = static_cast<std::uint8_t>((start + i) & 0xff);
    for (bool upper : {false, true}) {
      const auto parsed = parse_announce_query(valid_query(percent_encode_all(hash, upper)));
      ASSERT_TRUE(parsed.ok()) << parsed.error();
      EXPECT_EQ(parsed.value().announce.info_hash.bytes, hash);
    }
  }
}

TEST(HttpAnnounceQuery, FieldsInAnyOrderAndMixedEncoding) {
  const auto parsed = parse_announce_query(
      "ip=10.1.2.3&compact=0&left=0&port=51413&peer_id=%2DTR3000%2Dabcdefghijkl&event=completed"
      "&info_hash=%12%34Vx%9a%bc%de%f0%12%34Vx%9a%bc%de%f0%12%34Vx&no_peer_id=1&unknown=zz");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  const AnnounceQuery& query = parsed.value();
  EXPECT_EQ(query.announce.info_hash.bytes[0], 0x12);
  EXPECT_EQ(query.announce.info_hash.bytes[2], 'V');
  EXPECT_EQ(query.announce.peer_id.bytes[0], '-');
  EXPECT_EQ(query.port, 51413);
  EXPECT_EQ(query.announce.left_bytes, 0u);
  EXPECT_EQ(query.announce.event, AnnounceEvent::completed);
  EXPECT_FALSE(query.compact);
  EXPECT_TRUE(query.no_peer_id);
  EXPECT_EQ(query.ip, "10.1.2.3");
  EXPECT_EQ(query.announce.numwant, -1);  // absent: tracker default
}

// BEP 3 dictionaries carry `peer id`, which tyto does not keep: only compact=0 with no_peer_id=1
// gets them; compact=0 alone is answered compact (BEP 23 allows it).
TEST(HttpAnnounceQuery, DictionariesOnlyWithoutPeerIds) {
  const std::string base =
      "info_hash=%12%34Vx%9a%bc%de%f0%12%34Vx%9a%bc%de%f0%12%34Vx&peer_id=%2DTR3000%2Dabcdefghijkl"
      "&port=1&left=0";
  const struct {
    const char* extra;
    bool compact;
  } cases[] = {{"", true},
               {"&compact=1", true},
               {"&compact=0", true},
               {"&compact=0&no_peer_id=1", false},
               {"&no_peer_id=1&compact=0", false},
               {"&compact=1&no_peer_id=1", true}};
  for (const auto& c : cases) {
    const auto parsed = parse_announce_query(base + c.extra);
    ASSERT_TRUE(parsed.ok()) << c.extra;
    EXPECT_EQ(parsed.value().answer_compact(), c.compact) << c.extra;
  }
}

TEST(HttpAnnounceQuery, FailuresSayWhatIsWrong) {
  const std::string hash = percent_encode_all(std::array<std::uint8_t, 20>{}, false);
  const struct {
    std::string query;
    std::string reason;
  } cases[] = {
      {"peer_id=-TY0001-abcdefghijkl&port=1&left=0", "missing info_hash"},
      {"info_hash=" + hash + "&port=1&left=0", "missing peer_id"},
      {"info_hash=" + hash + "&peer_id=-TY0001-abcdefghijkl&left=0", "missing port"},
      {"info_hash=" + hash + "&peer_id=-TY0001-abcdefghijkl&port=1", "missing left"},
      {"info_hash=%01%02&peer_id=x&port=1&left=0", "invalid info_hash: must be 20 bytes"},
      {"info_hash=" + hash + "%00&peer_id=x&port=1&left=0", "invalid info_hash: must be 20 bytes"},
      {"info_hash=%zz" + hash, "invalid info_hash: must be 20 bytes"},
      {"info_hash=" + hash.substr(0, 59) + "%4", "invalid info_hash: must be 20 bytes"},
      {valid_query(hash) + "&port=0", "invalid port"},
      {valid_query(hash) + "&port=70000", "invalid port"},
      {valid_query(hash) + "&left=-1", "invalid left"},
      {valid_query(hash) + "&uploaded=99999999999999999999", "invalid uploaded"},
      {valid_query(hash) + "&event=bogus", "invalid event"},
      {valid_query(hash) + "&numwant=lots", "invalid numwant"},
  };
  for (const auto& test : cases) {
    const auto parsed = parse_announce_query(test.query);
    ASSERT_FALSE(parsed.ok()) << test.query;
    EXPECT_EQ(std::string(parsed.error()), test.reason) << test.query;
  }
}

TEST(HttpScrapeQuery, RepeatedHashesUpToTheLimit) {
  InfoHash out[64];
  std::string query;
  for (int i = 0; i < 64; ++i) {
    std::array<std::uint8_t, 20> hash{};
    hash[0] = static_cast<std::uint8_t>(i);
    query += (i ? "&" : "") + std::string("info_hash=") + percent_encode_all(hash, i % 2 == 0);
  }
  const auto parsed = parse_scrape_query(query, out);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value(), 64u);
  EXPECT_EQ(out[63].bytes[0], 63);
  InfoHash small[2];
  EXPECT_STREQ(parse_scrape_query(query, small).error(), "too many info_hashes (at most 64)");
  EXPECT_STREQ(parse_scrape_query("", out).error(), "full scrape is not allowed");
}

TEST(Bencode, WritesExactBytesAndRefusesOverflow) {
  std::uint8_t out[64];
  BencodeWriter writer(out);
  writer.dictionary_begin();
  writer.string("a");
  writer.integer(-42);
  writer.string("list");
  writer.list_begin();
  writer.string(std::string_view("spam"));
  writer.integer(0);
  writer.end();
  writer.end();
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), writer.size()),
            "d1:ai-42e4:listl4:spami0eee");
  std::uint8_t tiny[3];
  BencodeWriter small(tiny);
  small.string("long");
  EXPECT_FALSE(small.ok());
}

std::string as_text(std::span<const std::uint8_t> bytes, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), size);
}

TEST(HttpResponse, CompactIpv4AnnounceExactBytes) {
  std::vector<std::uint8_t> out(announce_response_size_max);
  const std::uint8_t peers[12] = {10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0x1a, 0xe2};
  AnnounceReply reply;
  reply.seeders = 3;
  reply.leechers = 4;
  const PeerEndpoint client = PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{1, 2, 3, 4}, 9);
  const std::size_t size = write_announce_response(out, reply, 1800, 900, AddressFamily::ipv4,
                                                   peers, true, client, true);
  const std::string body =
      "d8:completei3e11:external ip4:\x01\x02\x03\x04"
      "10:incompletei4e"
      "8:intervali1800e12:min intervali900e5:peers12:" +
      std::string(reinterpret_cast<const char*>(peers), 12) + "e";
  const std::string expected = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(as_text(out, size), expected);
}

TEST(HttpResponse, Ipv6CompactAndDictionaryModel) {
  std::vector<std::uint8_t> out(announce_response_size_max);
  std::uint8_t peer6[18] = {0x20, 0x01, 0x0d, 0xb8};
  peer6[15] = 1;
  peer6[16] = 0x1a;
  peer6[17] = 0xe1;
  const PeerEndpoint client =
      PeerEndpoint::ipv6(std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8}, 9);
  std::size_t size = write_announce_response(out, AnnounceReply{}, 60, 30, AddressFamily::ipv6,
                                             peer6, true, client, false);
  std::string text = as_text(out, size);
  EXPECT_NE(text.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(text.find("5:peers0:6:peers618:"), std::string::npos);  // BEP 7
  size = write_announce_response(out, AnnounceReply{}, 60, 30, AddressFamily::ipv6, peer6, false,
                                 client, true);
  text = as_text(out, size);
  EXPECT_NE(text.find("5:peersld2:ip11:2001:db8::14:porti6881eee"), std::string::npos) << text;
}

TEST(HttpResponse, ScrapeFilesSortedAndDeduplicated) {
  std::vector<std::uint8_t> out(scrape_response_size_max);
  InfoHash a, b;
  a.bytes.fill('b');
  b.bytes.fill('a');
  const InfoHash hashes[3] = {a, b, a};
  const ScrapeEntry entries[3] = {{1, 2, 3}, {4, 5, 6}, {1, 2, 3}};
  const std::size_t size = write_scrape_response(out, hashes, entries, true);
  const std::string body =
      "d5:filesd20:" + std::string(20, 'a') +
      "d8:completei4e10:downloadedi6e10:incompletei5ee20:" + std::string(20, 'b') +
      "d8:completei1e10:downloadedi3e10:incompletei2eeee";
  EXPECT_EQ(as_text(out, size), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body);
}

TEST(HttpResponse, FailureAndStatus) {
  std::vector<std::uint8_t> out(256);
  std::size_t size = write_failure(out, "missing info_hash", true);
  EXPECT_EQ(as_text(out, size),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n\r\n"
            "d14:failure reason17:missing info_hashe");
  size = write_status(out, 404, "not found", false);
  EXPECT_EQ(as_text(out, size).substr(0, 22), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(write_status(std::span(out).first(100), 404, std::string(200, 'x'), false), 0u);
}

}  // namespace
}  // namespace tyto::proto::http
