// Package bench is the benchmark suite that measures Monolake for Go against
// nginx on the same machine, with the same origin and the same client.
//
// A run starts nginx as the origin (fixed bodies at /0, /1k, /16k and /64k),
// then, per case and worker count, nginx as the reverse proxy (or as an L4
// stream proxy) and Monolake in each runtime and TLS backend the build has.
// wrk (HTTP/1.1) or h2load (h2) drives them in interleaved repetitions
// after a warm-up: each repetition runs every target once, starting one
// target further along than the last (nginx, A, B; A, B, nginx; …). The
// direct run (client to origin) is the reference for what a transparent
// proxy could reach.
//
// Two figures are kept per run: requests per second, and requests per proxy
// CPU-second (user+system time of every process of the proxy, from /proc,
// over the measured window and a settle after it, so that work done once
// the load stops is charged too). On a small machine the load side saturates
// before a fast proxy does, so the second is the headline there; the load
// side's CPU use is recorded and a run where the proxy was not the bottleneck
// is flagged.
//
// Every process the suite starts runs in its own process group pinned with
// taskset, and is killed when the suite ends, also on SIGINT and SIGTERM.
//
// The pure parts (output parsers, /proc parsing, statistics, config
// rendering) are separate files with table tests; the orchestration lives in
// runner.go and the binary in cmd/monobench.
package bench
