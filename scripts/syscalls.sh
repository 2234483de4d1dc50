#!/usr/bin/env bash
# syscalls.sh: system calls per proxied HTTP/1.1 request, Monolake (each
# runtime) against nginx, counted on the proxy's worker over a fixed wrk run
# (keep-alive, 50 connections, 1 KiB bodies).
#
#   scripts/syscalls.sh [SECONDS]      # default 5
#   SYSCALLS_TOOL=strace scripts/syscalls.sh
#
# The counter is perf (`perf stat` on the raw_syscalls and syscalls
# tracepoints) when it can read them, else strace -c -f. Prefer perf: it
# counts without stopping the target, while strace makes every system call
# several times slower, which lets more requests share each io_uring round
# and each epoll_wait than at full speed, so its counts for both proxies are
# lower than what they make unobserved (io_uring 0.2-0.8 per request under
# strace against 2.0-3.1 under perf, on the machine of the README).
#
# Needs bin/monolake (make uring), nginx and wrk (scripts/install-deps.sh
# installs them), and perf (Debian: linux-perf) or strace. Everything listens
# on 127.0.0.1:2950x and is stopped at the end.
set -euo pipefail

secs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin/monolake
for tool in nginx wrk taskset; do
	command -v "$tool" >/dev/null || { echo "syscalls.sh: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
tool=${SYSCALLS_TOOL:-}
if [ -z "$tool" ]; then
	if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null; then
		tool=perf
	elif command -v strace >/dev/null; then
		tool=strace
	else
		echo "syscalls.sh: needs perf (with tracepoint access) or strace" >&2
		exit 1
	fi
fi
case $tool in
perf | strace) command -v "$tool" >/dev/null || { echo "syscalls.sh: $tool not found" >&2; exit 1; } ;;
*) echo "syscalls.sh: SYSCALLS_TOOL must be perf or strace, not $tool" >&2; exit 1 ;;
esac
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

# perf's events: every system call for the total, and those named in the
# breakdown that this kernel has a tracepoint for.
if [ "$tool" = perf ]; then
	evs=raw_syscalls:sys_enter
	for n in io_uring_enter epoll_wait epoll_pwait read write readv writev recvfrom sendto recvmsg sendmsg getsockopt setsockopt getpid gettid futex nanosleep; do
		perf list "syscalls:sys_enter_$n" 2>/dev/null | grep -q "sys_enter_$n" && evs+=",syscalls:sys_enter_$n"
	done
fi

# count NAME PORT PID: count the worker PID's system calls over a wrk run
# through PORT.
count() {
	local name=$1 port=$2 pid=$3 out=$work/${1//\//-}.$tool
	local ctr
	if [ "$tool" = perf ]; then
		perf stat -x, -e "$evs" -p "$pid" -o "$out" &
	else
		strace -c -f -p "$pid" -o "$out" &
	fi
	ctr=$!
	sleep 0.5
	local reqs
	reqs=$(taskset -c 1 wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:$port/1k" | awk '/requests in/ {print $1}')
	kill -INT "$ctr"
	wait "$ctr" 2>/dev/null || true
	local total top
	if [ "$tool" = perf ]; then
		total=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$out")
		top=$(awk -F, -v reqs="$reqs" '$3 ~ /^syscalls:sys_enter_/ && $1 / reqs >= 0.01 { sub("syscalls:sys_enter_", "", $3); printf "%s %.2f\n", $3, $1 / reqs }' "$out" |
			sort -k2 -nr | head -6 | tr '\n' ' ')
	else
		total=$(awk '$NF == "total" { print $4 }' "$out")
		top=$(awk -v reqs="$reqs" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / reqs >= 0.01 { printf "%s %.2f\n", $NF, $4 / reqs }' "$out" |
			sort -k2 -nr | head -6 | tr '\n' ' ')
	fi
	printf '%-14s %8d requests  %5.2f syscalls/request by %s  (%s)\n' "$name" "$reqs" "$(echo "$total / $reqs" | bc -l)" "$tool" "$top"
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
