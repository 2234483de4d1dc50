# Monolake for Go. `make help` lists the targets.
GO      ?= go
BIN     := bin/monolake
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Tags of the cgo build; the uring and openssl sides land with their issues.
CGO_TAGS := uring openssl

.PHONY: all build uring test test-short deps run check-default bench bench-smoke clean help

all: build

help:
	@echo "make            pure-Go binary ($(BIN), CGO_ENABLED=0, epoll runtime, crypto/tls)"
	@echo "make uring      cgo binary (liburing + OpenSSL where built in)"
	@echo "make run        install missing packages, build the most capable binary, run the default config"
	@echo "make test       install missing packages, then run every test"
	@echo "make deps       install the Debian packages the project needs (scripts/install-deps.sh)"
	@echo "make bench      the benchmark suite against nginx; make bench-smoke: a 10-second version"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/monolake

uring:
	CGO_ENABLED=1 $(GO) build -trimpath -tags '$(CGO_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/monolake

deps:
	bash scripts/install-deps.sh

# The pure-Go build must compile and pass its tests too; the main run has cgo.
test: deps
	CGO_ENABLED=0 $(GO) vet ./...
	CGO_ENABLED=1 $(GO) vet -tags '$(CGO_TAGS)' ./...
	# MONOLAKE_TEST_STRICT: a test that needs io_uring, OpenSSL or a real
	# client fails here instead of skipping when it is missing.
	CGO_ENABLED=1 MONOLAKE_TEST_STRICT=1 $(GO) test -tags '$(CGO_TAGS)' -count=1 -timeout 20m ./...
	# The L4 and HTTP proxy tests again, on the io_uring driver (they fail,
	# not skip, where io_uring cannot be set up), with the race detector,
	# and with them the packages they stand on.
	CGO_ENABLED=1 MONOLAKE_TEST_STRICT=1 MONOLAKE_TEST_RUNTIME=io_uring $(GO) test -race -tags '$(CGO_TAGS)' -count=1 -timeout 20m ./proxy/l4/ ./proxy/httpproxy/ ./proxy/netio/... ./proxy/server/ ./proxy/tlsproxy/ ./tlsbackend/...
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

run:
	@bash scripts/install-deps.sh || echo "make run: could not install system packages; building the pure-Go binary"
	@if pkg-config --exists liburing 2>/dev/null && pkg-config --exists libssl 2>/dev/null && \
		$(MAKE) --no-print-directory uring; then :; else \
		echo "make run: no cgo build here (liburing 2.3+ and OpenSSL headers); building the pure-Go binary"; \
		$(MAKE) --no-print-directory build; fi
	./$(BIN) run

# The benchmark suite against nginx (bench/README.md). Flags for monobench go in
# BENCH_ARGS, e.g. make bench BENCH_ARGS='-protos l4 -workers 1 -reps 5'.
bench:
	GO='$(GO)' bash scripts/bench.sh $(BENCH_ARGS)

bench-smoke:
	GO='$(GO)' bash scripts/bench.sh -smoke $(BENCH_ARGS)

clean:
	rm -rf bin
