// Command monolake is the Monolake for Go proxy server. It only turns flags
// into a config and hands it to package worker; the logic lives in proxy/.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/worker"
	"github.com/monolake-go/monolake/tlsbackend"
	_ "github.com/monolake-go/monolake/tlsbackend/all"
)

// version is set by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	// A worker is this binary re-executed by the master; it skips the CLI.
	if len(os.Args) > 1 && os.Args[1] == workerCommand {
		os.Exit(worker.ChildMain(os.Args[2:]))
	}
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "monolake:", err)
		os.Exit(1)
	}
}

const workerCommand = "__worker"

func newApp() *cli.App {
	configFlag := &cli.StringFlag{
		Name: "config", Aliases: []string{"c"}, Usage: "TOML config `FILE` (Monolake's schema); without it the embedded default config is used",
	}
	return &cli.App{
		Name:  "monolake",
		Usage: "a layer 4/7 proxy server: one pinned worker process per core",
		Description: `Run the proxy on the embedded default config (HTTP on 127.0.0.1:8080 in
front of a demo upstream the binary starts itself on 127.0.0.1:8081):

   monolake run
   curl http://127.0.0.1:8080/

Run your own config, check it first:

   monolake check --config monolake.toml
   monolake run --config monolake.toml --workers 2

Flags override the config file. SIGTERM or SIGINT stops accepting, lets
connections in flight finish (runtime.drain_timeout_sec, default 30) and exits 0.`,
		Version:         version,
		HideHelpCommand: true,
		Commands: []*cli.Command{
			{
				Name:  "run",
				Usage: "run the proxy",
				Flags: []cli.Flag{
					configFlag,
					&cli.IntFlag{Name: "workers", Aliases: []string{"w"}, Value: -1, DefaultText: "config's worker_threads, else one per CPU",
						Usage: "number of worker processes; 0 runs everything in one process"},
					&cli.StringFlag{Name: "runtime", Usage: "I/O runtime: `uring` (io_uring) or epoll (Go's netpoller)"},
					&cli.StringFlag{Name: "tls-backend", Usage: "TLS backend for every TLS server and HTTPS upstream: `gotls` (crypto/tls) or openssl"},
					&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
				},
				Action: runCmd,
			},
			{
				Name:      "check",
				Usage:     "validate a config and print what it would serve",
				ArgsUsage: " ",
				Flags:     []cli.Flag{configFlag},
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					cfg, err := loadConfig(c)
					if err != nil {
						return err
					}
					fmt.Print(cfg.Summary())
					// Build what the workers would build, without
					// listening: what only shows then fails here too.
					warn := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
					if err := worker.Check(cfg, warn); err != nil {
						return err
					}
					fmt.Println("config OK")
					return nil
				},
			},
			{
				Name:  "version",
				Usage: "print the version and what this build contains",
				Action: func(c *cli.Context) error {
					fmt.Printf("monolake %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
					fmt.Printf("runtimes: %s\n", strings.Join(runtimes(), ", "))
					fmt.Printf("tls backends: %s\n", strings.Join(tlsBackends(), ", "))
					return nil
				},
			},
		},
	}
}

// runtimes lists the I/O runtimes compiled in, the default first.
func runtimes() []string {
	if netio.UringBuilt {
		return []string{"uring (io_uring, liburing)", "epoll (Go netpoller)"}
	}
	return []string{"epoll (Go netpoller)"}
}

// tlsBackends lists the TLS backends compiled in, with their versions.
func tlsBackends() []string { return tlsbackend.Names() }

// loadConfig loads --config, or the embedded default without it. An empty
// --config (an unset variable in a unit file, say) is refused, not taken
// for the default.
func loadConfig(c *cli.Context) (*config.Config, error) {
	if c.IsSet("config") && c.String("config") == "" {
		return nil, errors.New("--config: empty path (leave the flag out for the embedded default config)")
	}
	return config.Load(c.String("config"))
}

// noArgs refuses arguments after the command: "check FILE" would
// otherwise check the embedded default and say OK, and flags after a
// stray argument are not read at all.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return fmt.Errorf("unexpected argument %q: give the config as --config FILE, flags before it too", c.Args().First())
	}
	return nil
}

func runCmd(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if err := applyFlags(c, cfg); err != nil {
		return err
	}
	// Workers run this very binary, also when the file on disk was
	// replaced since (an upgrade): /proc/self/exe names the running one.
	// A new binary under an old master would not speak its protocol.
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("finding own executable for workers: %w", err)
		}
	}
	return worker.Run(context.Background(), worker.Options{
		Config: cfg, Log: log, Exe: exe, ChildArgs: []string{workerCommand, "--log-level", level.String()},
	})
}

// applyFlags lets flags override the config.
func applyFlags(c *cli.Context, cfg *config.Config) error {
	if n := c.Int("workers"); n >= 0 && n <= 1024 {
		cfg.Runtime.Workers = n
	} else if n != -1 {
		return fmt.Errorf("--workers %d: want 0 (one process) to 1024", n)
	}
	switch rt := c.String("runtime"); rt {
	case "":
	case "uring", "io_uring":
		cfg.Runtime.Type = config.RuntimeIOUring
	case "epoll", "legacy":
		cfg.Runtime.Type = config.RuntimeLegacy
	default:
		return fmt.Errorf("--runtime %q: want uring or epoll", rt)
	}
	switch b := c.String("tls-backend"); b {
	case "":
	case config.TLSGo, "rustls":
		cfg.SetTLSStack(config.TLSGo)
	case config.TLSOpenSSL, "native_tls":
		if _, err := tlsbackend.Get(config.TLSOpenSSL); err != nil {
			return fmt.Errorf("--tls-backend openssl: %w (build with `make uring` for OpenSSL)", err)
		}
		cfg.SetTLSStack(config.TLSOpenSSL)
	default:
		return fmt.Errorf("--tls-backend %q: want gotls or openssl", b)
	}
	return nil
}
