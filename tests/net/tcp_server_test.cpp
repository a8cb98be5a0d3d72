// TcpServer on a real ring and real loopback sockets: accept, receive (split and pipelined
// input), respond, close after flush (half-close and drain, or the close linked to the last
// answer when the client is done), idle timeout, and the connection table's cap.
#include "tyto/net/tcp_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

namespace tyto::net {
namespace {

class TcpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(ring_.init(256, true), "");
    port_ = free_port(AF_INET);
    port6_ = free_port(AF_INET6);
    const SocketAddress listen[] = {
        *parse_socket_address("127.0.0.1:" + std::to_string(port_)),
        *parse_socket_address("[::1]:" + std::to_string(port6_)),
    };
    ASSERT_EQ(server_.open(ring_, listen, connections_max_), "");
    server_.arm_all(ring_);
    ring_.submit();
  }

  // A port free on the loopback address of `family` (bound, read, released).
  static std::uint16_t free_port(int family) {
    const int probe = socket(family, SOCK_STREAM, 0);
    sockaddr_storage address = loopback(family, 0);
    EXPECT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t size = sizeof address;
    getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size);
    close(probe);
    return family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port)
                             : ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  }

  // 127.0.0.<host> (host 1 unless given) or ::1, with a port.
  static sockaddr_storage loopback(int family, std::uint16_t port, std::uint8_t host = 1) {
    sockaddr_storage storage{};
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&storage);
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      in->sin_addr.s_addr = htonl((INADDR_LOOPBACK & ~0xffu) | host);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(port);
      in6->sin6_addr = in6addr_loopback;
    }
    return storage;
  }

  // A client of the IPv4 listener (or the IPv6 one), from 127.0.0.<source_host> when given.
  int connect_client(int family = AF_INET, std::uint8_t source_host = 0) {
    const int fd = socket(family, SOCK_STREAM, 0);
    if (source_host != 0) {
      sockaddr_storage source = loopback(AF_INET, 0, source_host);
      EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(sockaddr_in)), 0);
    }
    sockaddr_storage address = loopback(family, family == AF_INET ? port_ : port6_);
    const socklen_t size = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
  }

  // Runs the loop until `done` or 5 s. Each complete line ("...\n") of input is answered with
  // "<line length>\n"; a line "bye" is answered and the connection closed after the flush; a
  // line "end" too, and it is the client's last (client_done).
  template <class Done>
  void run_until(Done&& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      ring_.submit_and_wait(50);
      ring_.drain([&](const io_uring_cqe& cqe) {
        switch (user_data_op(cqe.user_data)) {
          case Op::tcp_accept:
            server_.on_accept(ring_, cqe, now_s_);
            break;
          case Op::tcp_recv:
            if (const auto connection = server_.on_receive(ring_, cqe, now_s_)) answer(*connection);
            break;
          case Op::tcp_send:
            server_.on_send(ring_, cqe);
            break;
          case Op::tcp_close:
            server_.on_close(ring_, cqe);
            break;
          default:
            break;
        }
      });
      ring_.submit();
    }
  }

  void answer(ConnectionRef connection) {
    credited_.push_back(server_.peer(connection));
    for (;;) {
      const auto input = server_.input(connection);
      const auto* end =
          static_cast<const std::uint8_t*>(std::memchr(input.data(), '\n', input.size()));
      if (input.empty() || end == nullptr) break;
      const std::size_t line_size = static_cast<std::size_t>(end - input.data());
      const bool bye = line_size == 3 && std::memcmp(input.data(), "bye", 3) == 0;
      const bool last = line_size == 3 && std::memcmp(input.data(), "end", 3) == 0;
      const std::string reply = std::to_string(line_size) + "\n";
      auto space = server_.output_space(connection, reply.size());
      ASSERT_EQ(space.size(), reply.size());
      std::memcpy(space.data(), reply.data(), reply.size());
      server_.commit_output(connection, reply.size());
      server_.consume_input(connection, line_size + 1);
      if (last) server_.client_done(connection);
      if (bye || last) {
        server_.flush(ring_, connection, true);
        server_.receive_more(ring_, connection);
        return;
      }
    }
    server_.flush(ring_, connection, false);
    server_.receive_more(ring_, connection);
  }

  Ring ring_;
  TcpServer server_;
  std::uint32_t connections_max_ = 4;
  std::uint16_t port_ = 0;   // the IPv4 listener's (127.0.0.1)
  std::uint16_t port6_ = 0;  // the IPv6 listener's (::1)
  std::uint32_t now_s_ = 1;
  std::vector<PeerEndpoint> credited_;  // the peer of each input answered, in order
};

