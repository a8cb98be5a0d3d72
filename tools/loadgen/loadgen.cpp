// tyto-load: the project's load generator, UDP (BEP 15, the default) or HTTP (--protocol http),
// with aquatic's load model (DESIGN §8): T torrents, P peers reused across requests, torrent
// popularity ∝ exp(-k·rank), 100 announces : 1 scrape, numwant 30, 75 % of announces from seeders.
//
// HTTP mode: --sockets TCP connections, each from its own source address. --keep-alive 1 (the
// default) keeps them open with up to --inflight requests pipelined on each; --keep-alive 0 sends
// one request per connection with "Connection: close" and reconnects (what trackers that close
// after each response, like opentracker, get from clients). A response counts when it is a whole
// HTTP 200 with a bencoded body of the right kind; a failure reason or another status is an error.
// The result line also gives the generator's own CPU (load_cpu_share of a core,
// load_cpu_us_per_response): below a whole core, it waited for the server.
//
// One thread pinned to --core, busy-polling non-blocking sockets with sendmmsg/recvmmsg. Each
// socket has its own source address in 127.0.0.0/8 (127.0.0.2, .3, ...), so tracker peers differ
// by address as on the internet; up to --inflight requests are outstanding per socket, matched
// by transaction id; a request unanswered after --timeout-ms is counted lost and replaced.
// --rate caps the send rate (UDP; for latency at a fixed load), spread over the loop's visits to
// the sockets rather than sent in one burst per pass. Bounded by --duration-s; prints one
// machine-readable line at the end (--latency-file also writes the latency CDF).
//
// UDP latency runs from the wall clock read just before a request's sendmmsg to the kernel's
// receive timestamp of its reply (SO_TIMESTAMPNS: taken when the reply reaches the generator's
// socket), so the time a reply waits for this loop to come round is not in it; that wait is
// reported apart (read_delay_p99_us). The stamps are asked for only with --rate or
// --latency-file (they cost every packet a clock read); without them UDP latency, like HTTP
// latency, runs to when the loop reads the reply. Each UDP socket is connected to the target.
//
//   tyto-load --target 127.0.0.1:6969 --core 1 --duration-s 10
//   tyto-load --protocol http --target 127.0.0.1:6969 --sockets 64 --inflight 8
//   tyto-load --target 127.0.0.1:6969 --rate 100000 --latency-file cdf.txt
//   tyto-load --target 127.0.0.1:6969 --fill-peers 1000000     (announce N distinct peers, exit;
//             evenly over the torrents, or --fill-spread popularity: by the model's popularity)
//   tyto-load --info-hash-file hashes.txt --torrents 1000000    (write the hashes, exit)
//   tyto-load --core 0 --stall-probe-s 5    (no load: how long the core is taken away)
//   tyto-load --target 127.0.0.1:6969 --passkeys 100000   (a private tracker's users)
//
// --passkeys N (private tracker): peer p belongs to user p % N, whose passkey is the text
// "bench%06u" of that number (bench000000, bench000001, ...; the site's user_id is the number
// + 1), and torrent t is the t-th line of --info-hash-file (torrent_id t + 1). Over UDP the
// announce carries "/<passkey>/announce" as BEP 41 URL data after its 98 bytes; over HTTP it
// is the path, and scrapes go to /<passkey>/scrape (UDP scrapes carry no URL data, BEP 41).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <strings.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tyto/core/bytes.hpp"
#include "tyto/core/types.hpp"
#include "tyto/net/address.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string target = "127.0.0.1:6969";
  int core = -1;
  double duration_s = 10;
  double warmup_s = 1;
  std::uint32_t sockets = 16;
  std::uint32_t inflight = 16;
  std::uint32_t torrents = 1'000'000;
  std::uint32_t peers = 2'000'000;
  std::uint32_t announces_per_scrape = 100;
  bool scrapes_only = false;  // warms a server's I/O path without storing a peer
  std::uint32_t scrape_hashes = 4;
  std::int32_t numwant = 30;
  std::uint32_t seeder_percent = 75;
  double popularity_k = 8.0;  // weight ∝ exp(-k · rank / torrents)
  std::uint64_t seed = 1;
  std::uint32_t timeout_ms = 1000;
  std::uint64_t fill_peers = 0;
  bool fill_by_popularity =
      false;              // fill: torrents drawn by the model's popularity, not p % torrents
  double rate_per_s = 0;  // UDP: requests sent per second at most (0: as fast as answered)
  std::string latency_file;
  std::string info_hash_file;
  double stall_probe_s = 0;  // spin on the clock instead: how long this core is taken away
  bool http = false;
  bool keep_alive = true;      // HTTP only
  std::uint32_t passkeys = 0;  // private tracker: users, peer p is user p % passkeys (0: public)
};

