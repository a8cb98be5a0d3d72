// tyto-load: the project's load generator. UDP mode (BEP 15) with aquatic's load model
// (DESIGN §8): T torrents, P peers reused across requests, torrent popularity ∝ exp(-k·rank),
// 100 announces : 1 scrape, numwant 30, 75 % of announces from seeders.
//
// One thread pinned to --core, busy-polling non-blocking sockets with sendmmsg/recvmmsg. Each
// socket has its own source address in 127.0.0.0/8 (127.0.0.2, .3, ...), so tracker peers differ
// by address as on the internet; up to --inflight requests are outstanding per socket, matched
// by transaction id; a request unanswered after --timeout-ms is counted lost and replaced.
// Bounded by --duration-s; prints one machine-readable line at the end.
//
//   tyto-load --target 127.0.0.1:6969 --core 1 --duration-s 10
//   tyto-load --target 127.0.0.1:6969 --fill-peers 1000000     (announce N distinct peers, exit)
//   tyto-load --info-hash-file hashes.txt --torrents 1000000    (write the hashes, exit)
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
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
  std::uint32_t scrape_hashes = 4;
  std::int32_t numwant = 30;
  std::uint32_t seeder_percent = 75;
  double popularity_k = 8.0;  // weight ∝ exp(-k · rank / torrents)
  std::uint64_t seed = 1;
  std::uint32_t timeout_ms = 1000;
  std::uint64_t fill_peers = 0;
  std::string info_hash_file;
};

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

 private:
  static std::size_t bucket(std::uint64_t ns) {
    const auto index = static_cast<std::size_t>(std::log2(static_cast<double>(ns | 1)) * 16);
    return index < 1024 ? index : 1023;
  }
  std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(1024);
  std::uint64_t count_ = 0;
};

struct Slot {
  std::uint32_t transaction_id = 0;
  std::uint8_t kind = 0;  // 0 free, 1 connect, 2 announce, 3 scrape
  Clock::time_point sent;
};

struct Socket {
  int fd = -1;
  std::uint64_t connection_id = 0;
  Clock::time_point connected_at;
  bool connecting = false;
  std::vector<Slot> slots;
  std::uint32_t sequence = 0;
};

struct Totals {
  std::uint64_t connects = 0, announces = 0, scrapes = 0, errors = 0, lost = 0, sent = 0;
};

class Generator {
 public:
  explicit Generator(const Config& config) : config_(config), random_(config.seed) {}

