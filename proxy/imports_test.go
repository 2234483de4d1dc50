package proxy_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/monolake-go/monolake"

// TestImportDirections checks the layering of DESIGN.md with `go list -deps`:
// imports point downwards (cmd → proxy/... → tlsbackend, uring); uring and
// tlsbackend import nothing of proxy; the proxy core imports only the
// standard library; only uring and the OpenSSL backend use cgo.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{.ImportPath}}|{{.Standard}}|{{join .Imports " "}}|{{len .CgoFiles}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		std     bool
		imports []string
		cgo     bool
	}
	pkgs := map[string]pkg{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 4 {
			continue
		}
		pkgs[f[0]] = pkg{std: f[1] == "true", imports: strings.Fields(f[2]), cgo: f[3] != "0"}
	}
	if len(pkgs) == 0 {
		t.Fatal("go list listed no packages")
	}
	own := func(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }
	under := func(p, dir string) bool { return p == module+"/"+dir || strings.HasPrefix(p, module+"/"+dir+"/") }

	checked := 0
	for path, p := range pkgs {
		if !own(path) {
			continue
		}
		checked++
		for _, imp := range p.imports {
			if !own(imp) {
				if path == module+"/proxy" && !pkgs[imp].std && imp != "C" {
					t.Errorf("proxy core imports non-standard %s", imp)
				}
				continue
			}
			switch {
			case under(imp, "cmd"):
				t.Errorf("%s imports the command %s", path, imp)
			case under(imp, "bench") && !under(path, "bench"):
				t.Errorf("%s imports the benchmark suite %s", path, imp)
			case (under(path, "uring") || under(path, "tlsbackend")) && under(imp, "proxy"):
				t.Errorf("%s imports %s: uring and tlsbackend must not import proxy", path, imp)
			case under(path, "uring") && under(imp, "tlsbackend"), under(path, "tlsbackend") && under(imp, "uring"):
				t.Errorf("%s imports %s: uring and tlsbackend are independent", path, imp)
			case path == module+"/proxy" && imp != module+"/proxy":
				t.Errorf("proxy core imports %s; it must import only the standard library", imp)
			}
		}
		if p.cgo && !under(path, "uring") && !under(path, "tlsbackend/openssl") && !under(path, "csrc") {
			t.Errorf("%s uses cgo; only uring and tlsbackend/openssl may", path)
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d of the module's packages", checked)
	}
}
