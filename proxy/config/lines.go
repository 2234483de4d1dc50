package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines maps a dotted key path to the line that defines it, so that
// errors found after decoding (impossible values) can still name a line.
// Array elements appear as their index: "servers.a.routes.0.path".
type keyLines map[string]int

func indexLines(data []byte) keyLines {
	lines := keyLines{}
	var p unstable.Parser
	p.Reset(data)
	var prefix []string
	counts := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			prefix = resolve(keyParts(e.Key()), counts)
			lines.set(prefix, lineOf(&p, e))
		case unstable.ArrayTable:
			base := resolve(keyParts(e.Key()), counts)
			k := strings.Join(base, ".")
			idx := counts[k]
			counts[k]++
			prefix = append(base, strconv.Itoa(idx))
			lines.set(prefix, lineOf(&p, e))
		case unstable.KeyValue:
			lines.keyValue(&p, prefix, e)
		}
	}
	return lines
}

// resolve turns a table header's key into the path of what it defines: a
// parent that is an array of tables stands for its latest element, as in
// TOML ("[[servers.a.routes.upstreams]]" after the second
// "[[servers.a.routes]]" is servers.a.routes.1.upstreams). counts holds
// how many elements each array of tables has so far, by resolved path.
func resolve(parts []string, counts map[string]int) []string {
	out := make([]string, 0, len(parts)+2)
	for i, part := range parts {
		out = append(out, part)
		if i == len(parts)-1 {
			break
		}
		if n, ok := counts[strings.Join(out, ".")]; ok && n > 0 {
			out = append(out, strconv.Itoa(n-1))
		}
	}
	return out
}

// set records line for path and for each of its prefixes not seen yet: a
// table that only appears through a longer header ("[[servers.web.routes]]"
// with no "[servers.web]", a typo's usual shape) is named by the first line
// that mentions it, so an error about it (a missing key) has a line.
func (l keyLines) set(path []string, line int) {
	if line <= 0 {
		return
	}
	for i := 1; i <= len(path); i++ {
		k := strings.Join(path[:i], ".")
		if _, ok := l[k]; !ok {
			l[k] = line
		}
	}
}

func (l keyLines) keyValue(p *unstable.Parser, prefix []string, kv *unstable.Node) {
	path := append(append([]string(nil), prefix...), keyParts(kv.Key())...)
	l.set(path, lineOf(p, kv))
	l.value(p, path, kv.Value())
}

func (l keyLines) value(p *unstable.Parser, path []string, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				l.keyValue(p, path, n)
			}
		}
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			el := append(append([]string(nil), path...), strconv.Itoa(i))
			l.set(el, lineOf(p, it.Node()))
			l.value(p, el, it.Node())
		}
	}
}

func keyParts(it unstable.Iterator) []string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// lineOf finds a line for n: its own range, else its first key's, else its
// first child's.
func lineOf(p *unstable.Parser, n *unstable.Node) int {
	if n.Raw.Length > 0 {
		return p.Shape(n.Raw).Start.Line
	}
	switch n.Kind {
	case unstable.KeyValue, unstable.Table, unstable.ArrayTable:
		it := n.Key()
		if it.Next() {
			if k := it.Node(); k.Raw.Length > 0 {
				return p.Shape(k.Raw).Start.Line
			}
		}
	}
	if c := n.Child(); c != nil && c != n {
		return lineOf(p, c)
	}
	return 0
}

// line returns the line of the longest defined prefix of path.
func (l keyLines) line(path string) int {
	for {
		if n, ok := l[path]; ok {
			return n
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}
