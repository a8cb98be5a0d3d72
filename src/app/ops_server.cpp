#include "tyto/app/ops_server.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "tyto/cluster/cluster_client.hpp"
#include "tyto/core/clock.hpp"
#include "tyto/core/log.hpp"
#include "tyto/proto/http.hpp"

namespace tyto::app {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto answer_timeout = std::chrono::seconds(1);
constexpr auto request_timeout = std::chrono::seconds(2);
// A client outside metrics.allow gets a fifth of a second to send its head (it is read all the
// same: a reply over unread bytes would end in a reset).
constexpr auto refused_timeout = std::chrono::milliseconds(200);
// The dashboard's sample: one a second; a shard that has not answered in 900 ms is left out.
constexpr auto sample_period = std::chrono::seconds(1);
constexpr auto sample_timeout = std::chrono::milliseconds(900);

std::string response(int status, std::string_view reason, std::string_view content_type,
                     std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, reason, content_type, body.size(), body);
}

// The page may load nothing from another host, and no one may frame it.
constexpr std::string_view page_headers =
    "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n"
    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n";

std::string response_with(int status, std::string_view reason, std::string_view content_type,
                          std::string_view headers, std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: "
      "close\r\n\r\n{}",
      status, reason, content_type, body.size(), headers, body);
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

}  // namespace

struct OpsServer::Connection {
  enum class Stage : std::uint8_t { reading, asking, writing };
  int fd = -1;
  bool allowed = false;
  Stage stage = Stage::reading;
  Clock::time_point deadline;
  std::array<std::uint8_t, limits::http_request_head_size_max> head;
  std::size_t head_size = 0;
  Question question;
  std::string reply;
  std::size_t sent = 0;
};

OpsServer::OpsServer(const Options& options, shard::Runtime& runtime)
    : options_(options), runtime_(runtime) {}

OpsServer::~OpsServer() {
  stop();
}

std::string OpsServer::start() {
  started_unix_s_ = unix_time_s();
  started_at_ = Clock::now();
  sample_due_ = started_at_;
  for (const net::SocketAddress& address : options_.metrics_listeners) {
    const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
  // Allocated once: the ring and a sample's answers.
  history_ = std::make_unique<DashboardHistory>(runtime_.shards_count());
  sample_totals_.resize(runtime_.shards_count());
  sample_answers_.reserve(runtime_.shards_count());
  if (std::string error = waker_.init(); !error.empty()) {
    TYTO_LOG(log::Level::warning, "metrics: no waker ring ({}): answers may wait for a tick",
             error);
  }
  return thread_.start("metrics", shard::BridgeThread::doorbell_of(runtime_.control_bridge()),
                       *this);
}

void OpsServer::stop() {
  thread_.stop();
  for (const auto& connection : connections_) close(connection->fd);
  connections_.clear();
  for (int fd : listeners_) close(fd);
  listeners_.clear();
}

void OpsServer::watch(std::vector<pollfd>& polled, Clock::time_point& wake_at) {
  wake_at = std::min(wake_at, sample_serial_ != 0 ? sample_deadline_ : sample_due_);
  const bool room = connections_.size() < connections_max;
  for (int fd : listeners_) polled.push_back({fd, static_cast<short>(room ? POLLIN : 0), 0});
  for (const auto& connection : connections_) {
    const short events = connection->stage == Connection::Stage::reading   ? POLLIN
                         : connection->stage == Connection::Stage::writing ? POLLOUT
                                                                           : 0;
    polled.push_back({connection->fd, events, 0});
    wake_at = std::min(wake_at, connection->deadline);
  }
}

// Answers first, then new connections, reads, writes and deadlines.
void OpsServer::turn(std::span<const pollfd> polled) {
  take_answers();
  sample(Clock::now());
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    if (polled[i].revents & POLLIN) accept_from(listeners_[i]);
  }
  // Only the connections polled this time (accept_from appends after them).
  const std::span<const pollfd> polled_connections = polled.subspan(listeners_.size());
  for (std::size_t i = 0; i < polled_connections.size(); ++i) {
    Connection& connection = *connections_[i];
    if (polled_connections[i].revents == 0) continue;
    if (connection.stage == Connection::Stage::reading) read_head(connection);
    if (connection.stage == Connection::Stage::writing) write_reply(connection);
  }
  const auto now = Clock::now();
  for (const auto& connection : connections_) {
    if (connection->fd < 0 || now < connection->deadline) continue;
    if (connection->stage == Connection::Stage::asking) {
      finish_question(*connection);  // the shards that did not answer are reported missing
      write_reply(*connection);
    } else {
      connection->fd = (close(connection->fd), -1);  // too slow to send or to take: give up
    }
  }
  std::erase_if(connections_, [](const auto& connection) { return connection->fd < 0; });
}

