#!/usr/bin/env bash
# Runs tyto, opentracker and tyto's io_uring echo responder (the ceiling: same UDP path, no swarm
# work) one after the other under the same UDP load from tyto-load, each server pinned to the
# same core and the generator to another, and prints each rate and the ratios.
#
#   tools/compare_opentracker.sh [--server-core 0] [--client-core 1] [--duration-s 10]
#                                [--torrents 1000000] [--peers 2000000] [--build-dir build-release]
#
# Debian's opentracker: IPv4 only, built with a whitelist (the generator's hashes are written to
# it), refuses to run as root without -u, chroots into its tracker.rootdir. One UDP worker.
set -euo pipefail
cd "$(dirname "$0")/.."

server_core=0 client_core=1 duration_s=10 torrents=1000000 peers=2000000 build_dir=build-release
while [ $# -gt 0 ]; do
  case "$1" in
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

measure() {  # name, then the server command
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  local pid=$!
  if ! wait_udp; then
    echo "compare: $name did not answer on 127.0.0.1:$port" >&2
    cat "$work/$name.log" >&2
    exit 1
  fi
  local line
  line=$("${load[@]}")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$name: $line" >&2
  echo "$line" | sed -E 's/.*responses_per_s=([0-9]+).*/\1/'
}

cat >"$work/opentracker.conf" <<CONF
listen.udp.workers 1
listen.udp 127.0.0.1:$port
listen.tcp 127.0.0.1:$((port + 1))
access.whitelist /whitelist.txt
tracker.rootdir $work
tracker.user nobody
CONF

opentracker_rps=$(measure opentracker taskset -c "$server_core" opentracker -f "$work/opentracker.conf")
tyto_rps=$(measure tyto "$build_dir/tyto" --udp "127.0.0.1:$port" --cores "$server_core" --quiet)
echo_rps=$(measure echo "$build_dir/tools/echo/tyto-udp-echo" --udp "127.0.0.1:$port" --core "$server_core")

echo
echo "UDP responses/s, server on CPU $server_core, generator on CPU $client_core, ${duration_s} s each:"
printf '  %-12s %10s\n' opentracker "$opentracker_rps" tyto "$tyto_rps" echo-ceiling "$echo_rps"
awk -v t="$tyto_rps" -v o="$opentracker_rps" -v e="$echo_rps" 'BEGIN {
  printf "  tyto / opentracker = %.2f\n  tyto / echo ceiling = %.2f\n", t / o, t / e }'