  bool open() {
    const auto target = tyto::net::parse_socket_address(config_.target);
    if (!target) {
      std::fprintf(stderr, "tyto-load: bad --target %s\n", config_.target.c_str());
      return false;
    }
    target_ = *target;
    for (std::uint32_t i = 0; i < config_.sockets; ++i) {
      Socket socket;
      socket.fd = ::socket(target_.family(), SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (socket.fd < 0) return false;
      const int buffer = 4 << 20;
      setsockopt(socket.fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
      if (target_.family() == AF_INET) {  // a source address of its own in 127.0.0.0/8
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr.s_addr = htonl(0x7f000002u + (i / 250) * 256 + i % 250);
        if (bind(socket.fd, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
          std::perror("tyto-load: bind source address");
          return false;
        }
      }
      socket.slots.resize(config_.inflight);
      sockets_.push_back(std::move(socket));
    }
    hashes_.reserve(config_.torrents);
    for (std::uint32_t t = 0; t < config_.torrents; ++t)
      hashes_.push_back(torrent_hash(config_.seed, t));
    return true;
  }

  // Runs until the deadline (or until fill_peers announces were answered). Returns totals
  // counted after the warm-up.
  Totals run(Histogram& latency, double& measured_s) {
    const auto start = Clock::now();
    const auto measure_from =
        start + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double>(config_.fill_peers ? 0 : config_.warmup_s));
    const auto deadline = measure_from + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(config_.duration_s));
    Totals totals;
    Totals at_warmup;
    bool warm = config_.fill_peers != 0 || config_.warmup_s <= 0;
    std::uint8_t packets[64][2048];
    mmsghdr messages[64];
    iovec vectors[64];
    for (;;) {
      const auto now = Clock::now();
      if (now >= deadline) break;
      if (!warm && now >= measure_from) {
        warm = true;
        at_warmup = totals;
        latency = Histogram();
      }
      if (config_.fill_peers != 0 && fill_next_ >= config_.fill_peers && inflight_ == 0) break;
      for (Socket& socket : sockets_) {
        receive(socket, totals, latency, now, warm);
        send(socket, totals, now, packets, messages, vectors);
      }
    }
    measured_s =
        std::chrono::duration<double>(Clock::now() - (config_.fill_peers ? start : measure_from))
            .count();
    Totals result = totals;
    result.connects -= at_warmup.connects;
    result.announces -= at_warmup.announces;
    result.scrapes -= at_warmup.scrapes;
    result.errors -= at_warmup.errors;
    result.lost -= at_warmup.lost;
    result.sent -= at_warmup.sent;
    return result;
  }

 private:
  std::uint32_t pick_torrent() {
    const double rank = exponential_(random_) * config_.torrents / config_.popularity_k;
    return static_cast<std::uint32_t>(rank) % config_.torrents;
  }

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
    const bool scrape = config_.fill_peers == 0 && config_.announces_per_scrape != 0 &&
                        random_() % (config_.announces_per_scrape + 1) == 0;
    if (scrape) {
      slot.kind = 3;
      writer.u64(socket.connection_id);
      writer.u32(2);
      writer.u32(slot.transaction_id);
      for (std::uint32_t i = 0; i < config_.scrape_hashes; ++i)
        writer.bytes(hashes_[pick_torrent()].bytes);
      return writer.size();
    }
    slot.kind = 2;
    // A peer is (source address, announced port): peer p lives on socket p % sockets.
    std::uint64_t peer;
    std::uint32_t torrent;
    if (config_.fill_peers != 0) {
      peer = fill_next_++;
      torrent = static_cast<std::uint32_t>(peer % config_.torrents);
    } else {
      peer = random_() % config_.peers;
      torrent = pick_torrent();
    }
    const auto port = static_cast<std::uint16_t>(1024 + (peer / config_.sockets) % 64000);
    const bool seeder = random_() % 100 < config_.seeder_percent;
    writer.u64(socket.connection_id);
    writer.u32(1);
    writer.u32(slot.transaction_id);
    writer.bytes(hashes_[torrent].bytes);
    std::uint8_t peer_id[20] = {'-', 'T', 'L', '0', '0', '0', '1', '-'};
    std::memcpy(peer_id + 8, &peer, sizeof peer);
    writer.bytes(peer_id);
    writer.u64(0);                           // downloaded
    writer.u64(seeder ? 0 : 1 << 20);        // left
    writer.u64(0);                           // uploaded
    writer.u32(config_.fill_peers ? 2 : 0);  // event: started when filling, else none
    writer.u32(0);
    writer.u32(static_cast<std::uint32_t>(peer));
    writer.i32(config_.numwant);
    writer.u16(port);
    (void)socket_index;
    return writer.size();
  }

  void send(Socket& socket, Totals& totals, Clock::time_point now, std::uint8_t (*packets)[2048],
            mmsghdr* messages, iovec* vectors) {
    const auto socket_index = static_cast<std::uint32_t>(&socket - sockets_.data());
    std::uint32_t count = 0;
    for (std::uint32_t i = 0; i < socket.slots.size() && count < 64; ++i) {
      Slot& slot = socket.slots[i];
      if (slot.kind != 0) {
        if (now - slot.sent < std::chrono::milliseconds(config_.timeout_ms)) continue;
        ++totals.lost;  // unanswered: replace it
        if (slot.kind == 1) socket.connecting = false;
        slot.kind = 0;
        --inflight_;
      }
      if (config_.fill_peers != 0 && fill_next_ >= config_.fill_peers && socket.connection_id != 0)
        break;
      const std::size_t size = build(socket, socket_index, slot, i, packets[count], now);
      if (size == 0) {
        slot.kind = 0;
        break;
      }
      vectors[count] = {packets[count], size};
      messages[count] = {};
      messages[count].msg_hdr.msg_name = const_cast<sockaddr*>(target_.get());
      messages[count].msg_hdr.msg_namelen = target_.size;
      messages[count].msg_hdr.msg_iov = &vectors[count];
      messages[count].msg_hdr.msg_iovlen = 1;
      ++count;
      ++inflight_;
    }
    if (count == 0) return;
    const int sent = sendmmsg(socket.fd, messages, count, 0);
    totals.sent += sent > 0 ? static_cast<std::uint64_t>(sent) : 0;
    // Anything the kernel refused stays "in flight" and is counted lost after the timeout.
  }