// The private tracker's user of a peer, and the user's passkey: "bench%06u", ≤ 15 bytes.
constexpr std::size_t passkey_size_max = 16;
std::size_t passkey_of(std::uint32_t user, char (&out)[passkey_size_max]) {
  const int size = std::snprintf(out, sizeof out, "bench%06u", user);
  return static_cast<std::size_t>(size);
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

tyto::InfoHash torrent_hash(std::uint64_t seed, std::uint32_t torrent) {
  std::uint64_t state = seed * 0x100000001B3ull + torrent;
  tyto::InfoHash hash;
  for (std::size_t i = 0; i < 20; i += 8) {
    const std::uint64_t word = splitmix64(state);
    for (std::size_t j = 0; j < 8 && i + j < 20; ++j)
      hash.bytes[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
  }
  return hash;
}

// Log-scale latency histogram: 16 buckets per power of two of nanoseconds.
class Histogram {
 public:
  void add(std::uint64_t ns) {
    ++buckets_[bucket(ns)];
    ++count_;
  }
  std::uint64_t percentile_ns(double fraction) const {
    std::uint64_t seen = 0;
    const auto wanted = static_cast<std::uint64_t>(fraction * static_cast<double>(count_));
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen > wanted)
        return static_cast<std::uint64_t>(std::exp2(static_cast<double>(i + 1) / 16));
    }
    return 0;
  }
  std::uint64_t count() const { return count_; }
  // "upper_bound_us cumulative_fraction" per non-empty bucket: a latency CDF to plot.
  bool write_cdf(const std::string& path) const {
    std::FILE* out = std::fopen(path.c_str(), "w");
    if (out == nullptr) return false;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      if (buckets_[i] == 0) continue;
      seen += buckets_[i];
      std::fprintf(out, "%.3f %.6f\n", std::exp2(static_cast<double>(i + 1) / 16) / 1e3,
                   static_cast<double>(seen) / static_cast<double>(count_));
    }
    return std::fclose(out) == 0;
  }

 private:
  static std::size_t bucket(std::uint64_t ns) {
    const auto index = static_cast<std::size_t>(std::log2(static_cast<double>(ns | 1)) * 16);
    return index < 1024 ? index : 1023;
  }
  std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(1024);
  std::uint64_t count_ = 0;
};

// CLOCK_REALTIME in nanoseconds: the clock of the kernel's SO_TIMESTAMPNS receive stamps.
std::int64_t wall_clock_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

struct Slot {
  std::uint32_t transaction_id = 0;
  std::uint8_t kind = 0;          // 0 free, 1 connect, 2 announce, 3 scrape
  Clock::time_point sent;         // steady: for the timeout
  std::int64_t sent_wall_ns = 0;  // wall_clock_ns() just before the sendmmsg that carried it
};

struct Socket {
  int fd = -1;
  std::uint64_t connection_id = 0;
  Clock::time_point connected_at;
  bool connecting = false;
  std::vector<Slot> slots;
  std::uint32_t sequence = 0;
};

// CPU time (user + system) this process has used: what the generator costs per response.
std::uint64_t process_cpu_ns() {
  timespec used{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
  return std::uint64_t(used.tv_sec) * 1'000'000'000 + std::uint64_t(used.tv_nsec);
}

struct Totals {
  std::uint64_t connects = 0, announces = 0, scrapes = 0, errors = 0, lost = 0, sent = 0;
  std::uint64_t cpu_ns = 0;  // process_cpu_ns() when taken (stamp())

  Totals stamp() const {
    Totals stamped = *this;
    stamped.cpu_ns = process_cpu_ns();
    return stamped;
  }
  Totals since(const Totals& earlier) const {
    return {connects - earlier.connects, announces - earlier.announces, scrapes - earlier.scrapes,
            errors - earlier.errors,     lost - earlier.lost,           sent - earlier.sent,
            cpu_ns - earlier.cpu_ns};
  }
};

// p99 per second of the measurement, so a run can be told from the host's worst second: on a
// shared machine one stall of the hypervisor or of a neighbour moves a whole run's p99, and the
// median second says what the server does the rest of the time.
class SecondlyP99 {
 public:
  void add(std::uint64_t ns) { second_.add(ns); }
  void tick(Clock::time_point now) {
    if (second_end_ == Clock::time_point::max()) second_end_ = now + std::chrono::seconds(1);
    if (now < second_end_) return;
    if (second_.count() >= 100) p99s_ns_.push_back(second_.percentile_ns(0.99));
    second_ = Histogram();
    second_end_ = now + std::chrono::seconds(1);
  }
  // The median, least and greatest of the seconds' p99 (0 with no whole second).
  std::uint64_t median_ns() const { return at(0.5); }
  std::uint64_t min_ns() const { return at(0); }
  std::uint64_t max_ns() const { return at(1); }

 private:
  std::uint64_t at(double fraction) const {
    if (p99s_ns_.empty()) return 0;
    std::vector<std::uint64_t> sorted = p99s_ns_;
    std::sort(sorted.begin(), sorted.end());
    return sorted[static_cast<std::size_t>(fraction * static_cast<double>(sorted.size() - 1))];
  }
  Histogram second_;
  Clock::time_point second_end_ = Clock::time_point::max();
  std::vector<std::uint64_t> p99s_ns_;
};

struct Latencies {
  Histogram all;
  SecondlyP99 secondly;  // UDP
  Histogram read_delay;  // UDP: reply stamped by the kernel → read by the generator's loop
  std::uint64_t slow_passes = 0;  // UDP: passes of the loop that began over 1 ms after the last
};

// The measurement window: a warm-up, then duration_s counted.
struct Window {
  Clock::time_point start, measure_from, deadline;

  explicit Window(const Config& config) : start(Clock::now()) {
    const double warmup_s = config.fill_peers ? 0 : config.warmup_s;
    measure_from = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(warmup_s));
    deadline = measure_from + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(config.duration_s));
  }
};

// What both protocols ask for: which torrent, which peer, seeder or leecher, scrape or announce.
class Workload {
 public:
  explicit Workload(const Config& config)
      : config_(config), random_(config.seed), fill_next_(config.sockets, 0) {
    hashes_.reserve(config_.torrents);
    for (std::uint32_t t = 0; t < config_.torrents; ++t)
      hashes_.push_back(torrent_hash(config_.seed, t));
  }

