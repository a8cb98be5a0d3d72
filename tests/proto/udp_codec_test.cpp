// BEP 15 / BEP 41 codec: hand-written expected bytes (not produced by the writers under test),
// every truncation of every valid request, and the answerable/dropped split for errors.
#include <gtest/gtest.h>

#include <vector>

#include "tyto/proto/udp.hpp"

namespace tyto::proto::udp {
namespace {

using Bytes = std::vector<std::uint8_t>;

const PeerEndpoint source_v4 = PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{10, 0, 0, 7}, 40000);
const PeerEndpoint source_v6 = PeerEndpoint::ipv6(
    std::array<std::uint8_t, 16>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
    40000);

Bytes connect_packet() {
  return {0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80,  // protocol id
          0x00, 0x00, 0x00, 0x00,                          // action: connect
          0xde, 0xad, 0xbe, 0xef};                         // transaction id
}

Bytes announce_packet() {
  Bytes packet = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // connection id
                  0x00, 0x00, 0x00, 0x01,                          // action: announce
                  0x11, 0x22, 0x33, 0x44};                         // transaction id
  for (int i = 0; i < 20; ++i) packet.push_back(static_cast<std::uint8_t>(0xa0 + i));  // info_hash
  for (int i = 0; i < 20; ++i) packet.push_back(static_cast<std::uint8_t>(0x30 + i));  // peer_id
  const Bytes tail = {0,    0,    0,    0,    0, 0, 0x01, 0x00,  // downloaded 256
                      0,    0,    0,    0,    0, 0, 0x02, 0x00,  // left 512
                      0,    0,    0,    0,    0, 0, 0x03, 0x00,  // uploaded 768
                      0,    0,    0,    2,                       // event: started
                      0x7f, 0,    0,    1,                       // IP field (ignored)
                      0xca, 0xfe, 0xba, 0xbe,                    // key
                      0xff, 0xff, 0xff, 0xff,                    // numwant -1
                      0x1a, 0xe1};                               // port 6881
  packet.insert(packet.end(), tail.begin(), tail.end());
  return packet;
}

Bytes scrape_packet(int hashes) {
  Bytes packet = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2, 0x55, 0x66, 0x77, 0x88};
  for (int h = 0; h < hashes; ++h)
    for (int i = 0; i < 20; ++i) packet.push_back(static_cast<std::uint8_t>(h * 20 + i));
  return packet;
}

TEST(UdpParse, Connect) {
  const auto parsed = parse_request(connect_packet(), source_v4);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value().action, Action::connect);
  EXPECT_EQ(std::get<ConnectRequest>(parsed.value().body).transaction_id, 0xdeadbeefu);
}

TEST(UdpParse, ConnectWithoutTheMagicIsDropped) {
  Bytes packet = connect_packet();
  packet[7] = 0x81;
  const auto parsed = parse_request(packet, source_v4);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().error, ParseError::bad_protocol_id);
  EXPECT_FALSE(parsed.error().answerable);
}

