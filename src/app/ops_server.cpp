#include "tyto/app/ops_server.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "tyto/core/clock.hpp"
#include "tyto/core/log.hpp"
#include "tyto/proto/http.hpp"

namespace tyto::app {
namespace {

constexpr unsigned answer_timeout_ms = 1000;
constexpr int request_timeout_s = 2;

std::string response(int status, std::string_view reason, std::string_view content_type,
                     std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, reason, content_type, body.size(), body);
}

std::string json_error(int status, std::string_view reason, std::string_view message) {
  return response(status, reason, "application/json",
                  fmt::format("{{\"error\":\"{}\"}}\n", message));
}

// The ops endpoints split queries as the tracker's HTTP codec does.
using proto::http::query_value;

// info_hash as 40 hex digits or as the percent-encoded 20 bytes (as in an announce).
std::optional<InfoHash> parse_info_hash_parameter(std::string_view value) {
  std::uint8_t decoded[2 * sizeof(InfoHash)];
  std::size_t size = 0;
  if (!proto::http::percent_decode(value, decoded, size)) return std::nullopt;
  if (size == sizeof(InfoHash)) {
    InfoHash hash;
    std::memcpy(hash.bytes.data(), decoded, sizeof hash);
    return hash;
  }
  return parse_info_hash_hex(std::string_view(reinterpret_cast<const char*>(decoded), size));
}

std::string flags_json(std::uint8_t flags) {
  std::string text = "[";
  for (std::size_t bit = 0; bit < std::size(swarm::swarm_flag_names); ++bit) {
    if ((flags & (1u << bit)) == 0) continue;
    if (text.size() > 1) text += ',';
    text += fmt::format("\"{}\"", swarm::swarm_flag_names[bit]);
  }
  return text + "]";
}

// One swarm's statistics with its derived measures.
std::string swarm_json(const swarm::SwarmStatistics& s) {
  const std::uint32_t peers = s.seeders + s.leechers;
  const double seeder_ratio = peers == 0 ? 0.0 : static_cast<double>(s.seeders) / peers;
  const double window_s = s.window_s == 0 ? 1.0 : static_cast<double>(s.window_s);
  // health: "unseeded" (leechers but no seeder: nobody can finish), "seeded", "empty".
  const char* health = peers == 0 ? "empty" : s.seeders == 0 ? "unseeded" : "seeded";
  return fmt::format(
      "{{\"info_hash\":\"{}\",\"seeders\":{},\"leechers\":{},\"completed\":{},\"peers\":{},"
      "\"seeder_ratio\":{:.4f},\"health\":\"{}\",\"age_s\":{},\"window_s\":{},"
      "\"announces_last_window\":{},\"announce_rate_per_s\":{:.4f},"
      "\"joins_last_window\":{},\"leaves_last_window\":{},\"churn_last_window\":{},"
      "\"announces_this_window\":{},\"joins_this_window\":{},\"leaves_this_window\":{},"
      "\"unmatched_completions_this_window\":{},\"leechers_average\":{},"
      "\"prefix_share\":{:.3f},\"flags\":{}}}",
      to_hex(s.info_hash), s.seeders, s.leechers, s.completed, peers, seeder_ratio, health, s.age_s,
      s.window_s, s.announces_last_window, s.announces_last_window / window_s, s.joins_last_window,
      s.leaves_last_window, s.joins_last_window + s.leaves_last_window, s.announces_this_window,
      s.joins_this_window, s.leaves_this_window, s.unmatched_completions_this_window,
      s.leechers_average, s.prefix_share_permille / 1000.0, flags_json(s.flags));
}

}  // namespace

OpsServer::OpsServer(const Options& options, shard::Runtime& runtime)
    : options_(options), runtime_(runtime) {}

OpsServer::~OpsServer() {
  stop();
}

std::string OpsServer::start() {
  started_unix_s_ = unix_time_s();
  for (const net::SocketAddress& address : options_.metrics_listeners) {
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (address.family() == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) ||
        bind(fd, address.get(), address.size) != 0 || listen(fd, 64) != 0) {
      const std::string error =
          "metrics listener " + address.to_string() + ": " + std::strerror(errno);
      if (fd >= 0) close(fd);
      stop();
      return error;
    }
    listeners_.push_back(fd);
  }
  if (listeners_.empty()) return {};
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) return std::string("eventfd: ") + std::strerror(errno);
  thread_ = std::thread([this] { run(); });
  return {};
}

void OpsServer::stop() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  for (int fd : listeners_) close(fd);
  listeners_.clear();
  if (stop_fd_ >= 0) close(stop_fd_);
  stop_fd_ = -1;
}

