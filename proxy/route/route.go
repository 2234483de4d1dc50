// Package route matches a request's host and path to a route, as Monolake's
// config describes routes: hosts exact ("example.com") or wildcard
// ("*.example.com"), paths in matchit syntax ("/", "/static/x", "/{id}",
// "/{*rest}"; the older "/:id" and "/*rest" too).
//
// The most specific route wins. Hosts: an exact host beats the longest
// matching wildcard, which beats routes with no host. Paths, segment by
// segment: a static segment beats a {param}, which beats a {*catchall}. A
// catch-all matches one or more characters, so "/{*p}" does not match "/"
// (add a "/" route for that, as Monolake's examples do).
//
// A Router is built once and then only read: Match is safe for concurrent
// use and does not allocate when the route has no parameters.
package route

import (
	"fmt"
	"strings"

	"github.com/monolake-go/monolake/proxy/config"
)

// Param is one captured path parameter.
type Param struct {
	Name, Value string
}

// Router maps (host, path) to values of type T.
type Router[T any] struct {
	exact    map[string]*node[T]
	wildcard []wild[T] // longest suffix first
	any      *node[T]
}

type wild[T any] struct {
	suffix string // ".example.com"
	root   *node[T]
}

type node[T any] struct {
	static   map[string]*node[T]
	param    *node[T]
	paramKey string
	catchAll *leaf[T]
	end      *leaf[T]
}

type leaf[T any] struct {
	value T
	names []string // parameter names in path order
	path  string
}

// New returns an empty Router.
func New[T any]() *Router[T] {
	return &Router[T]{exact: map[string]*node[T]{}}
}

// Add adds a route. hosts empty means any host. The path is normalised with
// config.NormalizePath. Adding the same host and path twice is an error.
func (r *Router[T]) Add(hosts []string, path string, v T) error {
	p, err := config.NormalizePath(path)
	if err != nil {
		return fmt.Errorf("route: %w", err)
	}
	if len(hosts) == 0 {
		if r.any == nil {
			r.any = &node[T]{}
		}
		return r.any.insert(p, v)
	}
	for _, h := range hosts {
		h = strings.ToLower(h)
		var root *node[T]
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			for _, w := range r.wildcard {
				if w.suffix == suffix {
					root = w.root
				}
			}
			if root == nil {
				root = &node[T]{}
				r.wildcard = append(r.wildcard, wild[T]{suffix: suffix, root: root})
				// keep longest suffix first
				for i := len(r.wildcard) - 1; i > 0 && len(r.wildcard[i].suffix) > len(r.wildcard[i-1].suffix); i-- {
					r.wildcard[i], r.wildcard[i-1] = r.wildcard[i-1], r.wildcard[i]
				}
			}
		} else {
			root = r.exact[h]
			if root == nil {
				root = &node[T]{}
				r.exact[h] = root
			}
		}
		if err := root.insert(p, v); err != nil {
			return fmt.Errorf("%w (host %s)", err, h)
		}
	}
	return nil
}

func (n *node[T]) insert(path string, v T) error {
	cur := n
	var names []string
	rest := path[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case strings.HasPrefix(seg, "{*"):
			names = append(names, seg[2:len(seg)-1])
			if cur.catchAll != nil {
				return fmt.Errorf("route: path %q duplicates %q", path, cur.catchAll.path)
			}
			cur.catchAll = &leaf[T]{value: v, names: names, path: path}
			return nil
		case strings.HasPrefix(seg, "{"):
			names = append(names, seg[1:len(seg)-1])
			if cur.param == nil {
				cur.param = &node[T]{}
			}
			cur = cur.param
		default:
			if cur.static == nil {
				cur.static = map[string]*node[T]{}
			}
			next := cur.static[seg]
			if next == nil {
				next = &node[T]{}
				cur.static[seg] = next
			}
			cur = next
		}
		if !more {
			break
		}
		rest = tail
	}
	if cur.end != nil {
		return fmt.Errorf("route: path %q duplicates %q", path, cur.end.path)
	}
	cur.end = &leaf[T]{value: v, names: names, path: path}
	return nil
}

// Match finds the most specific route for host (without port, any case)
// and path (must start with "/"; no query). params receives the captured
// parameters appended to it (pass a reused slice to avoid allocating).
func (r *Router[T]) Match(host, path string, params []Param) (v T, out []Param, ok bool) {
	host = stripPort(host)
	if root := r.exact[host]; root != nil {
		if v, out, ok = root.match(path, params); ok {
			return v, out, ok
		}
	} else if root := r.exact[strings.ToLower(host)]; root != nil {
		if v, out, ok = root.match(path, params); ok {
			return v, out, ok
		}
	}
	for _, w := range r.wildcard {
		if len(host) > len(w.suffix) && strings.EqualFold(host[len(host)-len(w.suffix):], w.suffix) {
			if v, out, ok = w.root.match(path, params); ok {
				return v, out, ok
			}
		}
	}
	if r.any != nil {
		return r.any.match(path, params)
	}
	return v, params, false
}

// stripPort returns the name of a Host value: without its port, the
// brackets of an IPv6 literal, and the trailing dot of a fully qualified
// name ("example.com." is example.com, as nginx has it).
func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(host, ".")
}

func (n *node[T]) match(path string, params []Param) (v T, out []Param, ok bool) {
	if len(path) == 0 || path[0] != '/' {
		return v, params, false
	}
	var vals [8]string
	l, values := n.walk(path[1:], vals[:0])
	if l == nil {
		return v, params, false
	}
	for i, name := range l.names {
		params = append(params, Param{Name: name, Value: values[i]})
	}
	return l.value, params, true
}

// walk matches rest (the path after a "/") below n, preferring static, then
// param, then catch-all, backtracking when a branch fails.
func (n *node[T]) walk(rest string, values []string) (*leaf[T], []string) {
	seg, tail, more := strings.Cut(rest, "/")
	if next := n.static[seg]; next != nil {
		if !more {
			if next.end != nil {
				return next.end, values
			}
		} else if l, vs := next.walk(tail, values); l != nil {
			return l, vs
		}
	}
	if n.param != nil && seg != "" {
		if !more {
			if n.param.end != nil {
				return n.param.end, append(values, seg)
			}
		} else if l, vs := n.param.walk(tail, append(values, seg)); l != nil {
			return l, vs
		}
	}
	if n.catchAll != nil && rest != "" {
		return n.catchAll, append(values, rest)
	}
	return nil, values
}
