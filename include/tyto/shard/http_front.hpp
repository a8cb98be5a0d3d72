// HttpFront: the HTTP tracker protocol (BEP 3, 23, 7, 48, 24) on one shard. It owns the shard's
// TCP connections and their session state: which connection waits for an answer, and the buffers
// it lends owners for the peers of forwarded announces.
//
// One announce: a receive completion → serve() parses the request head (proto/http) → client
// address (trusted-proxy rules) → access list → owner = shard_of(info_hash): applied here and
// written at once, or a ForwardedHttpAnnounce lends the owner a buffer; the owner's HttpFront
// applies it, writes the peers into the lent buffer and sends an HttpAnnounceAnswer back; this
// shard writes the response. Requests of one connection are answered strictly in order: a
// connection waiting for an answer reads nothing more until it is written.
//
// Never dropped: an answer for a waiting connection (the owner retries a full mailbox every turn,
// because the requester holds a connection and a lent buffer for it). Refused with 503 and
// counted: an announce when no lent buffer or mailbox room is left.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "tyto/core/request.hpp"
#include "tyto/core/result.hpp"
#include "tyto/net/tcp_server.hpp"
#include "tyto/proto/http.hpp"
#include "tyto/shard/messages.hpp"

namespace tyto::shard {

class Shard;
struct PendingScrape;

class HttpFront {
 public:
  explicit HttpFront(Shard& shard);

  // After the ring exists. Without HTTP listeners it stays closed and takes nothing.
  std::string open(net::Ring& ring);
  bool enabled() const noexcept { return !http_waits_.empty(); }
  // The buffers this shard lends owners (ShardDirectory::lent_buffer); empty when closed.
  std::span<std::uint8_t> lent_area() noexcept;

  // Completions of Op::tcp_accept, tcp_recv, tcp_send and tcp_close.
  void on_completion(const io_uring_cqe& cqe) noexcept;
  // On the owner: applies a forwarded announce into the lent buffer and answers it.
  void on_forwarded_announce(const ForwardedHttpAnnounce& forwarded, std::uint32_t from) noexcept;
  // On the receiving shard: the owner's answer; writes the response.
  void on_announce_answer(const HttpAnnounceAnswer& answer) noexcept;
  // Held replies (storage.sync = "always"), once durable: an answer owed to the shard `to`; a
  // reply to this shard's own waiting connection.
  void send_answer(std::uint32_t to, const HttpAnnounceAnswer& answer) noexcept;
  void release_reply(net::ConnectionRef connection, const AnnounceReply& reply) noexcept;
  void write_scrape_reply(const PendingScrape& pending, bool resume) noexcept;
  void scrape_failed(const PendingScrape& pending, bool timed_out) noexcept;
  // Every turn: answers the owner's mailbox refused earlier.
  void retry_answers() noexcept;
  // Once a second.
  void tick(std::uint32_t now_s) noexcept;
  // Nothing owed to another shard, every lent buffer home, nothing unsent.
  bool idle() const noexcept;
  const net::TcpCounters& counters() const noexcept { return tcp_.counters(); }
  std::uint32_t open_connections() const noexcept { return tcp_.open_connections(); }

 private:
  void serve(net::ConnectionRef connection) noexcept;
  bool serve_request(net::ConnectionRef connection) noexcept;  // false: stop for now
  // `passkey`: the URL's passkey segment, as sent (empty for /announce and /scrape).
  void announce(net::ConnectionRef connection, const proto::http::RequestHead& head,
                std::string_view query, std::string_view passkey) noexcept;
  void forward_announce(net::ConnectionRef connection, const AnnounceRequest& request,
                        const Member& member, const PeerEndpoint& client, std::uint32_t peers_max,
                        std::uint32_t owner, bool keep_alive, bool compact) noexcept;
  void scrape(net::ConnectionRef connection, const proto::http::RequestHead& head,
              std::string_view query, std::string_view passkey) noexcept;
  void respond_status(net::ConnectionRef connection, int status, std::string_view reason,
                      bool keep_alive) noexcept;
  void answer_written(net::ConnectionRef connection, bool keep_alive, bool resume) noexcept;
  void write_announce(net::ConnectionRef connection, const AnnounceReply& reply,
                      const PeerEndpoint& client, const std::uint8_t* peers, bool keep_alive,
                      bool compact) noexcept;
  // The client's address: the TCP peer's, unless the peer is a trusted proxy that names another
  // (X-Forwarded-For, then X-Real-IP, then `ip`). A malformed name from a trusted proxy fails.
  Result<PeerEndpoint, const char*> client_address(net::ConnectionRef connection,
                                                   const proto::http::RequestHead& head,
                                                   std::string_view ip_parameter) noexcept;
  bool trusted_proxy(const PeerEndpoint& peer) const noexcept;

  // Per connection slot: whether the connection (this generation of the slot) waits for an
  // answer, and what the waiting request asked for.
  struct Wait {
    std::uint32_t generation = 0;
    bool waiting = false;
    bool keep_alive = true;
    bool compact = true;
    PeerEndpoint client;  // the announcing client (its family picks peers or peers6; BEP 24)
  };
  bool waiting(net::ConnectionRef connection) const noexcept {
    const Wait& wait = http_waits_[connection.index];
    return wait.waiting && wait.generation == connection.generation;
  }
  // HTTP answers the owner could not push (mailbox full), retried every turn, in order.
  struct PendingAnswer {
    std::uint32_t to;
    HttpAnnounceAnswer answer;
  };

  Shard& shard_;
  net::TcpServer tcp_;
  std::vector<Wait> http_waits_;
  std::vector<std::uint8_t> local_peers_;  // peers of announces answered on this shard
  // Buffers lent to owners for the peers of forwarded announces (one per waiting request); an
  // owner writes into one only between the forward and its answer, so each has one user at a
  // time. A forwarded announce names its buffer by index, never by address.
  std::vector<std::uint8_t> lent_buffers_;
  std::vector<std::uint32_t> free_lent_buffers_;
  std::vector<PendingAnswer> answers_to_retry_;
};

}  // namespace tyto::shard