void OpsServer::run() noexcept {
  std::vector<pollfd> polled;
  for (int fd : listeners_) polled.push_back({fd, POLLIN, 0});
  polled.push_back({stop_fd_, POLLIN, 0});
  for (;;) {
    if (poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR) continue;
      TYTO_LOG(log::Level::error, "metrics: poll: {}", std::strerror(errno));
      return;
    }
    if (polled.back().revents != 0) return;
    for (std::size_t i = 0; i + 1 < polled.size(); ++i) {
      if ((polled[i].revents & POLLIN) == 0) continue;
      const int connection = accept4(polled[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      serve(connection);
      close(connection);
    }
  }
}

void OpsServer::serve(int connection) noexcept {
  try {
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    const auto endpoint =
        getpeername(connection, reinterpret_cast<sockaddr*>(&peer), &peer_size) == 0
            ? net::endpoint_of(reinterpret_cast<const sockaddr*>(&peer), peer_size)
            : std::nullopt;
    const bool allowed =
        endpoint &&
        std::any_of(options_.metrics_allow.begin(), options_.metrics_allow.end(),
                    [&](const net::AddressPrefix& prefix) { return prefix.contains(*endpoint); });
    // Everyone's request head is read (a reply over unread bytes would end in a reset), but
    // a client outside the allowlist gets a fifth of a second for it.
    const timeval timeout = allowed ? timeval{request_timeout_s, 0} : timeval{0, 200'000};
    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    std::string reply;
    {
      std::uint8_t head_bytes[limits::http_request_head_size_max];
      std::size_t size = 0;
      proto::http::RequestHead head;
      proto::http::HeadStatus status = proto::http::HeadStatus::incomplete;
      while (status == proto::http::HeadStatus::incomplete) {
        if (size == sizeof head_bytes) {
          status = proto::http::HeadStatus::too_large;
          break;
        }
        const ssize_t got = recv(connection, head_bytes + size, sizeof head_bytes - size, 0);
        if (got <= 0) return;  // closed or too slow
        size += static_cast<std::size_t>(got);
        status = proto::http::parse_head(std::span<const std::uint8_t>(head_bytes, size), head);
      }
      if (!allowed) {
        TYTO_LOG_LIMITED(log::Level::debug, "metrics: refused a client outside metrics.allow");
        reply = json_error(403, "Forbidden", "not in metrics.allow");
      } else if (status == proto::http::HeadStatus::complete) {
        reply = respond(head.method, head.target);
      } else if (status == proto::http::HeadStatus::too_large) {
        reply = json_error(431, "Request Header Fields Too Large", "request head over 4 KiB");
      } else {
        reply = json_error(400, "Bad Request", "malformed request");
      }
    }
    for (std::size_t sent = 0; sent < reply.size();) {
      const ssize_t wrote =
          send(connection, reply.data() + sent, reply.size() - sent, MSG_NOSIGNAL);
      if (wrote <= 0) return;
      sent += static_cast<std::size_t>(wrote);
    }
    // Half-close, then take what the client already sent, so closing does not reset the reply.
    shutdown(connection, SHUT_WR);
    std::uint8_t rest[512];
    while (recv(connection, rest, sizeof rest, MSG_DONTWAIT) > 0) {
    }
  } catch (const std::exception& error) {  // out of memory formatting: drop this connection
    TYTO_LOG_LIMITED(log::Level::warning, "metrics: {}", error.what());
  }
}

std::string OpsServer::respond(std::string_view method, std::string_view target) {
  if (method != "GET") return json_error(405, "Method Not Allowed", "GET only");
  const auto [path, query] = proto::http::split_target(target);
  if (path == "/metrics") return metrics();
  if (path == "/stats") return stats();
  if (path == "/stats/swarm") return swarm_stats(query);
  if (path == "/stats/top") return top_stats(query);
  return json_error(404, "Not Found", "try /metrics, /stats, /stats/swarm, /stats/top");
}

std::vector<OpsServer::ShardAnswer> OpsServer::ask_all(shard::ControlKind kind,
                                                       std::uint32_t& missing,
                                                       swarm::TopOrder order, std::uint32_t count) {
  shard::ControlRequest request;
  request.kind = kind;
  request.order = order;
  request.count = count;
  const std::uint32_t shards_count = runtime_.shards_count();
  std::vector<std::uint32_t> shards(shards_count);
  for (std::uint32_t i = 0; i < shards_count; ++i) shards[i] = i;
  std::vector<shard::ControlAnswer> answers(shards_count);
  std::unique_ptr<bool[]> answered(new bool[shards_count]);
  runtime_.ask(shards, request, answers, std::span(answered.get(), shards_count),
               answer_timeout_ms);
  std::vector<ShardAnswer> kept;
  missing = 0;
  for (std::uint32_t i = 0; i < shards_count; ++i) {
    if (answered[i]) {
      kept.push_back({i, answers[i]});
    } else {
      ++missing;
    }
  }
  return kept;
}

std::string OpsServer::metrics() {
  std::uint32_t missing = 0;
  const auto answers = ask_all(shard::ControlKind::counters, missing);
  std::string body;
  auto gauge = [&body](std::string_view name, std::string_view help, std::uint64_t value) {
    body += fmt::format("# HELP {0} {1}.\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
  };
  gauge("tyto_shards", "Shards running", runtime_.shards_count());
  gauge("tyto_shards_unanswered", "Shards that did not answer this scrape within 1 s", missing);
  gauge("tyto_start_time_seconds", "Start time since the Unix epoch", started_unix_s_);
  std::vector<std::vector<shard::CounterRow>> rows;
  for (const auto& answer : answers) rows.push_back(shard::counter_rows(answer.answer.totals));
  const std::size_t metrics_count = shard::counter_rows(shard::ShardTotals{}).size();
  for (std::size_t m = 0; m < metrics_count && !rows.empty(); ++m) {
    const shard::CounterRow& first = rows[0][m];
    const std::string name = fmt::format("tyto_{}{}", first.name, first.gauge ? "" : "_total");
    body += fmt::format("# HELP {} {}.\n# TYPE {} {}\n", name, first.help, name,
                        first.gauge ? "gauge" : "counter");
    for (std::size_t a = 0; a < answers.size(); ++a) {
      body += fmt::format("{}{{shard=\"{}\"}} {}\n", name, answers[a].shard, rows[a][m].value);
    }
  }
  return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

std::string OpsServer::stats() {
  std::uint32_t missing = 0;
  const auto answers = ask_all(shard::ControlKind::counters, missing);
  shard::ShardTotals totals;
  for (const auto& answer : answers) totals.add(answer.answer.totals);
  auto object = [](const shard::ShardTotals& t) {
    std::string text = "{";
    for (const auto& row : shard::counter_rows(t)) {
      if (text.size() > 1) text += ',';
      text += fmt::format("\"{}\":{}", row.name, row.value);
    }
    return text + "}";
  };
  std::string per_shard = "[";
  for (const auto& answer : answers) {
    if (per_shard.size() > 1) per_shard += ',';
    per_shard +=
        fmt::format("{{\"shard\":{},\"counters\":{}}}", answer.shard, object(answer.answer.totals));
  }
  per_shard += "]";
  const std::uint64_t now_s = unix_time_s();
  const std::string body = fmt::format(
      "{{\"version\":\"0.1.0\",\"uptime_s\":{},\"shards\":{},\"shards_unanswered\":{},"
      "\"totals\":{},\"per_shard\":{}}}\n",
      now_s - started_unix_s_, runtime_.shards_count(), missing, object(totals), per_shard);
  return response(200, "OK", "application/json", body);
}

std::string OpsServer::swarm_stats(std::string_view query) {
  std::string_view value;
  if (!query_value(query, "info_hash", value)) {
    return json_error(400, "Bad Request", "info_hash is required");
  }
  const auto info_hash = parse_info_hash_parameter(value);
  if (!info_hash) {
    return json_error(400, "Bad Request",
                      "info_hash: 40 hex digits or the percent-encoded 20 bytes");
  }
  shard::ControlRequest request;
  request.kind = shard::ControlKind::swarm;
  request.info_hash = *info_hash;
  const std::uint32_t owner = runtime_.owner_of(*info_hash);
  auto answer = std::make_unique<shard::ControlAnswer>();
  bool answered = false;
  runtime_.ask(std::span(&owner, 1), request, std::span(answer.get(), 1), std::span(&answered, 1),
               answer_timeout_ms);
  if (!answered) return json_error(503, "Service Unavailable", "the owning shard did not answer");
  if (!answer->found) return json_error(404, "Not Found", "no such swarm");
  return response(200, "OK", "application/json", swarm_json(answer->swarm) + "\n");
}

std::string OpsServer::top_stats(std::string_view query) {
  swarm::TopOrder order = swarm::TopOrder::peers;
  std::string_view value;
  if (query_value(query, "by", value)) {
    const auto* names = std::begin(swarm::top_order_names);
    const auto* found = std::find(names, std::end(swarm::top_order_names), value);
    if (found == std::end(swarm::top_order_names)) {
      return json_error(400, "Bad Request",
                        "by: peers, seeders, leechers, completed, announces or churn");
    }
    order = static_cast<swarm::TopOrder>(found - names);
  }
  std::uint32_t count = 10;
  if (query_value(query, "n", value)) {
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), count);
    if (error != std::errc{} || end != value.data() + value.size() || count == 0 ||
        count > shard::top_count_max) {
      return json_error(400, "Bad Request", fmt::format("n: 1..{}", shard::top_count_max));
    }
  }
  std::uint32_t missing = 0;
  const auto answers = ask_all(shard::ControlKind::top, missing, order, count);
  std::vector<swarm::SwarmStatistics> merged;
  for (const auto& [shard_index, answer] : answers) {
    merged.insert(merged.end(), answer.top, answer.top + answer.top_count);
  }
  std::stable_sort(merged.begin(), merged.end(), [order](const auto& a, const auto& b) {
    return swarm::top_key(a, order) > swarm::top_key(b, order);
  });
  if (merged.size() > count) merged.resize(count);
  std::string list = "[";
  for (const auto& entry : merged) {
    if (list.size() > 1) list += ',';
    list += swarm_json(entry);
  }
  list += "]";
  const std::string body =
      fmt::format("{{\"by\":\"{}\",\"n\":{},\"shards_unanswered\":{},\"swarms\":{}}}\n",
                  swarm::top_order_names[static_cast<std::size_t>(order)], count, missing, list);
  return response(200, "OK", "application/json", body);
}

}  // namespace tyto::app