TEST(UdpParse, AnnounceFieldsAndPeerFromSourceAddress) {
  const auto parsed = parse_request(announce_packet(), source_v4);
  ASSERT_TRUE(parsed.ok());
  const auto& announce = std::get<AnnounceRequest>(parsed.value().body);
  EXPECT_EQ(announce.connection_id, 0x0102030405060708u);
  EXPECT_EQ(announce.transaction_id, 0x11223344u);
  EXPECT_EQ(announce.announce.info_hash.bytes[0], 0xa0);
  EXPECT_EQ(announce.announce.info_hash.bytes[19], 0xa0 + 19);
  EXPECT_EQ(announce.announce.peer_id.bytes[0], 0x30);
  EXPECT_EQ(announce.announce.downloaded_bytes, 256u);
  EXPECT_EQ(announce.announce.left_bytes, 512u);
  EXPECT_EQ(announce.announce.uploaded_bytes, 768u);
  EXPECT_EQ(announce.announce.event, AnnounceEvent::started);
  EXPECT_EQ(announce.announce.key, 0xcafebabeu);
  EXPECT_EQ(announce.announce.numwant, -1);
  // The source's IP (not the packet's 127.0.0.1 field) with the packet's port.
  const PeerEndpoint expected = PeerEndpoint::ipv4(std::array<std::uint8_t, 4>{10, 0, 0, 7}, 6881);
  EXPECT_EQ(announce.announce.peer, expected);
  EXPECT_EQ(announce.url_data_size, 0u);
  const auto parsed6 = parse_request(announce_packet(), source_v6);
  ASSERT_TRUE(parsed6.ok());
  const auto& peer6 = std::get<AnnounceRequest>(parsed6.value().body).announce.peer;
  EXPECT_EQ(peer6.family, AddressFamily::ipv6);
  EXPECT_EQ(peer6.port(), 6881);
  EXPECT_EQ(peer6.wire[0], 0x20);
}

TEST(UdpPeek, AnnounceInfoHashOnlyFromAnnounceShapedPackets) {
  const Bytes announce = announce_packet();
  const auto info_hash = peek_announce_info_hash(announce);
  ASSERT_TRUE(info_hash.has_value());
  EXPECT_EQ(*info_hash, std::get<AnnounceRequest>(parse_request(announce, source_v4).value().body)
                            .announce.info_hash);
  EXPECT_FALSE(peek_announce_info_hash({announce.data(), announce.size() - 1}).has_value());
  EXPECT_FALSE(peek_announce_info_hash(connect_packet()).has_value());
  EXPECT_FALSE(peek_announce_info_hash(scrape_packet(5)).has_value());  // 116 bytes, action 2
  EXPECT_FALSE(peek_announce_info_hash({}).has_value());
}

TEST(UdpParse, BadEventIsAnswerable) {
  Bytes packet = announce_packet();
  packet[83] = 4;  // event
  const auto parsed = parse_request(packet, source_v4);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().error, ParseError::bad_event);
  EXPECT_TRUE(parsed.error().answerable);
  EXPECT_EQ(parsed.error().transaction_id, 0x11223344u);
}

TEST(UdpParse, Bep41Options) {
  struct Case {
    Bytes options;
    bool ok;
    std::string url;
  };
  const Case cases[] = {
      {{}, true, ""},
      {{0x00}, true, ""},                                // end
      {{0x01, 0x01, 0x00}, true, ""},                    // nop, nop, end
      {{0x02, 0x04, '/', 'a', 'b', 'c'}, true, "/abc"},  // one URL data option
      {{0x02, 0x02, '/', 'a', 0x01, 0x02, 0x03, '?', 'k', '=', 0x00, 0x02, 0x01, 'z'},
       true,
       "/a?k="},                                              // concatenated; stops at end
      {{0x02, 0x01, 'x', 0x07, 0x02, 0x01, 'y'}, true, "x"},  // unknown option 7: stop
      {{0x02, 0x05, '/', 'a'}, false, ""},                    // length past the end
      {{0x02}, false, ""},                                    // length byte missing
  };
  for (const Case& test : cases) {
    Bytes packet = announce_packet();
    packet.insert(packet.end(), test.options.begin(), test.options.end());
    const auto parsed = parse_request(packet, source_v4);
    ASSERT_EQ(parsed.ok(), test.ok) << test.url;
    if (!test.ok) {
      EXPECT_EQ(parsed.error().error, ParseError::bad_option);
      EXPECT_TRUE(parsed.error().answerable);
      continue;
    }
    const auto& announce = std::get<AnnounceRequest>(parsed.value().body);
    EXPECT_EQ(announce.url_data_size, test.url.size());
    std::array<std::uint8_t, 64> url{};
    const std::size_t size = announce.url_data(url);
    EXPECT_EQ(std::string(url.begin(), url.begin() + size), test.url);
    // In place only when the first option holds it all; then it is the same bytes.
    const auto in_place = announce.url_data_in_place();
    const bool one_option = !test.options.empty() && test.options[0] == 0x02 &&
                            test.options[1] == test.url.size() && !test.url.empty();
    EXPECT_EQ(in_place.size(), one_option ? test.url.size() : 0u) << test.url;
    EXPECT_EQ(std::string(in_place.begin(), in_place.end()), one_option ? test.url : "");
  }
}