 protected:
  std::uint32_t pick_torrent() {
    const double rank = exponential_(random_) * config_.torrents / config_.popularity_k;
    return static_cast<std::uint32_t>(rank) % config_.torrents;
  }
  bool pick_scrape() {
    if (config_.fill_peers != 0) return false;
    return config_.scrapes_only || (config_.announces_per_scrape != 0 &&
                                    random_() % (config_.announces_per_scrape + 1) == 0);
  }
  bool pick_seeder() { return random_() % 100 < config_.seeder_percent; }
  // Fill mode: socket s announces peers s, s + sockets, s + 2·sockets, ... below fill_peers, so
  // peer p is (source address p % sockets, port 1024 + p / sockets): all distinct endpoints while
  // fill_peers <= sockets × 64000 (the limit main() checks).
  bool fill_done(std::uint32_t socket_index) const {
    return socket_index + config_.sockets * fill_next_[socket_index] >= config_.fill_peers;
  }
  bool fill_done() const {
    for (std::uint32_t s = 0; s < config_.sockets; ++s)
      if (!fill_done(s)) return false;
    return true;
  }
  // A peer and its torrent: the socket's next distinct one when filling, else a random reuse.
  std::pair<std::uint64_t, std::uint32_t> pick_peer(std::uint32_t socket_index) {
    if (config_.fill_peers != 0) {
      const std::uint64_t peer = socket_index + config_.sockets * fill_next_[socket_index]++;
      return {peer, config_.fill_by_popularity
                        ? pick_torrent()
                        : static_cast<std::uint32_t>(peer % config_.torrents)};
    }
    const std::uint64_t peer = random_() % config_.peers;
    return {peer, pick_torrent()};
  }
  std::uint16_t peer_port(std::uint64_t peer) const {
    return static_cast<std::uint16_t>(1024 + (peer / config_.sockets) % 64000);
  }
  static void peer_id_of(std::uint64_t peer, std::uint8_t (&peer_id)[20]) {
    static constexpr std::uint8_t prefix[8] = {'-', 'T', 'L', '0', '0', '0', '1', '-'};
    std::memcpy(peer_id, prefix, 8);
    std::memcpy(peer_id + 8, &peer, sizeof peer);
    std::memset(peer_id + 16, 0, 4);
  }
  // 127.0.0.2, .3, ... .251, 127.0.1.2, ...: one source address per socket.
  static std::uint32_t source_address(std::uint32_t socket_index) {
    return 0x7f000002u + (socket_index / 250) * 256 + socket_index % 250;
  }
  // Binds an IPv4 socket to its own source address (port left to the kernel); IPv6 targets
  // (::1 only) use the default source.
  bool bind_source(int fd, std::uint32_t socket_index) const {
    if (target_.family() != AF_INET) return true;
    sockaddr_in source{};
    source.sin_family = AF_INET;
    source.sin_addr.s_addr = htonl(source_address(socket_index));
    if (bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof source) == 0) return true;
    std::perror("tyto-load: bind source address");
    return false;
  }
  bool parse_target() {
    const auto target = tyto::net::parse_socket_address(config_.target);
    if (!target) {
      std::fprintf(stderr, "tyto-load: bad --target %s\n", config_.target.c_str());
      return false;
    }
    target_ = *target;
    return true;
  }

  // The first error reply's text, for a misconfigured run (a refused passkey, say) to say why.
  void note_error(std::string_view text) {
    if (first_error_.empty()) first_error_ = text.empty() ? "(no text)" : text.substr(0, 200);
  }

 public:
  const std::string& first_error() const { return first_error_; }

 protected:
  const Config& config_;
  std::string first_error_;
  std::vector<tyto::InfoHash> hashes_;
  std::mt19937_64 random_;
  std::exponential_distribution<double> exponential_{1.0};
  std::vector<std::uint64_t> fill_next_;  // per socket, in fill mode
  tyto::net::SocketAddress target_;
};

class Generator : Workload {
 public:
  explicit Generator(const Config& config) : Workload(config) {}
  using Workload::first_error;