void OpsServer::accept_from(int listener) noexcept {
  while (connections_.size() < connections_max) {
    sockaddr_storage peer{};
    socklen_t peer_size = sizeof peer;
    const int fd = accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_size,
                           SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN: no more waiting, or a transient error
    try {
      auto connection = std::make_unique<Connection>();
      connection->fd = fd;
      const auto endpoint = net::endpoint_of(reinterpret_cast<const sockaddr*>(&peer), peer_size);
      connection->allowed =
          endpoint &&
          std::any_of(options_.metrics_allow.begin(), options_.metrics_allow.end(),
                      [&](const net::AddressPrefix& prefix) { return prefix.contains(*endpoint); });
      connection->deadline =
          Clock::now() + (connection->allowed ? request_timeout : refused_timeout);
      connections_.push_back(std::move(connection));
    } catch (const std::exception& error) {  // out of memory: drop this connection
      TYTO_LOG_LIMITED(log::Level::warning, "metrics: {}", error.what());
      close(fd);
      return;
    }
  }
}

void OpsServer::read_head(Connection& connection) noexcept {
  namespace http = proto::http;
  http::RequestHead head;
  http::HeadStatus status = http::HeadStatus::incomplete;
  while (status == http::HeadStatus::incomplete) {
    if (connection.head_size == connection.head.size()) {
      status = http::HeadStatus::too_large;
      break;
    }
    const ssize_t got = recv(connection.fd, connection.head.data() + connection.head_size,
                             connection.head.size() - connection.head_size, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;  // later
    if (got <= 0) {  // closed or broken before a whole head
      connection.fd = (close(connection.fd), -1);
      return;
    }
    connection.head_size += static_cast<std::size_t>(got);
    status = http::parse_head(
        std::span<const std::uint8_t>(connection.head.data(), connection.head_size), head);
  }
  try {
    Question question;
    if (!connection.allowed) {
      TYTO_LOG_LIMITED(log::Level::debug, "metrics: refused a client outside metrics.allow");
      connection.reply = json_error(403, "Forbidden", "not in metrics.allow");
    } else if (status == http::HeadStatus::complete) {
      connection.reply = plan(head.method, head.target, question);
    } else if (status == http::HeadStatus::too_large) {
      connection.reply =
          json_error(431, "Request Header Fields Too Large", "request head over 4 KiB");
    } else {
      connection.reply = json_error(400, "Bad Request", "malformed request");
    }
    if (connection.reply.empty()) {
      ask(connection, std::move(question));
      return;
    }
  } catch (const std::exception& error) {  // out of memory formatting: drop this connection
    TYTO_LOG_LIMITED(log::Level::warning, "metrics: {}", error.what());
    connection.fd = (close(connection.fd), -1);
    return;
  }
  connection.stage = Connection::Stage::writing;
  connection.deadline = Clock::now() + request_timeout;
}

// Sends the question to its shards (one shard for a swarm, all otherwise) and waits for them.
void OpsServer::ask(Connection& connection, Question question) noexcept {
  shard::ControlBridge& bridge = runtime_.control_bridge();
  question.request.serial = ++serial_;
  question.asked = 0;
  const std::uint32_t shards = runtime_.shards_count();
  const bool one = question.page == Page::swarm;
  const std::uint32_t first = one ? runtime_.owner_of(question.request.info_hash) : 0;
  for (std::uint32_t shard = first; shard < (one ? first + 1 : shards); ++shard) {
    // A full queue: the shard has 16 questions unanswered; it counts as unanswered here.
    question.asked += bridge.send(shard, question.request);
  }
  bridge.publish(runtime_.shard_presence(), waker_);
  connection.question = std::move(question);
  connection.question.answers.reserve(connection.question.asked);
  connection.stage = Connection::Stage::asking;
  connection.deadline = Clock::now() + answer_timeout;
  if (connection.question.asked == 0) finish_question(connection);
}

void OpsServer::take_answers() noexcept {
  runtime_.control_bridge().receive(
      [this](std::uint32_t shard, const shard::ControlAnswer& answer) {
        if (sample_serial_ != 0 && answer.serial == sample_serial_) {
          sample_totals_[shard] = answer.totals;
          sample_answers_.push_back({shard, &sample_totals_[shard]});
          if (sample_answers_.size() == sample_asked_) record_sample();
          return;
        }
        for (const auto& connection : connections_) {
          Question& question = connection->question;
          if (connection->stage != Connection::Stage::asking ||
              question.request.serial != answer.serial)
            continue;
          question.answers.push_back({shard, answer});
          if (question.answers.size() == question.asked) {
            finish_question(*connection);
            write_reply(*connection);
          }
          return;
        }
        // No one waits for it any more: a late answer to a question that timed out.
      });
}

void OpsServer::sample(Clock::time_point now) noexcept {
  if (sample_serial_ != 0) {
    if (now >= sample_deadline_) record_sample();  // with the shards that answered
    return;
  }
  if (now < sample_due_) return;
  // Seconds the thread missed (it was late) stay gaps: the sample is of the current second.
  sample_second_ = static_cast<std::uint64_t>((now - started_at_) / sample_period);
  sample_due_ = started_at_ + (sample_second_ + 1) * sample_period;
  sample_deadline_ = now + sample_timeout;
  shard::ControlRequest request;
  request.kind = shard::ControlKind::counters;
  request.serial = sample_serial_ = ++serial_;
  sample_asked_ = 0;
  sample_answers_.clear();
  shard::ControlBridge& bridge = runtime_.control_bridge();
  for (std::uint32_t shard = 0; shard < runtime_.shards_count(); ++shard) {
    sample_asked_ += bridge.send(shard, request);  // a full queue: this shard is left out
  }
  bridge.publish(runtime_.shard_presence(), waker_);
  if (sample_asked_ == 0) record_sample();
}

void OpsServer::record_sample() noexcept {
  const auto at_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     sample_deadline_ - sample_timeout - started_at_)
                                     .count());
  if (sample_second_ > history_->last_second() || history_->empty()) {
    history_->record(sample_second_, at_ms, sample_answers_);
  }
  sample_serial_ = 0;
  sample_answers_.clear();
}