TEST_F(TcpServerTest, AnswersPipelinedAndSplitInputInOrder) {
  const int client = connect_client();
  const std::string first = "abc\nhello\nx";  // two whole lines and the start of a third
  ASSERT_EQ(send(client, first.data(), first.size(), 0), static_cast<ssize_t>(first.size()));
  run_until([&] { return server_.counters().bytes_received >= first.size(); });
  const std::string second = "yz\n";
  ASSERT_EQ(send(client, second.data(), second.size(), 0), static_cast<ssize_t>(second.size()));
  run_until([&] { return server_.counters().bytes_sent >= 6; });
  char reply[64] = {};
  std::size_t got = 0;
  while (got < 6) {
    const ssize_t n = recv(client, reply + got, sizeof reply - got, 0);
    ASSERT_GT(n, 0);
    got += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(std::string(reply, got), "3\n5\n3\n");
  EXPECT_EQ(server_.open_connections(), 1u);
  close(client);
  run_until([&] { return server_.open_connections() == 0; });
  EXPECT_EQ(server_.open_connections(), 0u);
}

TEST_F(TcpServerTest, ClosesAfterFlushWhenAsked) {
  const int client = connect_client();
  ASSERT_EQ(send(client, "bye\n", 4, 0), 4);
  run_until([&] { return server_.counters().closed == 1; });
  char reply[16] = {};
  EXPECT_EQ(recv(client, reply, sizeof reply, 0), 2);
  EXPECT_EQ(std::string(reply, 2), "3\n");
  EXPECT_EQ(recv(client, reply, sizeof reply, 0), 0);  // EOF: the server closed
  close(client);
}

std::ptrdiff_t open_descriptors() {
  return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                       std::filesystem::directory_iterator{});
}

// Closes go through the ring: every one of many answered-and-closed connections gives its
// descriptor back (none leaks, none is closed twice) and its slot to the next client.
TEST_F(TcpServerTest, ClosedConnectionsGiveBackDescriptorsAndSlots) {
  const std::ptrdiff_t descriptors_before = open_descriptors();
  constexpr std::uint64_t connections_count = 20;  // 5 x the table of 4
  for (std::uint64_t i = 1; i <= connections_count; ++i) {
    const int client = connect_client();
    ASSERT_EQ(send(client, "bye\n", 4, 0), 4);
    run_until([&] { return server_.counters().bytes_sent >= 2 * i; });
    char reply[16] = {};
    ASSERT_EQ(recv(client, reply, sizeof reply, 0), 2);
    ASSERT_EQ(recv(client, reply, sizeof reply, 0), 0);  // our FIN after the answer
    close(client);                                       // the client's FIN ends the drain
    run_until([&] { return server_.counters().closed == i; });
    ASSERT_EQ(server_.counters().closed, i);
  }
  EXPECT_EQ(server_.counters().accepted, connections_count);
  EXPECT_EQ(server_.counters().refused_full, 0u);
  EXPECT_EQ(server_.open_connections(), 0u);
  EXPECT_EQ(open_descriptors(), descriptors_before);
}

// The client's last request: the answer and the close go in one submission, and the client
// reads the whole answer, then EOF (a FIN, not a reset), without closing first.
TEST_F(TcpServerTest, ClientsLastRequestIsAnsweredThenClosedWithTheCloseLinked) {
  const std::ptrdiff_t descriptors_before = open_descriptors();
  constexpr std::uint64_t connections_count = 20;  // 5 x the table of 4
  for (std::uint64_t i = 1; i <= connections_count; ++i) {
    const int client = connect_client();
    ASSERT_EQ(send(client, "end\n", 4, 0), 4);
    run_until(
        [&] { return server_.counters().closed_linked == i && server_.open_connections() == 0; });
    char reply[16] = {};
    ASSERT_EQ(recv(client, reply, sizeof reply, 0), 2);
    EXPECT_EQ(std::string(reply, 2), "3\n");
    ASSERT_EQ(recv(client, reply, sizeof reply, 0), 0);  // EOF, before our own close
    close(client);
  }
  run_until([&] { return open_descriptors() == descriptors_before; });
  EXPECT_EQ(server_.counters().closed, connections_count);
  EXPECT_EQ(server_.counters().closed_linked, connections_count);
  EXPECT_EQ(server_.counters().send_errors, 0u);
  EXPECT_EQ(server_.counters().bytes_sent, 2 * connections_count);
  EXPECT_EQ(open_descriptors(), descriptors_before);
}