  bool open() {
    if (!parse_target()) return false;
    for (std::uint32_t i = 0; i < config_.sockets; ++i) {
      Socket socket;
      socket.fd = ::socket(target_.family(), SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (socket.fd < 0) return false;
      const int buffer = 4 << 20;
      setsockopt(socket.fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
      // Receive stamps only for a latency run: one socket asking for them makes the kernel
      // stamp every packet it receives, on both the generator's and the server's core.
      const int one = 1;
      if (measures_latency() &&
          setsockopt(socket.fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
        std::perror("tyto-load: SO_TIMESTAMPNS");
        return false;
      }
      if (!bind_source(socket.fd, i)) return false;
      // Connected to the target: the kernel routes the socket once instead of per datagram,
      // and the generator's own cost per request falls, so it caps the server less.
      if (::connect(socket.fd, target_.get(), target_.size) != 0) {
        std::perror("tyto-load: connect");
        return false;
      }
      socket.slots.resize(config_.inflight);
      sockets_.push_back(std::move(socket));
    }
    return true;
  }

  bool measures_latency() const { return config_.rate_per_s > 0 || !config_.latency_file.empty(); }

  // Runs until the deadline (or until fill_peers announces were answered). Returns totals
  // counted after the warm-up.
  Totals run(Latencies& latencies, double& measured_s) {
    const Window window(config_);
    const auto [start, measure_from, deadline] = window;
    Totals totals;
    Totals at_warmup = Totals{}.stamp();  // replaced at the end of the warm-up
    bool warm = config_.fill_peers != 0 || config_.warmup_s <= 0;
    std::uint8_t packets[64][2048];
    mmsghdr messages[64];
    iovec vectors[64];
    for (;;) {
      const auto pass_start = Clock::now();
      if (pass_start >= deadline) break;
      if (!warm && pass_start >= measure_from) {
        warm = true;
        at_warmup = totals.stamp();
        latencies = Latencies();
        last_pass_start_ = pass_start;
      }
      if (warm) {
        // Rate-capped, a pass takes microseconds; one over 1 ms means this core was taken away
        // (by another task, or by the hypervisor) and replies waited for it. (Without --rate a
        // pass sends whole windows, and long passes are the load itself.)
        if (pass_start - last_pass_start_ > std::chrono::milliseconds(1)) ++latencies.slow_passes;
        last_pass_start_ = pass_start;
        latencies.secondly.tick(pass_start);
      }
      if (config_.fill_peers != 0 && inflight_ == 0 && fill_done()) break;
      for (Socket& socket : sockets_) {
        // The clock is read per socket: a pass over many sockets is long next to a reply.
        const auto now = Clock::now();
        if (config_.rate_per_s > 0) {
          const double elapsed_s = std::chrono::duration<double>(now - start).count();
          send_budget_ = static_cast<std::int64_t>(config_.rate_per_s * elapsed_s) -
                         static_cast<std::int64_t>(totals.sent + unsent_);
        }
        receive(socket, totals, latencies, now, warm);
        send(socket, totals, now, packets, messages, vectors);
      }
    }
    measured_s =
        std::chrono::duration<double>(Clock::now() - (config_.fill_peers ? start : measure_from))
            .count();
    return totals.stamp().since(at_warmup);
  }

 private:
  std::size_t build(Socket& socket, std::uint32_t socket_index, Slot& slot,
                    std::uint32_t slot_index, std::uint8_t* out, Clock::time_point now) {
    slot.transaction_id = (slot_index << 24) | (socket.sequence++ & 0xffffff);
    slot.sent = now;
    tyto::ByteWriter writer(std::span<std::uint8_t>(out, 2048));
    const bool need_connect =
        socket.connection_id == 0 || now - socket.connected_at > std::chrono::seconds(60);
    if (need_connect && !socket.connecting) {
      socket.connecting = true;
      slot.kind = 1;
      writer.u64(0x41727101980ull);
      writer.u32(0);
      writer.u32(slot.transaction_id);
      return writer.size();
    }
    if (socket.connection_id == 0) return 0;  // wait for the first connect
    if (pick_scrape()) {
      slot.kind = 3;
      writer.u64(socket.connection_id);
      writer.u32(2);
      writer.u32(slot.transaction_id);
      for (std::uint32_t i = 0; i < config_.scrape_hashes; ++i)
        writer.bytes(hashes_[pick_torrent()].bytes);
      return writer.size();
    }
    slot.kind = 2;
    // A peer is (source address, announced port).
    const auto [peer, torrent] = pick_peer(socket_index);
    const std::uint16_t port = peer_port(peer);
    const bool seeder = pick_seeder();
    writer.u64(socket.connection_id);
    writer.u32(1);
    writer.u32(slot.transaction_id);
    writer.bytes(hashes_[torrent].bytes);
    std::uint8_t peer_id[20];
    peer_id_of(peer, peer_id);
    writer.bytes(peer_id);
    writer.u64(0);                           // downloaded
    writer.u64(seeder ? 0 : 1 << 20);        // left
    writer.u64(0);                           // uploaded
    writer.u32(config_.fill_peers ? 2 : 0);  // event: started when filling, else none
    writer.u32(0);
    writer.u32(static_cast<std::uint32_t>(peer));
    writer.i32(config_.numwant);
    writer.u16(port);
    static_assert(16 + 82 == 98, "BEP 15 announce: 16-byte header and 82 bytes of fields");
    if (config_.passkeys != 0) {
      append_url_data(writer, static_cast<std::uint32_t>(peer % config_.passkeys));
    }
    return writer.size();
  }

  // BEP 41: "/<passkey>/announce" as one URL data option (type 2, length, bytes), then the end
  // of options (type 0). On the stack: the public path stays as it was, the private adds bytes.
  static void append_url_data(tyto::ByteWriter& writer, std::uint32_t user) {
    static constexpr std::string_view suffix = "/announce";
    char passkey[passkey_size_max];
    const std::size_t passkey_size = passkey_of(user, passkey);
    std::uint8_t path[1 + passkey_size_max + suffix.size()];
    static_assert(sizeof path <= 255, "one URL data option holds at most 255 bytes (BEP 41)");
    path[0] = '/';
    std::memcpy(path + 1, passkey, passkey_size);
    std::memcpy(path + 1 + passkey_size, suffix.data(), suffix.size());
    const std::size_t path_size = 1 + passkey_size + suffix.size();
    writer.u8(2);
    writer.u8(static_cast<std::uint8_t>(path_size));
    writer.bytes(std::span<const std::uint8_t>(path, path_size));
    writer.u8(0);
  }

  void send(Socket& socket, Totals& totals, Clock::time_point now, std::uint8_t (*packets)[2048],
            mmsghdr* messages, iovec* vectors) {
    const auto socket_index = static_cast<std::uint32_t>(&socket - sockets_.data());
    std::uint32_t count = 0;
    Slot* batch[64];
    for (std::uint32_t i = 0; i < socket.slots.size() && count < 64; ++i) {
      Slot& slot = socket.slots[i];
      if (slot.kind != 0) {
        if (now - slot.sent < std::chrono::milliseconds(config_.timeout_ms)) continue;
        ++totals.lost;  // unanswered: replace it
        if (slot.kind == 1) socket.connecting = false;
        slot.kind = 0;
        --inflight_;
      }
      // Nothing more to send: go on only to reclaim timed-out slots further on.
      if (config_.fill_peers != 0 && fill_done(socket_index) && socket.connection_id != 0) continue;
      if (config_.rate_per_s > 0 && send_budget_ <= 0) continue;
      const std::size_t size = build(socket, socket_index, slot, i, packets[count], now);
      if (size == 0) {
        slot.kind = 0;
        break;
      }
      vectors[count] = {packets[count], size};
      messages[count] = {};
      messages[count].msg_hdr.msg_iov = &vectors[count];
      messages[count].msg_hdr.msg_iovlen = 1;
      batch[count++] = &slot;
      ++inflight_;
      --send_budget_;
    }
    if (count == 0) return;
    const std::int64_t wall_ns = wall_clock_ns();
    for (std::uint32_t i = 0; i < count; ++i) batch[i]->sent_wall_ns = wall_ns;
    const int sent = sendmmsg(socket.fd, messages, count, 0);
    totals.sent += sent > 0 ? static_cast<std::uint64_t>(sent) : 0;
    unsent_ += count - static_cast<std::uint32_t>(sent > 0 ? sent : 0);
    // Anything the kernel refused stays "in flight" and is counted lost after the timeout.
  }

  // The kernel's receive stamp of a message (SO_TIMESTAMPNS), or 0 when it has none.
  static std::int64_t receive_stamp_ns(const msghdr& header) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&header); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&header), c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
      timespec stamp;
      std::memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
      return std::int64_t{stamp.tv_sec} * 1'000'000'000 + stamp.tv_nsec;
    }
    return 0;
  }

  void receive(Socket& socket, Totals& totals, Latencies& latencies, Clock::time_point now,
               bool warm) {
    std::uint8_t buffers[32][1500];
    alignas(cmsghdr) std::uint8_t controls[32][CMSG_SPACE(sizeof(timespec))];
    mmsghdr messages[32];
    iovec vectors[32];
    for (int i = 0; i < 32; ++i) {
      vectors[i] = {buffers[i], sizeof buffers[i]};
      messages[i] = {};
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_control = controls[i];
      messages[i].msg_hdr.msg_controllen = sizeof controls[i];
    }
    const int received = recvmmsg(socket.fd, messages, 32, MSG_DONTWAIT, nullptr);
    const std::int64_t read_wall_ns = received > 0 ? wall_clock_ns() : 0;
    for (int i = 0; i < received; ++i) {
      tyto::ByteReader reader(std::span<const std::uint8_t>(buffers[i], messages[i].msg_len));
      const std::uint32_t action = reader.u32();
      const std::uint32_t transaction_id = reader.u32();
      if (!reader.ok()) continue;
      const std::uint32_t slot_index = transaction_id >> 24;
      if (slot_index >= socket.slots.size()) continue;
      Slot& slot = socket.slots[slot_index];
      if (slot.kind == 0 || slot.transaction_id != transaction_id) continue;  // late or foreign
      if (warm) {
        const std::int64_t stamp_ns = receive_stamp_ns(messages[i].msg_hdr);
        const std::int64_t arrived_ns = stamp_ns != 0 ? stamp_ns : read_wall_ns;
        const auto latency_ns =
            static_cast<std::uint64_t>(std::max<std::int64_t>(arrived_ns - slot.sent_wall_ns, 0));
        latencies.all.add(latency_ns);
        latencies.secondly.add(latency_ns);
        latencies.read_delay.add(
            static_cast<std::uint64_t>(std::max<std::int64_t>(read_wall_ns - arrived_ns, 0)));
      }
      if (action == 3) {
        ++totals.errors;
        note_error({reinterpret_cast<const char*>(buffers[i]) + 8, messages[i].msg_len - 8});
        if (slot.kind != 1) socket.connection_id = 0;  // most likely an expired id: reconnect
      } else if (slot.kind == 1 && action == 0) {
        socket.connection_id = reader.u64();
        socket.connected_at = now;
        ++totals.connects;
      } else if (slot.kind == 2 && action == 1) {
        ++totals.announces;
      } else if (slot.kind == 3 && action == 2) {
        ++totals.scrapes;
      } else {
        ++totals.errors;
      }
      if (slot.kind == 1) socket.connecting = false;
      slot.kind = 0;
      --inflight_;
    }
  }

  std::vector<Socket> sockets_;
  Clock::time_point last_pass_start_;
  std::int64_t inflight_ = 0;
  std::int64_t send_budget_ = 0;  // with --rate: requests that may go out this turn
  std::uint64_t unsent_ = 0;      // built but refused by the kernel (count against the rate)
};