void OpsServer::finish_question(Connection& connection) {
  try {
    std::sort(connection.question.answers.begin(), connection.question.answers.end(),
              [](const auto& a, const auto& b) { return a.shard < b.shard; });
    connection.reply = render(connection.question);
  } catch (const std::exception& error) {
    TYTO_LOG_LIMITED(log::Level::warning, "metrics: {}", error.what());
    connection.reply = json_error(500, "Internal Server Error", "out of memory");
  }
  connection.question = Question{};
  connection.stage = Connection::Stage::writing;
  connection.deadline = Clock::now() + request_timeout;
}

void OpsServer::write_reply(Connection& connection) noexcept {
  if (connection.fd < 0) return;
  while (connection.sent < connection.reply.size()) {
    const ssize_t wrote = send(connection.fd, connection.reply.data() + connection.sent,
                               connection.reply.size() - connection.sent, MSG_NOSIGNAL);
    if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;  // later
    if (wrote <= 0) break;
    connection.sent += static_cast<std::size_t>(wrote);
  }
  // Half-close, then take what the client already sent, so closing does not reset the reply.
  shutdown(connection.fd, SHUT_WR);
  std::uint8_t rest[512];
  while (recv(connection.fd, rest, sizeof rest, MSG_DONTWAIT) > 0) {
  }
  connection.fd = (close(connection.fd), -1);
}

