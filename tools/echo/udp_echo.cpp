// tyto-udp-echo: the hardware ceiling for the bench suite (DESIGN §8). A BEP 15 responder on the
// same io_uring UDP path as tyto (tyto's own UdpSockets and Ring) that does no swarm work: it
// answers connect, announce and scrape with replies of the sizes tyto would send (announce:
// 20 bytes + numwant × 6 zero bytes, numwant as tyto resolves it), so the load generator counts
// them as valid. One thread, pinned with --core.
//
//   tyto-udp-echo --udp 127.0.0.1:6969 [--core 0] [--duration-s N] [--udp-send sendmmsg|uring]
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "tyto/core/bytes.hpp"
#include "tyto/core/limits.hpp"
#include "tyto/net/address.hpp"
#include "tyto/net/ring.hpp"
#include "tyto/net/udp_socket.hpp"

namespace {

volatile sig_atomic_t stop_requested = 0;
void on_signal(int) {
  stop_requested = 1;
}

// Builds the reply into `out`; 0 means no reply (not BEP 15).
std::size_t respond(std::span<const std::uint8_t> request, std::span<std::uint8_t> out) {
  tyto::ByteReader reader(request);
  const std::uint64_t connection_id = reader.u64();
  const std::uint32_t action = reader.u32();
  const std::uint32_t transaction_id = reader.u32();
  if (!reader.ok()) return 0;
  tyto::ByteWriter writer(out);
  if (action == 0 && connection_id == 0x41727101980ull) {
    writer.u32(0);
    writer.u32(transaction_id);
    writer.u64(0x1122334455667788ull);
  } else if (action == 1 && request.size() >= tyto::limits::udp_announce_request_size) {
    tyto::ByteReader numwant_reader(request.subspan(92, 4));
    const std::int32_t numwant = numwant_reader.i32();
    std::uint32_t peers =
        numwant <= 0 ? tyto::limits::numwant_default : static_cast<std::uint32_t>(numwant);
    if (peers > tyto::limits::numwant_max) peers = tyto::limits::numwant_max;
    writer.u32(1);
    writer.u32(transaction_id);
    writer.u32(1800);
    writer.u32(peers);
    writer.u32(peers);
    if (std::uint8_t* at = writer.reserve(peers * 6)) std::memset(at, 0, peers * 6);
  } else if (action == 2 && request.size() > 16) {
    const std::size_t hashes = (request.size() - 16) / 20;
    writer.u32(2);
    writer.u32(transaction_id);
    if (std::uint8_t* at = writer.reserve(hashes * 12)) std::memset(at, 0, hashes * 12);
  } else {
    return 0;
  }
  return writer.ok() ? writer.size() : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:6969";
  int core = -1;
  unsigned duration_s = 0;
  auto send_mode = tyto::net::UdpSendMode::sendmmsg;  // tyto's default send path
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--udp")
      listen = argv[i + 1];
    else if (flag == "--core")
      core = std::stoi(argv[i + 1]);
    else if (flag == "--udp-send" && std::string(argv[i + 1]) == "uring")
      send_mode = tyto::net::UdpSendMode::uring;
    else if (flag == "--udp-send" && std::string(argv[i + 1]) == "sendmmsg")
      send_mode = tyto::net::UdpSendMode::sendmmsg;
    else if (flag == "--duration-s")
      duration_s = static_cast<unsigned>(std::stoul(argv[i + 1]));
    else {
      std::fprintf(stderr,
                   "usage: tyto-udp-echo --udp ADDR:PORT [--core N] [--duration-s N] "
                   "[--udp-send sendmmsg|uring]\n");
      return 2;
    }
  }
  if (core >= 0) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(core, &cpus);
    pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
  }
  const auto address = tyto::net::parse_socket_address(listen);
  if (!address) {
    std::fprintf(stderr, "tyto-udp-echo: bad address %s\n", listen.c_str());
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  tyto::net::Ring ring;
  tyto::net::UdpSockets sockets;
  if (std::string error = ring.init(4096, true); !error.empty()) {
    std::fprintf(stderr, "tyto-udp-echo: %s\n", error.c_str());
    return 1;
  }
  std::string error = sockets.bind(std::span(&*address, 1));
  if (error.empty()) error = sockets.open(ring);
  if (!error.empty()) {
    std::fprintf(stderr, "tyto-udp-echo: %s\n", error.c_str());
    return 1;
  }
  sockets.set_send_mode(send_mode);
  sockets.arm_all(ring);
  std::fprintf(stderr, "tyto-udp-echo: serving %s\n", address->to_string().c_str());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(duration_s);
  bool busy = false;
  while (!stop_requested && (duration_s == 0 || std::chrono::steady_clock::now() < deadline)) {
    if (busy)
      ring.submit();
    else
      ring.submit_and_wait(200);
    const unsigned handled = ring.drain([&](const io_uring_cqe& cqe) {
      const auto op = tyto::net::user_data_op(cqe.user_data);
      if (op == tyto::net::Op::udp_send) {
        sockets.sent(cqe);
        return;
      }
      if (op != tyto::net::Op::udp_recv) return;
      if (const auto datagram = sockets.receive(ring, cqe)) {
        if (const auto slot = sockets.acquire_send_slot()) {
          const std::size_t size = respond(datagram->payload, sockets.send_buffer(*slot));
          if (size != 0)
            sockets.send(ring, *slot, size, datagram->route);
          else
            sockets.release_send_slot(*slot);
        }
      }
      sockets.recycle(cqe);
    });
    sockets.flush();
    busy = handled != 0;
  }
  std::fprintf(stderr, "tyto-udp-echo: received=%llu sent=%llu\n",
               static_cast<unsigned long long>(sockets.counters().datagrams_received),
               static_cast<unsigned long long>(sockets.counters().datagrams_sent));
  return 0;
}
