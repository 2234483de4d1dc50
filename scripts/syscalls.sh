#!/usr/bin/env bash
# syscalls.sh: system calls per proxied HTTP/1.1 request, Monolake (each
# runtime) against nginx, counted by `strace -c -f` on the proxy's worker
# over a fixed wrk run (keep-alive, 50 connections, 1 KiB bodies).
#
#   scripts/syscalls.sh [SECONDS]      # default 5
#
# Needs bin/monolake (make uring), nginx, wrk and strace (scripts/install-deps.sh
# installs them). Everything listens on 127.0.0.1:2950x and is stopped at the
# end. strace slows every target alike; the counts per request are the figure,
# not the throughput.
set -euo pipefail

secs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin/monolake
for tool in nginx wrk strace taskset; do
	command -v "$tool" >/dev/null || { echo "syscalls.sh: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "syscalls.sh: no $bin; run make uring" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/origin" "$work/proxy"
head -c 1024 /dev/zero | tr '\0' a >"$work/www/1k"

# nginx_conf DIR HTTP-BODY: a one-worker nginx config in DIR/nginx.conf,
# its pid and temp files in DIR, HTTP-BODY inside the http block.
nginx_conf() {
	local dir=$1 body=$2 temps=""
	for t in client_body proxy fastcgi uwsgi scgi; do temps+="${t}_temp_path $dir/$t; "; done
	cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off; keepalive_requests 100000000; $temps
    $body
}
EOF
}

nginx_conf "$work/origin" "server { listen 127.0.0.1:29500; root $work/www; }"
nginx_conf "$work/proxy" 'upstream origin { server 127.0.0.1:29500; keepalive 64; }
    server {
        listen 127.0.0.1:29501;
        location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }'
cat >"$work/monolake.toml" <<EOF
[runtime]
worker_threads = 1
cpu_affinity = false
[servers.p]
name = "p"
listener = { type = "socket", value = "127.0.0.1:29502" }
[[servers.p.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:29500" } }]
EOF

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "syscalls.sh: nothing listens on port $1" >&2
	return 1
}

taskset -c 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" -e "$work/origin/error.log" -g "daemon off;" &
pids+=($!)
wait_port 29500

# count NAME PORT PID: strace the worker PID over a wrk run through PORT.
count() {
	local name=$1 port=$2 pid=$3 out=$work/${1//\//-}.strace
	strace -c -f -p "$pid" -o "$out" &
	local st=$!
	sleep 0.5
	local reqs
	reqs=$(taskset -c 1 wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:$port/1k" | awk '/requests in/ {print $1}')
	kill -INT "$st"
	wait "$st" 2>/dev/null || true
	local total top
	total=$(awk '$NF == "total" { print $4 }' "$out")
	top=$(awk -v reqs="$reqs" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / reqs >= 0.01 { printf "%s %.2f\n", $NF, $4 / reqs }' "$out" |
		sort -k2 -nr | head -6 | tr '\n' ' ')
	printf '%-14s %8d requests  %5.2f syscalls/request  (%s)\n' "$name" "$reqs" "$(echo "$total / $reqs" | bc -l)" "$top"
}

taskset -c 0 nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" -e "$work/proxy/error.log" -g "daemon off; master_process on;" &
pids+=($!)
wait_port 29501
sleep 0.3
count nginx 29501 "$(pgrep -P "${pids[-1]}" | head -1)"
kill "${pids[-1]}"

for rt in uring epoll; do
	taskset -c 0 "$bin" run --config "$work/monolake.toml" --runtime "$rt" 2>"$work/monolake-$rt.log" &
	pids+=($!)
	wait_port 29502
	sleep 0.3
	count "monolake/$rt" 29502 "$(pgrep -P "${pids[-1]}" | head -1)"
	kill "${pids[-1]}"
	wait "${pids[-1]}" 2>/dev/null || true
done
