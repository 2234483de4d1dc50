package bench

import (
	"slices"
	"strings"
)

// Features is what a monolake binary says it contains.
type Features struct {
	Runtimes    []string // RuntimeURing, RuntimeEpoll
	TLSBackends []string // gotls, openssl
}

// ParseFeatures reads the output of `monolake version`:
//
//	monolake 44317d3 (go1.26.8, linux/amd64)
//	runtimes: uring (io_uring), epoll (Go netpoller)
//	tls backends: gotls (crypto/tls), openssl (OpenSSL 3.0.19)
//
// ok is false when the output lists neither, so the suite cannot tell and
// tries every variant.
func ParseFeatures(out string) (f Features, ok bool) {
	for line := range strings.SplitSeq(out, "\n") {
		key, val, found := strings.Cut(strings.TrimSpace(line), ":")
		if !found {
			continue
		}
		var dst *[]string
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "runtimes":
			dst = &f.Runtimes
		case "tls backends":
			dst = &f.TLSBackends
		default:
			continue
		}
		ok = true
		for item := range strings.SplitSeq(val, ",") {
			fields := strings.Fields(item)
			if len(fields) == 0 {
				continue
			}
			name := strings.ToLower(fields[0])
			switch name {
			case "io_uring", "iouring":
				name = RuntimeURing
			case "legacy":
				name = RuntimeEpoll
			}
			if !slices.Contains(*dst, name) {
				*dst = append(*dst, name)
			}
		}
	}
	return f, ok
}