// HTTP mode. Connections are driven by epoll; each keeps a FIFO of what it asked (pipelined
// responses come back in order) and reads responses by their Content-Length.
class HttpGenerator : Workload {
 public:
  explicit HttpGenerator(const Config& config) : Workload(config) {}
  using Workload::first_error;
  ~HttpGenerator() {
    for (Connection& connection : connections_)
      if (connection.fd >= 0) ::close(connection.fd);
    if (epoll_ >= 0) ::close(epoll_);
  }

  bool open() {
    if (!parse_target()) return false;
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) return false;
    connections_.resize(config_.sockets);
    for (std::uint32_t i = 0; i < config_.sockets; ++i) {
      connections_[i].requests.resize(config_.keep_alive ? config_.inflight : 1);
      if (!connect(i, Clock::now())) return false;
    }
    return true;
  }

  Totals run(Histogram& latency, double& measured_s) {
    const Window window(config_);
    Totals totals;
    Totals at_warmup = Totals{}.stamp();  // replaced at the end of the warm-up
    bool warm = config_.warmup_s <= 0;
    epoll_event events[256];
    auto next_timeout_check = window.start;
    for (;;) {
      const auto now = Clock::now();
      if (now >= window.deadline) break;
      if (!warm && now >= window.measure_from) {
        warm = true;
        at_warmup = totals.stamp();
        latency = Histogram();
      }
      if (now >= next_timeout_check) {
        close_stalled(totals, now);
        next_timeout_check = now + std::chrono::milliseconds(10);
      }
      const int ready = epoll_wait(epoll_, events, 256, 1);
      for (int e = 0; e < ready; ++e) {
        const std::uint32_t index = events[e].data.u32;
        Connection& connection = connections_[index];
        if (connection.connecting) {
          int error = 0;
          socklen_t size = sizeof error;
          getsockopt(connection.fd, SOL_SOCKET, SO_ERROR, &error, &size);
          if (error != 0) {
            ++totals.errors;
            reconnect(index, now);
            continue;
          }
          connection.connecting = false;
          ++totals.connects;
          watch(index, EPOLLIN, EPOLL_CTL_MOD);
          fill(index, totals, now);
          continue;
        }
        if (events[e].events & EPOLLOUT) write_pending(index);
        if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          read(index, totals, latency, now, warm);
        }
      }
    }
    measured_s = std::chrono::duration<double>(Clock::now() - window.measure_from).count();
    return totals.stamp().since(at_warmup);
  }

 private:
  enum Kind : std::uint8_t { announce = 2, scrape = 3 };
  struct Request {
    Kind kind = announce;
    Clock::time_point sent;
  };
  struct Connection {
    int fd = -1;
    bool connecting = false;
    bool closing = false;  // Connection: close sent and answered; waiting for the server's FIN
    std::vector<Request> requests;  // FIFO ring of outstanding requests
    std::uint32_t first = 0, outstanding = 0;
    std::vector<char> input;
    std::string output;  // what send() did not take yet
  };

  bool connect(std::uint32_t index, Clock::time_point now) {
    Connection& connection = connections_[index];
    connection.fd = ::socket(target_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connection.fd < 0) {
      std::perror("tyto-load: socket");
      return false;
    }
    const int one = 1;
    setsockopt(connection.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The port is chosen at connect, per destination (ports last longer that way).
    setsockopt(connection.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (!bind_source(connection.fd, index)) return false;
    if (::connect(connection.fd, target_.get(), target_.size) != 0 && errno != EINPROGRESS) {
      std::perror("tyto-load: connect");
      return false;
    }
    connection.connecting = true;
    connection.closing = false;
    connection.first = connection.outstanding = 0;
    connection.input.clear();
    connection.output.clear();
    connection.requests[0].sent = now;  // for the stall check while connecting
    watch(index, EPOLLOUT, EPOLL_CTL_ADD);
    return true;
  }

  void reconnect(std::uint32_t index, Clock::time_point now) {
    Connection& connection = connections_[index];
    ::close(connection.fd);  // also removes it from the epoll set
    connection.fd = -1;
    if (!connect(index, now)) std::exit(1);
  }

  void watch(std::uint32_t index, std::uint32_t events, int operation) {
    epoll_event event{};
    event.events = events;
    event.data.u32 = index;
    epoll_ctl(epoll_, operation, connections_[index].fd, &event);
  }

  // Requests up to the connection's depth (1 without keep-alive, and only once).
  void fill(std::uint32_t index, Totals& totals, Clock::time_point now) {
    Connection& connection = connections_[index];
    if (connection.closing) return;
    const auto depth = static_cast<std::uint32_t>(connection.requests.size());
    std::string batch;
    while (connection.outstanding < depth) {
      Request& request = connection.requests[(connection.first + connection.outstanding) % depth];
      request.sent = now;
      request.kind = append_request(batch);
      ++connection.outstanding;
      ++totals.sent;
      if (!config_.keep_alive) {
        connection.closing = true;
        break;
      }
    }
    if (batch.empty()) return;
    if (!connection.output.empty()) {
      connection.output += batch;
      return;
    }
    const ssize_t sent = ::send(connection.fd, batch.data(), batch.size(), MSG_NOSIGNAL);
    const std::size_t taken = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    if (taken < batch.size()) {
      connection.output = batch.substr(taken);
      watch(index, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
    }
  }

  void write_pending(std::uint32_t index) {
    Connection& connection = connections_[index];
    if (connection.output.empty()) return;
    const ssize_t sent =
        ::send(connection.fd, connection.output.data(), connection.output.size(), MSG_NOSIGNAL);
    if (sent > 0) connection.output.erase(0, static_cast<std::size_t>(sent));
    if (connection.output.empty()) watch(index, EPOLLIN, EPOLL_CTL_MOD);
  }

  static void append_escaped(std::string& out, std::span<const std::uint8_t> bytes) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (const std::uint8_t byte : bytes) {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 15];
    }
  }

  static void append_passkey(std::string& out, std::uint32_t user) {
    char passkey[passkey_size_max];
    const std::size_t passkey_size = passkey_of(user, passkey);
    out += '/';
    out.append(passkey, passkey_size);
  }

  Kind append_request(std::string& out) {
    Kind kind;
    if (pick_scrape()) {
      kind = scrape;
      out += "GET ";
      // Private: a scrape needs a passkey too; users take turns (no draw from the model's random).
      if (config_.passkeys != 0) append_passkey(out, scrapes_built_++ % config_.passkeys);
      out += "/scrape?";
      for (std::uint32_t i = 0; i < config_.scrape_hashes; ++i) {
        out += i == 0 ? "info_hash=" : "&info_hash=";
        append_escaped(out, hashes_[pick_torrent()].bytes);
      }
    } else {
      kind = announce;
      const auto [peer, torrent] = pick_peer(0);  // no fill mode over HTTP
      std::uint8_t peer_id[20];
      peer_id_of(peer, peer_id);
      out += "GET ";
      if (config_.passkeys != 0) {
        append_passkey(out, static_cast<std::uint32_t>(peer % config_.passkeys));
      }
      out += "/announce?info_hash=";
      append_escaped(out, hashes_[torrent].bytes);
      out += "&peer_id=";
      append_escaped(out, peer_id);
      out += "&port=" + std::to_string(peer_port(peer));
      out += "&uploaded=0&downloaded=0&left=";
      out += pick_seeder() ? "0" : "1048576";
      out += "&numwant=" + std::to_string(config_.numwant) + "&compact=1&key=";
      out += std::to_string(static_cast<std::uint32_t>(peer));
    }
    out += config_.keep_alive ? " HTTP/1.1\r\nHost: tracker\r\n\r\n"
                              : " HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n";
    return kind;
  }

  void read(std::uint32_t index, Totals& totals, Histogram& latency, Clock::time_point now,
            bool warm) {
    Connection& connection = connections_[index];
    bool peer_closed = false;
    for (;;) {
      char buffer[65536];
      const ssize_t got = ::recv(connection.fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (got > 0) {
        connection.input.insert(connection.input.end(), buffer, buffer + got);
        continue;
      }
      if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        peer_closed = true;
      }
      break;
    }
    std::size_t consumed = 0;
    while (connection.outstanding > 0) {
      const std::size_t size = take_response(connection, consumed, totals);
      if (size == 0) break;
      consumed += size;
      const auto depth = static_cast<std::uint32_t>(connection.requests.size());
      const Request& request = connection.requests[connection.first];
      if (warm) {
        latency.add(
            static_cast<std::uint64_t>(std::chrono::nanoseconds(now - request.sent).count()));
      }
      connection.first = (connection.first + 1) % depth;
      --connection.outstanding;
    }
    connection.input.erase(connection.input.begin(),
                           connection.input.begin() + static_cast<std::ptrdiff_t>(consumed));
    if (peer_closed) {
      totals.lost += connection.outstanding;  // asked but never answered
      reconnect(index, now);
      return;
    }
    fill(index, totals, now);
  }

  // One whole response at input[at...]: counts it and returns its size, or 0 if incomplete.
  std::size_t take_response(Connection& connection, std::size_t at, Totals& totals) {
    const std::string_view input(connection.input.data() + at, connection.input.size() - at);
    const std::size_t head_end = input.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return 0;
    const std::string_view head = input.substr(0, head_end);
    std::size_t length = std::string_view::npos;
    for (std::size_t line = head.find("\r\n"); line != std::string_view::npos;
         line = head.find("\r\n", line + 2)) {
      const std::string_view field = head.substr(line + 2, 16);
      if (field.size() == 16 && strncasecmp(field.data(), "content-length: ", 16) == 0) {
        length = std::strtoul(head.data() + line + 18, nullptr, 10);
      }
    }
    if (length == std::string_view::npos) {
      ++totals.errors;  // both trackers measured send it
      note_error(head);
      return input.size();
    }
    if (input.size() < head_end + 4 + length) return 0;
    const std::string_view body = input.substr(head_end + 4, length);
    const Kind kind = connection.requests[connection.first].kind;
    const bool ok = head.substr(0, 12) == "HTTP/1.1 200" || head.substr(0, 12) == "HTTP/1.0 200";
    if (ok && kind == announce && body.find("8:intervali") != std::string_view::npos) {
      ++totals.announces;
    } else if (ok && kind == scrape && body.find("5:filesd") != std::string_view::npos) {
      ++totals.scrapes;
    } else {
      ++totals.errors;  // another status, or a failure reason (a refused passkey, say)
      note_error(body.size() > 0 ? body : head);
    }
    return head_end + 4 + length;
  }

  // A request unanswered after --timeout-ms: counted lost, and its connection starts over.
  void close_stalled(Totals& totals, Clock::time_point now) {
    const auto timeout = std::chrono::milliseconds(config_.timeout_ms);
    for (std::uint32_t i = 0; i < connections_.size(); ++i) {
      Connection& connection = connections_[i];
      const bool waiting = connection.connecting || connection.outstanding > 0;
      if (!waiting || now - connection.requests[connection.first].sent < timeout) continue;
      totals.lost += connection.connecting ? 1 : connection.outstanding;
      reconnect(i, now);
    }
  }

  int epoll_ = -1;
  std::vector<Connection> connections_;
  std::uint32_t scrapes_built_ = 0;
};

