//go:build !(uring && cgo)

// Command ceiling is a measuring probe on io_uring (see main.go); this build
// has no io_uring.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ceiling: needs the io_uring build (CGO_ENABLED=1 go build -tags uring)")
	os.Exit(1)
}