std::string OpsServer::plan(std::string_view method, std::string_view target, Question& question) {
  if (method != "GET") return json_error(405, "Method Not Allowed", "GET only");
  const auto [path, query] = proto::http::split_target(target);
  question.request.kind = shard::ControlKind::counters;
  if (path == "/metrics") {
    question.page = Page::metrics;
    return {};
  }
  if (path == "/stats") {
    question.page = Page::stats;
    return {};
  }
  if (path == "/") {  // the dashboard: no shard is asked
    return response_with(200, "OK", "text/html; charset=utf-8", page_headers, dashboard_page());
  }
  std::string_view value;
  if (path == "/stats/swarm") {
    if (!query_value(query, "info_hash", value)) {
      return json_error(400, "Bad Request", "info_hash is required");
    }
    const auto info_hash = parse_info_hash_parameter(value);
    if (!info_hash) {
      return json_error(400, "Bad Request",
                        "info_hash: 40 hex digits or the percent-encoded 20 bytes");
    }
    question.page = Page::swarm;
    question.request.kind = shard::ControlKind::swarm;
    question.request.info_hash = *info_hash;
    return {};
  }
  if (path != "/stats/top" && path != "/dashboard.json") {
    return json_error(404, "Not Found",
                      "try /, /metrics, /stats, /stats/swarm, /stats/top, /dashboard.json");
  }
  question.page = path == "/stats/top" ? Page::top : Page::dashboard;
  if (question.page == Page::dashboard && query_value(query, "since", value)) {
    std::uint64_t& since = question.since_second;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), since);
    if (error != std::errc{} || end != value.data() + value.size()) {
      return json_error(400, "Bad Request", "since: a second the last answer gave");
    }
  }
  question.request.kind = shard::ControlKind::top;
  question.request.order = store::TopOrder::peers;
  if (query_value(query, "by", value)) {
    const auto* names = std::begin(store::top_order_names);
    const auto* found = std::find(names, std::end(store::top_order_names), value);
    if (found == std::end(store::top_order_names)) {
      return json_error(400, "Bad Request",
                        "by: peers, seeders, leechers, completed, announces or churn");
    }
    question.request.order = static_cast<store::TopOrder>(found - names);
  }
  question.request.count = 10;
  if (query_value(query, "n", value)) {
    std::uint32_t& count = question.request.count;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), count);
    if (error != std::errc{} || end != value.data() + value.size() || count == 0 ||
        count > shard::top_count_max) {
      return json_error(400, "Bad Request", fmt::format("n: 1..{}", shard::top_count_max));
    }
  }
  if (question.page != Page::dashboard) return {};
  // The top list is asked again only when its last question is older than top_refresh.
  TopCache& cache = top_cache_[static_cast<std::size_t>(question.request.order)];
  const auto now = Clock::now();
  if (cache.asked && now - cache.asked_at < top_refresh && cache.count >= question.request.count) {
    return dashboard(question.since_second, question.request.order, question.request.count);
  }
  cache.asked = true;
  cache.asked_at = now;
  cache.count = question.request.count;
  return {};
}

std::string OpsServer::render(const Question& question) {
  const auto missing = static_cast<std::uint32_t>(
      (question.page == Page::swarm ? 1 : runtime_.shards_count()) - question.answers.size());
  switch (question.page) {
    case Page::metrics:
      return metrics(question);
    case Page::stats:
      return stats(question);
    case Page::swarm:
      if (missing != 0) {
        return json_error(503, "Service Unavailable", "the owning shard did not answer");
      }
      if (!question.answers[0].answer.found) return json_error(404, "Not Found", "no such swarm");
      return response(200, "OK", "application/json",
                      swarm_statistics_json(question.answers[0].answer.swarm) + "\n");
    case Page::dashboard: {
      TopCache& cache = top_cache_[static_cast<std::size_t>(question.request.order)];
      cache.swarms = merged_top(question);
      cache.count = question.request.count;
      cache.shards_unanswered = missing;
      return dashboard(question.since_second, question.request.order, question.request.count);
    }
    case Page::top:
      break;
  }
  const store::TopOrder order = question.request.order;
  const std::uint32_t count = question.request.count;
  const std::vector<store::SwarmStatistics> merged = merged_top(question);
  std::string list = "[";
  for (const auto& entry : merged) {
    if (list.size() > 1) list += ',';
    list += swarm_statistics_json(entry);
  }
  list += "]";
  const std::string body =
      fmt::format("{{\"by\":\"{}\",\"n\":{},\"shards_unanswered\":{},\"swarms\":{}}}\n",
                  store::top_order_names[static_cast<std::size_t>(order)], count, missing, list);
  return response(200, "OK", "application/json", body);
}

// Every shard's best, merged: the first request.count by request.order.
std::vector<store::SwarmStatistics> OpsServer::merged_top(const Question& question) const {
  const store::TopOrder order = question.request.order;
  std::vector<store::SwarmStatistics> merged;
  for (const auto& [shard_index, answer] : question.answers) {
    merged.insert(merged.end(), answer.top, answer.top + answer.top_count);
  }
  std::stable_sort(merged.begin(), merged.end(), [order](const auto& a, const auto& b) {
    return store::top_key(a, order) > store::top_key(b, order);
  });
  if (merged.size() > question.request.count) merged.resize(question.request.count);
  return merged;
}