// --stall-probe-s: reads the clock in a tight loop on this core; a gap between two reads is time
// the core was taken away (by another task, an interrupt, or the hypervisor). No server load can
// have a tail shorter than what it loses here. stall_excess_ms_per_s sums each stall's part
// beyond 1 ms: a server at load ρ on this core delays requests by more than 1 ms for that time
// divided by 1 − ρ (the backlog of a stall L drains at 1 − ρ), whatever the server does.
int probe_stalls(double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(seconds));
  auto last = Clock::now();
  std::uint64_t over_1ms = 0, over_100us = 0;
  Clock::duration longest{}, lost_over_1ms{}, excess_over_1ms{};
  for (auto now = last; now < deadline; last = now, now = Clock::now()) {
    const auto gap = now - last;
    if (gap <= std::chrono::microseconds(100)) continue;
    ++over_100us;
    longest = std::max(longest, gap);
    if (gap > std::chrono::milliseconds(1)) {
      ++over_1ms;
      lost_over_1ms += gap;
      excess_over_1ms += gap - std::chrono::milliseconds(1);
    }
  }
  const auto us = [](Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
  };
  std::printf(
      "tyto-load: stalls_over_100us=%llu stalls_over_1ms=%llu stall_max_us=%.0f "
      "stalled_ms_per_s=%.3f stall_excess_ms_per_s=%.3f seconds=%.2f\n",
      static_cast<unsigned long long>(over_100us), static_cast<unsigned long long>(over_1ms),
      us(longest), us(lost_over_1ms) / 1e3 / seconds, us(excess_over_1ms) / 1e3 / seconds, seconds);
  return 0;
}

