package bench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Environment describes the machine and tools, for the results file.
func Environment(monolake string) map[string]string {
	env := map[string]string{
		"goos":   runtime.GOOS,
		"goarch": runtime.GOARCH,
		"ncpu":   strconv.Itoa(runtime.NumCPU()),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env["kernel"] = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				env["cpu"] = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	version := func(key string, argv ...string) {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		env[key] = strings.TrimSpace(line)
	}
	version("nginx", "nginx", "-v")
	version("wrk", "wrk", "-v")
	version("h2load", "h2load", "--version")
	version("openssl", "openssl", "version")
	version("git_commit", "git", "rev-parse", "--short", "HEAD")
	if monolake != "" {
		if out, err := exec.Command(monolake, "version").Output(); err == nil {
			env["monolake"] = strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", "; ")), " ")
		}
	}
	return env
}
