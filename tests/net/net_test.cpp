#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "tyto/net/address.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/net/udp_socket.hpp"

namespace tyto::net {
namespace {

TEST(SocketAddress, ParsesIpv4AndIpv6ListenSpecs) {
  const auto v4 = parse_socket_address("127.0.0.1:6969");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->to_string(), "127.0.0.1:6969");
  const auto v6 = parse_socket_address("[::1]:7000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->to_string(), "[::1]:7000");
  EXPECT_EQ(parse_socket_address("[::]:0")->to_string(), "[::]:0");
}

TEST(SocketAddress, RejectsMalformedSpecs) {
  for (const char* text :
       {"", "6969", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "1.2.3:80", "[::1]", "[::1]6969",
        "::1:6969", "[1.2.3.4]:80", "host:80", "127.0.0.1:80x", "[::1]:-1"}) {
    EXPECT_FALSE(parse_socket_address(text)) << text;
  }
}

TEST(EndpointOf, ConvertsToWireFormatAndUnmapsIpv4) {
  const auto v4 = parse_socket_address("10.1.2.3:6881");
  const auto endpoint = endpoint_of(v4->get(), v4->size);
  ASSERT_TRUE(endpoint);
  EXPECT_EQ(endpoint->family, AddressFamily::ipv4);
  const std::uint8_t expected[6] = {10, 1, 2, 3, 0x1a, 0xe1};
  EXPECT_EQ(std::memcmp(endpoint->wire.data(), expected, 6), 0);
  const auto mapped = parse_socket_address("[::ffff:10.1.2.3]:6881");
  EXPECT_EQ(endpoint_of(mapped->get(), mapped->size), endpoint);
  const auto v6 = parse_socket_address("[2001:db8::1]:1");
  const auto endpoint6 = endpoint_of(v6->get(), v6->size);
  ASSERT_TRUE(endpoint6);
  EXPECT_EQ(endpoint6->family, AddressFamily::ipv6);
  EXPECT_EQ(endpoint6->port(), 1);
  EXPECT_FALSE(endpoint_of(v4->get(), 4));  // truncated sockaddr
}

TEST(ParseIpAddress, AcceptsBothFamiliesAndUnmapsIpv4) {
  const auto v4 = parse_ip_address(" 192.0.2.7 ");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, AddressFamily::ipv4);
  EXPECT_EQ(v4->wire[0], 192);
  EXPECT_EQ(v4->wire[3], 7);
  EXPECT_EQ(v4->port(), 0);
  EXPECT_EQ(parse_ip_address("::ffff:192.0.2.7"), v4);
  const auto v6 = parse_ip_address("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, AddressFamily::ipv6);
  EXPECT_EQ(v6->wire[0], 0x20);
  EXPECT_EQ(v6->wire[15], 1);
  for (const char* text : {"", " ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "host", "1.2.3.4:80",
                           "[::1]", "2001:db8::1::2", "1.2.3.4/8"}) {
    EXPECT_FALSE(parse_ip_address(text)) << text;
  }
  EXPECT_FALSE(parse_ip_address(std::string(200, '1')));
}

TEST(AddressPrefix, MatchesByPrefixLengthAndFamily) {
  const auto ten = parse_address_prefix("10.0.0.0/8");
  ASSERT_TRUE(ten);
  EXPECT_TRUE(ten->contains(*parse_ip_address("10.255.1.2")));
  EXPECT_FALSE(ten->contains(*parse_ip_address("11.0.0.1")));
  EXPECT_FALSE(ten->contains(*parse_ip_address("::a00:1")));  // other family
  // Host bits in the text are ignored; an odd length masks inside a byte.
  const auto odd = parse_address_prefix("192.168.7.9/23");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(*parse_ip_address("192.168.6.1")));
  EXPECT_TRUE(odd->contains(*parse_ip_address("192.168.7.255")));
  EXPECT_FALSE(odd->contains(*parse_ip_address("192.168.8.1")));
  const auto host = parse_address_prefix("127.0.0.1");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length_bits, 32u);
  EXPECT_TRUE(host->contains(*parse_ip_address("127.0.0.1")));
  EXPECT_FALSE(host->contains(*parse_ip_address("127.0.0.2")));
  const auto any = parse_address_prefix("0.0.0.0/0");
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->contains(*parse_ip_address("203.0.113.9")));
  const auto v6 = parse_address_prefix("2001:db8::/33");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*parse_ip_address("2001:db8:7fff::1")));
  EXPECT_FALSE(v6->contains(*parse_ip_address("2001:db8:8000::1")));
  EXPECT_TRUE(parse_address_prefix("::1/128")->contains(*parse_ip_address("::1")));
  for (const char* text : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "/8", "10/8",
                           "10.0.0.0/8/8", "10.0.0.0/-1"}) {
    EXPECT_FALSE(parse_address_prefix(text)) << text;
  }
}