TEST(UdpParse, UrlDataIsAViewCopiedOutOnlyAsFarAsTheBufferHolds) {
  Bytes packet = announce_packet();
  for (int option = 0; option < 3; ++option) {
    packet.push_back(0x02);
    packet.push_back(255);
    packet.insert(packet.end(), 255, static_cast<std::uint8_t>('a' + option));
  }
  const auto parsed = parse_request(packet, source_v4);
  ASSERT_TRUE(parsed.ok());
  const auto& announce = std::get<AnnounceRequest>(parsed.value().body);
  EXPECT_EQ(announce.url_data_size, 3u * 255u);
  EXPECT_EQ(announce.options_wire.data(), packet.data() + 98);  // nothing copied at parse time
  std::array<std::uint8_t, 3 * 255> whole{};
  ASSERT_EQ(announce.url_data(whole), whole.size());
  EXPECT_EQ(whole[254], 'a');
  EXPECT_EQ(whole[255], 'b');
  EXPECT_EQ(whole[3 * 255 - 1], 'c');
  std::array<std::uint8_t, 300> cut{};
  cut.fill('?');
  ASSERT_EQ(announce.url_data(cut), cut.size());  // the rest is cut, never written past the end
  EXPECT_EQ(cut[254], 'a');
  EXPECT_EQ(cut[299], 'b');
  EXPECT_EQ(announce.url_data(std::span<std::uint8_t>()), 0u);
  EXPECT_TRUE(announce.url_data_in_place().empty());  // three options: concatenated, not a view
}

TEST(UdpParse, ScrapeOfOneAndOfSeventyFourHashes) {
  for (int hashes : {1, 74}) {
    const auto packet = scrape_packet(hashes);  // the request's hashes are a view into it
    const auto parsed = parse_request(packet, source_v4);
    ASSERT_TRUE(parsed.ok());
    const auto& scrape = std::get<ScrapeRequest>(parsed.value().body);
    EXPECT_EQ(scrape.info_hashes_count, static_cast<std::uint32_t>(hashes));
    EXPECT_EQ(scrape.transaction_id, 0x55667788u);
    EXPECT_EQ(scrape.info_hash(hashes - 1).bytes[0], static_cast<std::uint8_t>((hashes - 1) * 20));
  }
}

TEST(UdpParse, BadScrapesAreAnswerable) {
  auto error_of = [](const Bytes& packet) {
    const auto parsed = parse_request(packet, source_v4);
    EXPECT_FALSE(parsed.ok());
    EXPECT_TRUE(parsed.error().answerable);
    return parsed.error().error;
  };
  EXPECT_EQ(error_of(scrape_packet(0)), ParseError::bad_scrape_size);
  Bytes partial = scrape_packet(2);
  partial.pop_back();
  EXPECT_EQ(error_of(partial), ParseError::bad_scrape_size);
  EXPECT_EQ(error_of(scrape_packet(75)), ParseError::too_many_hashes);
}

TEST(UdpParse, UnknownActionIsAnswerableShortPacketsAreDropped) {
  Bytes packet = connect_packet();
  packet[11] = 9;
  const auto parsed = parse_request(packet, source_v4);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().error, ParseError::unknown_action);
  EXPECT_TRUE(parsed.error().answerable);
  EXPECT_EQ(parsed.error().transaction_id, 0xdeadbeefu);
  EXPECT_STREQ(parsed.error().message(), "unknown action");
}

