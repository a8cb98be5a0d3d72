#!/usr/bin/env bash
# Runs opentracker and tyto one after the other under the same load from tyto-load, each server
# pinned to the same core and the generator to another, and prints each rate and the ratios.
#   UDP:  also tyto's io_uring echo responder (the ceiling: same UDP path, no swarm work).
#   HTTP: opentracker closes after each response, so it gets one request per connection; tyto is
#         measured that way too and with keep-alive and --pipeline requests in flight per
#         connection (what it is built for).
#
#   tools/compare_opentracker.sh [--protocol udp|http] [--server-core 0] [--client-core 1]
#                                [--duration-s 10] [--torrents 1000000] [--peers 2000000]
#                                [--connections 64] [--pipeline 8] [--build-dir build-release]
#
# Debian's opentracker: IPv4 only, built with a whitelist (the generator's hashes are written to
# it), refuses to run as root without -u, chroots into its tracker.rootdir. One UDP worker.
set -euo pipefail
cd "$(dirname "$0")/.."

protocol=udp server_core=0 client_core=1 duration_s=10 torrents=1000000 peers=2000000
connections=64 pipeline=8 build_dir=build-release
while [ $# -gt 0 ]; do
  case "$1" in
    --protocol) protocol=$2 ;;
    --connections) connections=$2 ;;
    --pipeline) pipeline=$2 ;;
    --server-core) server_core=$2 ;;
    --client-core) client_core=$2 ;;
    --duration-s) duration_s=$2 ;;
    --torrents) torrents=$2 ;;
    --peers) peers=$2 ;;
    --build-dir) build_dir=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done

if ! command -v opentracker >/dev/null; then
  echo "compare: installing opentracker" >&2
  apt-get install -y -q opentracker >/dev/null
fi
[ -f "$build_dir/build.ninja" ] || meson setup "$build_dir" --buildtype=release -Dtests=false >/dev/null
ninja -C "$build_dir" tyto tools/loadgen/tyto-load tools/echo/tyto-udp-echo >/dev/null

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
load=("$build_dir/tools/loadgen/tyto-load" --target "127.0.0.1:$port" --core "$client_core"
      --duration-s "$duration_s" --warmup-s 2 --torrents "$torrents" --peers "$peers")

"${load[@]}" --info-hash-file "$work/whitelist.txt"
chmod 644 "$work/whitelist.txt"

wait_http() {  # a TCP connect accepted within 30 s, or fail
  timeout 30 python3 - "$port" <<'PY'
import socket, sys, time
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.3).close(); break
    except OSError:
        time.sleep(0.2)
PY
}

wait_udp() {  # a BEP 15 connect answered within 30 s, or fail
  timeout 30 python3 - "$port" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
    s.sendto(struct.pack(">QII", 0x41727101980, 0, 7), ("127.0.0.1", port))
    try:
        s.recvfrom(64); break
    except OSError:
        time.sleep(0.2)
PY
}

measure() {  # name, load flags (one word), then the server command
  local name=$1 flags=$2
  shift 2
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  local pid=$!
  if ! "wait_$protocol"; then
    echo "compare: $name did not answer on 127.0.0.1:$port" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
  local line
  # shellcheck disable=SC2086  # flags is a word list on purpose
  line=$("${load[@]}" $flags)
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$name: $line" >&2
  echo "$line" | sed -E 's/.*responses_per_s=([0-9]+).*/\1/'
}

# opentracker's TCP port is the one measured in HTTP mode, its UDP one in UDP mode.
if [ "$protocol" = http ]; then
  opentracker_udp=$((port + 1)) opentracker_tcp=$port
else
  opentracker_udp=$port opentracker_tcp=$((port + 1))
fi
cat >"$work/opentracker.conf" <<CONF
listen.udp.workers 1
listen.udp 127.0.0.1:$opentracker_udp
listen.tcp 127.0.0.1:$opentracker_tcp
access.whitelist /whitelist.txt
tracker.rootdir $work
tracker.user nobody
CONF

opentracker=(taskset -c "$server_core" opentracker -f "$work/opentracker.conf")
tyto=("$build_dir/tyto" --udp "127.0.0.1:$port" --http "127.0.0.1:$port" --cores "$server_core" --quiet)

if [ "$protocol" = http ]; then
  http="--protocol http --sockets $connections"
  opentracker_rps=$(measure opentracker "$http --keep-alive 0" "${opentracker[@]}")
  tyto_close_rps=$(measure tyto-close "$http --keep-alive 0" "${tyto[@]}")
  tyto_rps=$(measure tyto-keep-alive "$http --keep-alive 1 --inflight $pipeline" "${tyto[@]}")
  echo
  echo "HTTP responses/s, server on CPU $server_core, generator on CPU $client_core, ${duration_s} s each:"
  printf '  %-34s %10s\n' "opentracker (closes each)" "$opentracker_rps" \
    "tyto, one request per connection" "$tyto_close_rps" \
    "tyto, keep-alive, pipeline $pipeline" "$tyto_rps"
  awk -v t="$tyto_rps" -v c="$tyto_close_rps" -v o="$opentracker_rps" 'BEGIN {
    printf "  tyto keep-alive / opentracker = %.2f\n  tyto one-per-connection / opentracker = %.2f\n",
      t / o, c / o }'
  exit 0
fi

opentracker_rps=$(measure opentracker "" "${opentracker[@]}")
tyto_rps=$(measure tyto "" "${tyto[@]}")
echo_rps=$(measure echo "" "$build_dir/tools/echo/tyto-udp-echo" --udp "127.0.0.1:$port" --core "$server_core")

echo
echo "UDP responses/s, server on CPU $server_core, generator on CPU $client_core, ${duration_s} s each:"
printf '  %-12s %10s\n' opentracker "$opentracker_rps" tyto "$tyto_rps" echo-ceiling "$echo_rps"
awk -v t="$tyto_rps" -v o="$opentracker_rps" -v e="$echo_rps" 'BEGIN {
  printf "  tyto / opentracker = %.2f\n  tyto / echo ceiling = %.2f\n", t / o, t / e }'
