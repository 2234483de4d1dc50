#!/usr/bin/env bash
# floor.sh: how far below nginx's HTTP proxy a proxy can get on this machine.
# The same keep-alive HTTP/1.1 load (wrk on CPU 1 with the origin) goes
# through four proxies on CPU 0 in turn: nginx's HTTP proxy, nginx's stream
# relay, Monolake's HTTP proxy and Monolake's L4 relay (both on io_uring).
# A relay does no HTTP work: it moves each request and response as bytes,
# with the system calls and wake-ups a proxy cannot avoid. Its requests per
# CPU-second, against nginx's HTTP proxy, are what a proxy would reach whose
# HTTP work cost nothing, built on the same event loop.
#
#   scripts/floor.sh [SECONDS [CONNS [PATH [ROUNDS]]]]   # 5 50 /0 4
#
# Rounds alternate the order; the figures are medians of requests per
# second and per CPU-second of the proxy's worker (user + system time from
# /proc), and each proxy's per-CPU-second figure over nginx HTTP's.
#
# Needs bin/monolake (make uring), nginx and wrk (scripts/install-deps.sh).
set -euo pipefail

secs=${1:-5} conns=${2:-50} path=${3:-/0} rounds=${4:-4}
name=floor.sh
# shellcheck source=scripts/rig.sh
source "$(dirname "$0")/rig.sh"
start_origin

mkdir -p "$work/stream"
# Debian's nginx has the stream module as a dynamic one, as the suite's
# configs assume.
load=""
stream_so=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$stream_so" ] && load="load_module $stream_so;"
cat >"$work/stream/nginx.conf" <<NGINX
$load
worker_processes 1;
pid $work/stream/nginx.pid;
events { worker_connections 4096; }
stream {
    upstream origin { server 127.0.0.1:29500; }
    server { listen 127.0.0.1:29503; proxy_pass origin; tcp_nodelay on; }
}
NGINX
cat >"$work/l4.toml" <<TOML
[runtime]
worker_threads = 1
cpu_affinity = false
[servers.p]
name = "p"
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:29504" }
route = { upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:29500" } }] }
TOML

# measure NAME: wrk through the proxy on $port, one line to $work/rows.
measure() {
	taskset -c 1 wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port$path" >/dev/null # warm up
	local t0 t1 reqs
	t0=$(ticks "$worker")
	reqs=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
	t1=$(ticks "$worker")
	echo "$1 $reqs $((t1 - t0))" >>"$work/rows"
}

one() {
	case $1 in
	nginx-http) start_nginx ;;
	nginx-stream) start_proxy 29503 "$work/stream/stderr.log" nginx -p "$work/stream" -c "$work/stream/nginx.conf" -e "$work/stream/error.log" -g "daemon off; master_process on;" ;;
	monolake-http) start_monolake uring ;;
	monolake-l4) start_proxy 29504 "$work/monolake-l4.log" "$bin" run --config "$work/l4.toml" --runtime uring ;;
	esac
	measure "$1"
	stop_proxy
}

: >"$work/rows"
order=(nginx-http nginx-stream monolake-http monolake-l4)
for r in $(seq "$rounds"); do
	if ((r % 2)); then
		for p in "${order[@]}"; do one "$p"; done
	else
		for ((i = ${#order[@]} - 1; i >= 0; i--)); do one "${order[i]}"; done
	fi
done

echo "HTTP/1.1 keep-alive through each proxy, $conns connections, $path, $rounds rounds of ${secs}s (medians)"
python3 - "$work/rows" "$secs" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
rows, secs, hz = {}, float(sys.argv[2]), float(sys.argv[3])
for line in open(sys.argv[1]):
    name, reqs, ticks = line.split()
    rows.setdefault(name, []).append((float(reqs) / secs, float(reqs) / (float(ticks) / hz)))
base = statistics.median(c for _, c in rows["nginx-http"])
print(f"{'proxy':14} {'req/s':>8} {'req/CPU-s':>10} {'÷ nginx-http':>13}")
for name, rs in rows.items():
    rps, cps = statistics.median(r for r, _ in rs), statistics.median(c for _, c in rs)
    print(f"{name:14} {rps:8.0f} {cps:10.0f} {cps / base:13.3f}")
PY