TEST(UdpParse, EveryTruncationFailsCleanly) {
  for (const Bytes& valid : {connect_packet(), announce_packet(), scrape_packet(3)}) {
    for (std::size_t size = 0; size < valid.size(); ++size) {
      const Bytes cut(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(size));
      const auto parsed = parse_request(cut, source_v4);
      if (valid.size() > 16 && size > 16 && (size - 16) % 20 == 0 && valid[11] == 2) {
        EXPECT_TRUE(parsed.ok());  // fewer whole hashes is still a valid scrape
        continue;
      }
      ASSERT_FALSE(parsed.ok()) << size;
      EXPECT_EQ(parsed.error().answerable, size >= 16) << size;
    }
  }
}

TEST(UdpWrite, ConnectReplyBytes) {
  std::uint8_t out[16];
  ASSERT_EQ(write_connect_reply(out, 0xdeadbeef, 0x0102030405060708), 16u);
  const Bytes expected = {0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(Bytes(out, out + 16), expected);
  EXPECT_EQ(write_connect_reply(std::span(out).first(15), 1, 2), 0u);
}

TEST(UdpWrite, AnnounceReplyHeaderBytes) {
  std::uint8_t out[20];
  ASSERT_EQ(write_announce_reply_header(out, 0x11223344, 1800, 3, 5), 20u);
  const Bytes expected = {0,    0,    0, 1, 0x11, 0x22, 0x33, 0x44, 0, 0,
                          0x07, 0x08, 0, 0, 0,    3,    0,    0,    0, 5};
  EXPECT_EQ(Bytes(out, out + 20), expected);
}

TEST(UdpWrite, ScrapeReplyBytesInBep15Order) {
  std::uint8_t out[32] = {};
  const ScrapeEntry entries[2] = {{1, 2, 3}, {0x0100, 0, 7}};  // seeders, leechers, completed
  ASSERT_EQ(write_scrape_reply(out, 0x55667788, entries), 32u);
  const Bytes expected = {0, 0, 0, 2, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 1,
                          0, 0, 0, 3, 0,    0,    0,    2,  // seeders, completed, leechers
                          0, 0, 1, 0, 0,    0,    0,    7,    0, 0, 0, 0};
  EXPECT_EQ(Bytes(out, out + 32), expected);
  EXPECT_EQ(write_scrape_reply(std::span(out).first(31), 1, entries), 0u);
}

TEST(UdpWrite, ErrorReplyBytes) {
  std::uint8_t out[16];
  ASSERT_EQ(write_error_reply(out, 0x01020304, "nope"), 12u);
  const Bytes expected = {0, 0, 0, 3, 1, 2, 3, 4, 'n', 'o', 'p', 'e'};
  EXPECT_EQ(Bytes(out, out + 12), expected);
  EXPECT_EQ(write_error_reply(std::span(out).first(11), 1, "nope"), 0u);
}

TEST(UdpNumwant, DefaultsAndCaps) {
  EXPECT_EQ(udp_peers_max(-1, AddressFamily::ipv4, 50, 200), 50u);
  EXPECT_EQ(udp_peers_max(0, AddressFamily::ipv4, 50, 200), 0u);  // none, not the default
  EXPECT_EQ(udp_peers_max(30, AddressFamily::ipv4, 50, 200), 30u);
  EXPECT_EQ(udp_peers_max(1 << 30, AddressFamily::ipv4, 50, 200), 200u);
  EXPECT_EQ(udp_peers_max(1 << 30, AddressFamily::ipv6, 50, 200), 79u);  // 20 + 79 × 18 ≤ 1452
  EXPECT_EQ(udp_peers_max(1000, AddressFamily::ipv4, 50, 1000), 238u);   // 20 + 238 × 6 ≤ 1452
}

}  // namespace
}  // namespace tyto::proto::udp
