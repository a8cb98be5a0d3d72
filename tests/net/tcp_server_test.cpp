// TcpServer on a real ring and real loopback sockets: accept, receive (split and pipelined
// input), respond, close after flush (half-close and drain, or the close linked to the last
// answer when the client is done), idle timeout, and the connection table's cap.
#include "tyto/net/tcp_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>

namespace tyto::net {
namespace {

class TcpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(ring_.init(256, true), "");
    // Find a free port, then listen on it.
    const int probe = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t size = sizeof address;
    getsockname(probe, reinterpret_cast<sockaddr*>(&address), &size);
    close(probe);
    port_ = ntohs(address.sin_port);
    const auto listen = parse_socket_address("127.0.0.1:" + std::to_string(port_));
    ASSERT_EQ(server_.open(ring_, std::span(&*listen, 1), 4), "");
    server_.arm_all(ring_);
    ring_.submit();
  }

  int connect_client() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
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
  std::uint16_t port_ = 0;
  std::uint32_t now_s_ = 1;
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

}  // namespace
}  // namespace tyto::net