// A client that says "last" but sends more behind it is not closed at once (a close with unread
// bytes is a reset, which can destroy the answer in flight): half-close, then drain.
TEST_F(TcpServerTest, InputBehindTheLastRequestGetsTheHalfCloseAndDrain) {
  const int client = connect_client();
  ASSERT_EQ(send(client, "end\nmore\n", 9, 0), 9);
  run_until([&] { return server_.counters().bytes_sent >= 2; });
  char reply[16] = {};
  ASSERT_EQ(recv(client, reply, sizeof reply, 0), 2);
  ASSERT_EQ(recv(client, reply, sizeof reply, 0), 0);     // our FIN after the answer
  ASSERT_EQ(send(client, "late\n", 5, MSG_NOSIGNAL), 5);  // drained, not reset
  run_until([&] { return server_.counters().bytes_received >= 14; });
  EXPECT_EQ(server_.counters().closed_linked, 0u);
  EXPECT_EQ(server_.open_connections(), 1u);
  close(client);
  run_until([&] { return server_.open_connections() == 0; });
  EXPECT_EQ(server_.open_connections(), 0u);
}

TEST_F(TcpServerTest, IdleConnectionsAreClosedAndTheTableCapHolds) {
  int clients[6];
  for (int& client : clients) client = connect_client();
  run_until([&] { return server_.counters().accepted + server_.counters().refused_full == 6; });
  EXPECT_EQ(server_.counters().accepted, 4u);  // the table holds 4
  EXPECT_EQ(server_.counters().refused_full, 2u);
  now_s_ += 31;
  server_.close_idle(ring_, now_s_, 30);
  run_until([&] { return server_.open_connections() == 0; });
  EXPECT_EQ(server_.counters().closed_idle, 4u);
  // Slots were released: a new client is accepted again.
  const int late = connect_client();
  run_until([&] { return server_.counters().accepted == 5; });
  EXPECT_EQ(server_.counters().accepted, 5u);
  for (int client : clients) close(client);
  close(late);
}

class TcpServerAddressTest : public TcpServerTest {
 protected:
  void SetUp() override {
    connections_max_ = 128;
    TcpServerTest::SetUp();
  }
};

// Each connection is credited with its own client's address and port, IPv4 and IPv6, also when
// many connections wait at once and one turn accepts them all (an address read from a buffer
// the accepts share would credit one client's address to others).
TEST_F(TcpServerAddressTest, CreditsEachConnectionWithItsClientsAddressAndPort) {
  constexpr int clients_per_family = 48;
  std::vector<int> clients;
  std::vector<PeerEndpoint> expected;
  for (int i = 0; i < 2 * clients_per_family; ++i) {
    const bool ipv4 = i % 2 == 0;
    // IPv4 clients from 127.0.0.2 to 127.0.0.7, so addresses differ as well as ports.
    const int client = ipv4 ? connect_client(AF_INET, static_cast<std::uint8_t>(2 + i % 6))
                            : connect_client(AF_INET6);
    sockaddr_storage source{};
    socklen_t size = sizeof source;
    ASSERT_EQ(getsockname(client, reinterpret_cast<sockaddr*>(&source), &size), 0);
    expected.push_back(*endpoint_of(reinterpret_cast<sockaddr*>(&source), size));
    ASSERT_EQ(expected.back().family, ipv4 ? AddressFamily::ipv4 : AddressFamily::ipv6);
    clients.push_back(client);
  }
  // All wait in the backlogs before the ring looks (data sent: TCP_DEFER_ACCEPT holds them
  // until then), so one turn finds more than its accepts can take.
  for (const int client : clients) ASSERT_EQ(send(client, "x\n", 2, 0), 2);
  run_until([&] { return credited_.size() == clients.size(); });
  ASSERT_EQ(credited_.size(), clients.size());
  EXPECT_EQ(server_.counters().accepted, clients.size());
  const auto order = [](const PeerEndpoint& a, const PeerEndpoint& b) {
    return std::pair(a.family, a.wire) < std::pair(b.family, b.wire);
  };
  std::sort(expected.begin(), expected.end(), order);
  std::sort(credited_.begin(), credited_.end(), order);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(to_string(credited_[i]), to_string(expected[i])) << i;
  }
  for (const int client : clients) close(client);
}

}  // namespace
}  // namespace tyto::net