  void receive(Socket& socket, Totals& totals, Histogram& latency, Clock::time_point now,
               bool warm) {
    std::uint8_t buffers[32][1500];
    mmsghdr messages[32];
    iovec vectors[32];
    for (int i = 0; i < 32; ++i) {
      vectors[i] = {buffers[i], sizeof buffers[i]};
      messages[i] = {};
      messages[i].msg_hdr.msg_iov = &vectors[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int received = recvmmsg(socket.fd, messages, 32, MSG_DONTWAIT, nullptr);
    for (int i = 0; i < received; ++i) {
      tyto::ByteReader reader(std::span<const std::uint8_t>(buffers[i], messages[i].msg_len));
      const std::uint32_t action = reader.u32();
      const std::uint32_t transaction_id = reader.u32();
      if (!reader.ok()) continue;
      const std::uint32_t slot_index = transaction_id >> 24;
      if (slot_index >= socket.slots.size()) continue;
      Slot& slot = socket.slots[slot_index];
      if (slot.kind == 0 || slot.transaction_id != transaction_id) continue;  // late or foreign
      if (warm)
        latency.add(static_cast<std::uint64_t>(std::chrono::nanoseconds(now - slot.sent).count()));
      if (action == 3) {
        ++totals.errors;
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

  const Config& config_;
  tyto::net::SocketAddress target_;
  std::vector<Socket> sockets_;
  std::vector<tyto::InfoHash> hashes_;
  std::mt19937_64 random_;
  std::exponential_distribution<double> exponential_{1.0};
  std::uint64_t fill_next_ = 0;
  std::int64_t inflight_ = 0;
};

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
    else if (flag == "--info-hash-file")
      config.info_hash_file = value;
    else
      return false;
  }
  return config.sockets > 0 && config.sockets <= 10000 && config.inflight > 0 &&
         config.inflight <= 255 && config.torrents > 0 && config.peers > 0 &&
         config.duration_s > 0 && config.duration_s <= 3600;
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  if (!parse(argc, argv, config)) {
    std::fprintf(
        stderr,
        "usage: tyto-load [--target ADDR:PORT] [--core N] [--duration-s S] [--warmup-s S]\n"
        "  [--sockets N] [--inflight N] [--torrents N] [--peers N] [--numwant N]\n"
        "  [--announces-per-scrape N] [--seeder-percent P] [--seed N] [--timeout-ms MS]\n"
        "  [--fill-peers N] [--info-hash-file FILE]\n");
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
  Generator generator(config);
  if (!generator.open()) return 1;
  Histogram latency;
  double measured_s = 0;
  const Totals totals = generator.run(latency, measured_s);
  const double responses = static_cast<double>(totals.connects + totals.announces + totals.scrapes);
  std::printf(
      "tyto-load: responses_per_s=%.0f announces_per_s=%.0f scrapes_per_s=%.0f "
      "connects=%llu errors=%llu lost=%llu sent=%llu seconds=%.2f "
      "p50_us=%.1f p99_us=%.1f p999_us=%.1f\n",
      responses / measured_s, static_cast<double>(totals.announces) / measured_s,
      static_cast<double>(totals.scrapes) / measured_s,
      static_cast<unsigned long long>(totals.connects),
      static_cast<unsigned long long>(totals.errors), static_cast<unsigned long long>(totals.lost),
      static_cast<unsigned long long>(totals.sent), measured_s, latency.percentile_ns(0.5) / 1e3,
      latency.percentile_ns(0.99) / 1e3, latency.percentile_ns(0.999) / 1e3);
  return responses > 0 ? 0 : 1;
}