// Totals, shards and history from the last sample, the top swarms from the cache (no question).
std::string OpsServer::dashboard(std::uint64_t since_second, store::TopOrder order,
                                 std::uint32_t count) {
  const TopCache& cache = top_cache_[static_cast<std::size_t>(order)];
  DashboardInputs inputs;
  inputs.uptime_s = unix_time_s() - started_unix_s_;
  inputs.started_unix_s = started_unix_s_;
  inputs.since_second = since_second;
  inputs.history = history_.get();
  inputs.top_by = store::top_order_names[static_cast<std::size_t>(order)];
  inputs.top_count = count;
  inputs.top_shards_unanswered = cache.shards_unanswered;
  inputs.top = std::span(cache.swarms).first(std::min<std::size_t>(count, cache.swarms.size()));
  const std::string accounting = storage_json();
  inputs.accounting_json = accounting;
  const std::string cluster = cluster_json();
  inputs.cluster_json = cluster;
  return response_with(200, "OK", "application/json", "Cache-Control: no-store\r\n",
                       dashboard_json(inputs));
}

namespace {
// Rows as one JSON object of name: value.
std::string rows_json(const std::vector<shard::CounterRow>& rows) {
  std::string text = "{";
  for (const auto& row : rows) {
    if (text.size() > 1) text += ',';
    text += fmt::format("\"{}\":{}", row.name, row.value);
  }
  return text + "}";
}

// A process-wide thread's rows (the storage thread, the snapshot writer) as Prometheus metrics
// named tyto_PREFIX_NAME, without a shard label.
void append_metrics(std::string& body, std::string_view prefix,
                    const std::vector<shard::CounterRow>& rows) {
  for (const auto& row : rows) {
    const std::string name =
        fmt::format("tyto_{}_{}{}", prefix, row.name, row.gauge ? "" : "_total");
    body += fmt::format("# HELP {0} {1}.\n# TYPE {0} {2}\n{0} {3}\n", name, row.help,
                        row.gauge ? "gauge" : "counter", row.value);
  }
}
}  // namespace

// The storage thread's status as a JSON object; "" when there is none (public mode).
std::string OpsServer::storage_json() const {
  return storage_status_ == nullptr ? std::string() : rows_json(storage_status_->rows());
}

// The cluster client's status as a JSON object; "" without a cluster.
std::string OpsServer::cluster_json() const {
  return cluster_status_ == nullptr ? std::string() : rows_json(cluster_status_->rows());
}

std::string OpsServer::metrics(const Question& question) {
  const auto& answers = question.answers;
  const auto missing = runtime_.shards_count() - answers.size();
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
  if (storage_status_ != nullptr) append_metrics(body, "storage", storage_status_->rows());
  if (snapshot_status_ != nullptr) append_metrics(body, "snapshot", snapshot_status_->rows());
  if (cluster_status_ != nullptr) append_metrics(body, "cluster", cluster_status_->rows());
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

std::string OpsServer::stats(const Question& question) {
  const auto& answers = question.answers;
  const auto missing = runtime_.shards_count() - answers.size();
  shard::ShardTotals totals;
  for (const auto& answer : answers) totals.add(answer.answer.totals);
  auto object = [](const shard::ShardTotals& t) { return rows_json(shard::counter_rows(t)); };
  std::string per_shard = "[";
  for (const auto& answer : answers) {
    if (per_shard.size() > 1) per_shard += ',';
    per_shard +=
        fmt::format("{{\"shard\":{},\"counters\":{}}}", answer.shard, object(answer.answer.totals));
  }
  per_shard += "]";
  const std::uint64_t now_s = unix_time_s();
  const std::string storage = storage_json();
  const std::string snapshot =
      snapshot_status_ == nullptr ? std::string() : rows_json(snapshot_status_->rows());
  const std::string cluster = cluster_json();
  const std::string body = fmt::format(
      "{{\"version\":\"0.1.0\",\"uptime_s\":{},\"shards\":{},\"shards_unanswered\":{},"
      "\"totals\":{},\"per_shard\":{}{}{}{}{}{}{}}}\n",
      now_s - started_unix_s_, runtime_.shards_count(), missing, object(totals), per_shard,
      storage.empty() ? "" : ",\"storage\":", storage,
      snapshot.empty() ? "" : ",\"snapshot\":", snapshot,
      cluster.empty() ? "" : ",\"cluster\":", cluster);
  return response(200, "OK", "application/json", body);
}

}  // namespace tyto::app