bool parse(int argc, char** argv, Config& config) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    if (flag == "--target")
      config.target = value;
    else if (flag == "--core")
      config.core = std::stoi(value);
    else if (flag == "--duration-s")
      config.duration_s = std::stod(value);
    else if (flag == "--warmup-s")
      config.warmup_s = std::stod(value);
    else if (flag == "--sockets")
      config.sockets = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--inflight")
      config.inflight = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--torrents")
      config.torrents = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--peers")
      config.peers = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--announces-per-scrape")
      config.announces_per_scrape = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--scrapes-only" && (value == "0" || value == "1"))
      config.scrapes_only = value == "1";
    else if (flag == "--numwant")
      config.numwant = std::stoi(value);
    else if (flag == "--seeder-percent")
      config.seeder_percent = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--seed")
      config.seed = std::stoull(value);
    else if (flag == "--timeout-ms")
      config.timeout_ms = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--fill-peers")
      config.fill_peers = std::stoull(value);
    else if (flag == "--fill-spread" && (value == "even" || value == "popularity"))
      config.fill_by_popularity = value == "popularity";
    else if (flag == "--info-hash-file")
      config.info_hash_file = value;
    else if (flag == "--stall-probe-s")
      config.stall_probe_s = std::stod(value);
    else if (flag == "--rate")
      config.rate_per_s = std::stod(value);
    else if (flag == "--latency-file")
      config.latency_file = value;
    else if (flag == "--protocol" && (value == "udp" || value == "http"))
      config.http = value == "http";
    else if (flag == "--keep-alive" && (value == "0" || value == "1"))
      config.keep_alive = value == "1";
    else if (flag == "--passkeys" || flag == "--users")
      config.passkeys = static_cast<std::uint32_t>(std::stoul(value));
    else
      return false;
  }
  return config.sockets > 0 && config.sockets <= 10000 && config.inflight > 0 &&
         config.inflight <= 255 && config.torrents > 0 && config.peers > 0 &&
         config.duration_s > 0 && config.duration_s <= 3600 &&
         !(config.http && (config.fill_peers != 0 || config.rate_per_s > 0)) &&
         config.fill_peers <= std::uint64_t{config.sockets} * 64000 && config.rate_per_s >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  if (!parse(argc, argv, config)) {
    std::fprintf(
        stderr,
        "usage: tyto-load [--target ADDR:PORT] [--core N] [--duration-s S] [--warmup-s S]\n"
        "  [--sockets N] [--inflight N] [--torrents N] [--peers N] [--numwant N]\n"
        "  [--announces-per-scrape N] [--scrapes-only 0|1] [--seeder-percent P] [--seed N]\n"
        "  [--timeout-ms MS]\n"
        "  [--fill-peers N] [--fill-spread even|popularity] [--info-hash-file FILE] [--protocol "
        "udp|http] [--keep-alive 0|1]\n"
        "  [--rate REQUESTS_PER_S (UDP)] [--latency-file FILE (CDF: us fraction)]\n"
        "  [--stall-probe-s S (no load: spin on --core, report the gaps)]\n"
        "  (--fill-peers needs N <= sockets x 64000: one source address per socket)\n"
        "  (--sockets is the number of TCP connections in HTTP mode; --inflight the pipeline "
        "depth)\n"
        "  [--passkeys N (or --users N): private tracker; peer p is user p %% N, passkey\n"
        "   \"bench%%06u\" of p %% N (site user_id p %% N + 1); UDP announces carry\n"
        "   \"/<passkey>/announce\" as BEP 41 URL data, HTTP uses /<passkey>/announce and\n"
        "   /<passkey>/scrape; torrent t is line t of --info-hash-file (torrent_id t + 1)]\n");
    return 2;
  }
  if (!config.info_hash_file.empty()) {
    std::ofstream out(config.info_hash_file);
    for (std::uint32_t t = 0; t < config.torrents; ++t) {
      const tyto::InfoHash hash = torrent_hash(config.seed, t);
      char hex[41];
      for (int i = 0; i < 20; ++i) std::snprintf(hex + 2 * i, 3, "%02x", hash.bytes[i]);
      out << hex << '\n';
    }
    return out ? 0 : 1;
  }
  if (config.core >= 0) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(config.core, &cpus);
    pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
  }
  if (config.stall_probe_s > 0) return probe_stalls(config.stall_probe_s);
  Latencies latencies;
  const Histogram& latency = latencies.all;  // both protocols
  double measured_s = 0;
  Totals totals;
  std::string first_error;
  if (config.http) {
    HttpGenerator generator(config);
    if (!generator.open()) return 1;
    totals = generator.run(latencies.all, measured_s);
    first_error = generator.first_error();
  } else {
    Generator generator(config);
    if (!generator.open()) return 1;
    totals = generator.run(latencies, measured_s);
    first_error = generator.first_error();
  }
  // Error replies are counted apart from responses; the first one's text says why (stderr).
  if (!first_error.empty()) {
    std::fprintf(stderr, "tyto-load: first error reply: %s\n", first_error.c_str());
  }
  // UDP connects are answered requests; HTTP connects are TCP handshakes, not responses.
  const double responses =
      static_cast<double>((config.http ? 0 : totals.connects) + totals.announces + totals.scrapes);
  std::printf(
      "tyto-load: responses_per_s=%.0f announces_per_s=%.0f scrapes_per_s=%.0f "
      "connects=%llu errors=%llu lost=%llu sent=%llu seconds=%.2f "
      "p50_us=%.1f p99_us=%.1f p999_us=%.1f read_delay_p99_us=%.1f "
      "p99_second_median_us=%.1f p99_second_min_us=%.1f p99_second_max_us=%.1f "
      "passes_over_1ms=%llu load_cpu_share=%.3f load_cpu_us_per_response=%.2f\n",
      responses / measured_s, static_cast<double>(totals.announces) / measured_s,
      static_cast<double>(totals.scrapes) / measured_s,
      static_cast<unsigned long long>(totals.connects),
      static_cast<unsigned long long>(totals.errors), static_cast<unsigned long long>(totals.lost),
      static_cast<unsigned long long>(totals.sent), measured_s, latency.percentile_ns(0.5) / 1e3,
      latency.percentile_ns(0.99) / 1e3, latency.percentile_ns(0.999) / 1e3,
      latencies.read_delay.percentile_ns(0.99) / 1e3, latencies.secondly.median_ns() / 1e3,
      latencies.secondly.min_ns() / 1e3, latencies.secondly.max_ns() / 1e3,
      static_cast<unsigned long long>(latencies.slow_passes),
      static_cast<double>(totals.cpu_ns) / 1e9 / measured_s,
      static_cast<double>(totals.cpu_ns) / 1e3 / std::max(responses, 1.0));
  if (!config.latency_file.empty() && !latency.write_cdf(config.latency_file)) {
    std::perror("tyto-load: --latency-file");
    return 1;
  }
  return responses > 0 ? 0 : 1;
}
