package worker

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
)

// ProfileEnv names a file prefix; when set, every serving process writes a
// CPU profile to PREFIX.PID from start to stop, for `go tool pprof`.
const ProfileEnv = "MONOLAKE_CPUPROFILE"

// startProfile starts the CPU profile ProfileEnv asks for and returns the
// function that stops it.
func startProfile(log *slog.Logger) func() {
	prefix := os.Getenv(ProfileEnv)
	if prefix == "" {
		return func() {}
	}
	name := fmt.Sprintf("%s.%d", prefix, os.Getpid())
	f, err := os.Create(name)
	if err != nil {
		log.Error("cpu profile", "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Error("cpu profile", "err", err)
		f.Close()
		return func() {}
	}
	log.Info("writing cpu profile", "file", name)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