TEST(UserData, PacksOpAndIndex) {
  const std::uint64_t packed = pack_user_data(Op::udp_send, 4095);
  EXPECT_EQ(user_data_op(packed), Op::udp_send);
  EXPECT_EQ(user_data_index(packed), 4095u);
}

// A real ring and real sockets on loopback: a datagram sent to `target` on a socket bound to
// `listen_host` comes in through the provided buffer ring with its source (and, on a wildcard
// socket, its destination), and a reply goes out from the address it was sent to.
void expect_round_trip(const char* listen_host, const char* target_host,
                       bool expect_local_address) {
  ASSERT_EQ(io_uring_support_problem(), "");
  Ring ring;
  ASSERT_EQ(ring.init(64, true), "");
  UdpSockets sockets;
  // Port 0: the kernel picks; find it with getsockname through a probe socket afterwards.
  const int probe = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in bound{};
  bound.sin_family = AF_INET;
  bound.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&bound), sizeof bound), 0);
  socklen_t size = sizeof bound;
  getsockname(probe, reinterpret_cast<sockaddr*>(&bound), &size);
  close(probe);  // free the port for the sockets under test
  const auto listen =
      parse_socket_address(std::string(listen_host) + ":" + std::to_string(ntohs(bound.sin_port)));
  ASSERT_EQ(sockets.bind(std::span(&*listen, 1)), "");
  ASSERT_EQ(sockets.open(ring), "");
  sockets.arm_all(ring);
  ring.submit();

  const int client = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in client_address{};
  client_address.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.9", &client_address.sin_addr);
  ASSERT_EQ(bind(client, reinterpret_cast<sockaddr*>(&client_address), sizeof client_address), 0);
  sockaddr_in target = bound;
  inet_pton(AF_INET, target_host, &target.sin_addr);
  const char hello[] = "hello tracker";
  ASSERT_EQ(
      sendto(client, hello, sizeof hello, 0, reinterpret_cast<sockaddr*>(&target), sizeof target),
      static_cast<ssize_t>(sizeof hello));

  bool replied = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!replied && std::chrono::steady_clock::now() < deadline) {
    ring.submit_and_wait(100);
    ring.drain([&](const io_uring_cqe& cqe) {
      if (user_data_op(cqe.user_data) == Op::udp_recv) {
        const auto datagram = sockets.receive(ring, cqe);
        if (datagram) {
          EXPECT_EQ(datagram->payload.size(), sizeof hello);
          EXPECT_EQ(datagram->source.family, AddressFamily::ipv4);
          EXPECT_EQ(datagram->source.wire[3], 9);  // 127.0.0.9
          EXPECT_EQ(datagram->route.has_local_address, expect_local_address);
          const auto slot = sockets.acquire_send_slot();
          ASSERT_TRUE(slot);
          std::memcpy(sockets.send_buffer(*slot).data(), "pong", 4);
          sockets.send(ring, *slot, 4, datagram->route);
          replied = true;
        }
        sockets.recycle(cqe);
      }
    });
  }
  ASSERT_TRUE(replied);
  ring.submit();
  char reply[16] = {};
  sockaddr_in from{};
  socklen_t from_size = sizeof from;
  timeval timeout{5, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  const ssize_t got =
      recvfrom(client, reply, sizeof reply, 0, reinterpret_cast<sockaddr*>(&from), &from_size);
  ASSERT_EQ(got, 4) << std::strerror(errno);
  EXPECT_EQ(std::memcmp(reply, "pong", 4), 0);
  char from_text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &from.sin_addr, from_text, sizeof from_text);
  EXPECT_STREQ(from_text, target_host);  // replied from the address the client used
  ring.submit_and_wait(100);
  ring.drain([&](const io_uring_cqe& cqe) {
    if (user_data_op(cqe.user_data) == Op::udp_send) sockets.sent(cqe);
  });
  EXPECT_EQ(sockets.counters().datagrams_sent, 1u);
  close(client);
}

// Wildcard: the reply's source comes from the request's PKTINFO (not 0.0.0.0, not .1).
TEST(UdpSockets, WildcardSocketRepliesFromTheAddressUsed) {
  expect_round_trip("0.0.0.0", "127.0.0.77", true);
}

// Bound to one address: no PKTINFO asked or sent; the reply leaves from the bound address.
TEST(UdpSockets, BoundSocketRepliesFromItsAddressWithoutPktinfo) {
  expect_round_trip("127.0.0.77", "127.0.0.77", false);
}

}  // namespace
}  // namespace tyto::net
