package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// The raw* types mirror the TOML schema. Pointers mark keys that may be
// absent, so defaults apply only to what the file left out.

type rawFile struct {
	Runtime *rawRuntime           `toml:"runtime"`
	Servers map[string]*rawServer `toml:"servers"`
	Demo    *rawDemo              `toml:"demo"`
}

type rawRuntime struct {
	RuntimeType   *string `toml:"runtime_type"`
	WorkerThreads *int64  `toml:"worker_threads"`
	Workers       *int64  `toml:"workers"` // Monolake's older spelling
	CPUAffinity   *bool   `toml:"cpu_affinity"`
	Entries       *int64  `toml:"entries"`
	SQPollIdle    *int64  `toml:"sqpoll_idle"`     // milliseconds
	RecvBuffers   *int64  `toml:"recv_buffers"`    // ours
	RecvBufferKiB *int64  `toml:"recv_buffer_kib"` // ours
	DrainTimeout  *int64  `toml:"drain_timeout_sec"`
	MaxConns      *int64  `toml:"max_connections"` // ours: per worker
	GCMinHeap     *int64  `toml:"gc_min_heap_mib"` // ours
}

type rawEndpoint struct {
	Type  *string `toml:"type"`
	Value *string `toml:"value"`
}

type rawUpstream struct {
	Endpoint *rawEndpoint `toml:"endpoint"`
	Weight   *int64       `toml:"weight"`
}

type rawRoute struct {
	Path         *string         `toml:"path"`
	Host         []string        `toml:"host"`
	LoadBalancer *string         `toml:"load_balancer"`
	Upstreams    []rawUpstream   `toml:"upstreams"`
	RewritePath  *string         `toml:"rewrite_path"`
	UpstreamTLS  *rawUpstreamTLS `toml:"upstream_tls"`
	MaxFails     *int64          `toml:"max_fails"`
	FailTimeout  *int64          `toml:"fail_timeout_sec"`
}

type rawUpstreamTLS struct {
	CA                 *string `toml:"ca"`
	InsecureSkipVerify *bool   `toml:"insecure_skip_verify"`
	Cert               *string `toml:"cert"`
	Key                *string `toml:"key"`
	Stack              *string `toml:"stack"`
	ServerName         *string `toml:"server_name"`
}

type rawSNIRoute struct {
	ServerNames  []string      `toml:"server_names"`
	LoadBalancer *string       `toml:"load_balancer"`
	Upstreams    []rawUpstream `toml:"upstreams"`
	MaxFails     *int64        `toml:"max_fails"`
	FailTimeout  *int64        `toml:"fail_timeout_sec"`
}

type rawL4Route struct {
	LoadBalancer *string       `toml:"load_balancer"`
	Upstreams    []rawUpstream `toml:"upstreams"`
	MaxFails     *int64        `toml:"max_fails"`
	FailTimeout  *int64        `toml:"fail_timeout_sec"`
}

type rawTLS struct {
	Chain          *string `toml:"chain"`
	Key            *string `toml:"key"`
	Stack          *string `toml:"stack"`
	SessionTickets *bool   `toml:"session_tickets"`
}

type rawTimeout struct {
	ServerKeepalive  *int64 `toml:"server_keepalive_timeout_sec"`
	ServerReadHeader *int64 `toml:"server_read_header_timeout_sec"`
	ServerReadBody   *int64 `toml:"server_read_body_timeout_sec"`
	ServerMessage    *int64 `toml:"server_message_timeout_sec"`
	UpstreamConnect  *int64 `toml:"upstream_connect_timeout_sec"`
	UpstreamRead     *int64 `toml:"upstream_read_timeout_sec"`
	// Ours: how long a pooled upstream connection may stay idle.
	UpstreamKeepalive *int64 `toml:"upstream_keepalive_timeout_sec"`
	// Ours: how long an idle keep-alive connection waits before it is
	// parked (ms; -1: never).
	ServerPark *int64 `toml:"server_keepalive_park_ms"`
}

type rawOptHandlers struct {
	ContentHandler *bool `toml:"content_handler"`
}

type rawServer struct {
	Name                *string         `toml:"name"`
	ProxyType           *string         `toml:"proxy_type"`
	Listener            *rawEndpoint    `toml:"listener"`
	TLS                 *rawTLS         `toml:"tls"`
	Routes              []rawRoute      `toml:"routes"`
	Route               *rawL4Route     `toml:"route"`
	SNIRoutes           []rawSNIRoute   `toml:"sni_routes"`
	Timeout             *rawTimeout     `toml:"timeout"`
	HTTPTimeout         *rawTimeout     `toml:"http_timeout"`     // older spelling of timeout
	HTTPTimeoutSec      *int64          `toml:"http_timeout_sec"` // oldest: keep-alive timeout
	HTTPTimeoutNano     *int64          `toml:"http_timeout_nano"`
	UpstreamHTTPVersion *string         `toml:"upstream_http_version"`
	HTTPOptHandlers     *rawOptHandlers `toml:"http_opt_handlers"`
	AccessLog           *string         `toml:"access_log"`
	ClientMaxBodySize   *int64          `toml:"client_max_body_size"`   // ours: bytes
	UpstreamKeepalive   *int64          `toml:"upstream_keepalive"`     // idle connections per upstream and worker
	UnderscoresInHeader *bool           `toml:"underscores_in_headers"` // nginx's
	PreserveHost        *bool           `toml:"preserve_host"`
	Via                 *bool           `toml:"via"`
	Forwarded           *bool           `toml:"forwarded"`
}

type rawDemo struct {
	Listener *rawEndpoint `toml:"listener"`
}

// Error is a config error at a place in a file.
type Error struct {
	File   string
	Line   int // 0 when the error has no single place
	Key    string
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every error found in one file.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func decode(name string, data []byte) (*rawFile, error) {
	var f rawFile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&f)
	if err == nil {
		if es := checkKeyCase(name, data); len(es) > 0 {
			return nil, es
		}
		return &f, nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var es Errors
		for i := range strict.Errors {
			de := &strict.Errors[i]
			row, _ := de.Position()
			es = append(es, &Error{File: name, Line: row, Key: strings.Join(de.Key(), "."), Reason: "unknown key"})
		}
		return nil, es
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		reason := tomlFieldNames(strings.TrimPrefix(de.Error(), "toml: "))
		return nil, Errors{{File: name, Line: row, Key: strings.Join(de.Key(), "."), Reason: reason}}
	}
	return nil, Errors{{File: name, Reason: strings.TrimPrefix(err.Error(), "toml: ")}}
}

// goField matches the Go struct field a go-toml type error names, as in
// "cannot decode TOML string into struct field config.rawTLS.SessionTickets
// of type bool".
var goField = regexp.MustCompile(`struct field config\.(\w+)\.(\w+) of type ([\w.*\[\]]+)`)

// tomlFieldNames rewrites the Go field a decode error names into the key
// the user wrote: "... into session_tickets (want true or false)".
func tomlFieldNames(reason string) string {
	m := goField.FindStringSubmatchIndex(reason)
	if m == nil {
		return reason
	}
	typ, field, want := reason[m[2]:m[3]], reason[m[4]:m[5]], reason[m[6]:m[7]]
	key := rawKeys()[typ+"."+field]
	if key == "" {
		return reason
	}
	want = strings.TrimPrefix(want, "*")
	switch {
	case want == "bool":
		want = "true or false"
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		want = "an integer"
	case strings.HasPrefix(want, "float"):
		want = "a number"
	case want == "string":
		want = "a string"
	case strings.HasPrefix(want, "[]"):
		want = "an array"
	case strings.HasPrefix(want, "config.raw"):
		want = "a table, as { … }"
	}
	return reason[:m[0]] + key + " (want " + want + ")" + reason[m[1]:]
}

// rawKeys maps "rawType.Field" to the field's TOML key for every raw type
// reachable from rawFile.
func rawKeys() map[string]string {
	keys := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		if _, seen := keys[t.Name()]; seen {
			return
		}
		keys[t.Name()] = ""
		for i := range t.NumField() {
			f := t.Field(i)
			if tag := tagName(f); tag != "" {
				keys[t.Name()+"."+f.Name] = tag
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[rawFile]())
	return keys
}

// checkKeyCase refuses keys that match a known key only ignoring case.
// TOML keys are case-sensitive, but go-toml fills a field from any case of
// its key: "Path" after "path" in one table silently replaced it, and
// "[RUNTIME]" set what "[runtime]" had. data decoded already.
func checkKeyCase(name string, data []byte) Errors {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return nil // decode found it fine: nothing to say here
	}
	var lines keyLines
	var es Errors
	var walk func(v any, t reflect.Type, path string)
	walk = func(v any, t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch x := v.(type) {
		case map[string]any:
			switch t.Kind() {
			case reflect.Map: // servers: names are the user's
				for k, sub := range x {
					walk(sub, t.Elem(), join(path, k))
				}
			case reflect.Struct:
				for k, sub := range x {
					f, ok := fieldByTag(t, k)
					if !ok {
						if lines == nil {
							lines = indexLines(data)
						}
						key := join(path, k)
						reason := "unknown key"
						if f, ok := fieldByTagFold(t, k); ok {
							reason = fmt.Sprintf("unknown key (keys are case-sensitive: %q)", tagName(f))
						}
						es = append(es, &Error{File: name, Line: lines.line(key), Key: key, Reason: reason})
						continue
					}
					walk(sub, f.Type, join(path, k))
				}
			}
		case []any:
			if t.Kind() == reflect.Slice {
				for i, sub := range x {
					walk(sub, t.Elem(), join(path, strconv.Itoa(i)))
				}
			}
		}
	}
	walk(doc, reflect.TypeFor[rawFile](), "")
	slices.SortFunc(es, func(a, b *Error) int { return cmp.Or(a.Line-b.Line, strings.Compare(a.Key, b.Key)) })
	return es
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func tagName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return tag
}

// fieldByTag finds the field of struct type t whose toml key is k.
func fieldByTag(t reflect.Type, k string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if tagName(f) == k {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldByTagFold is fieldByTag ignoring case.
func fieldByTagFold(t reflect.Type, k string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if strings.EqualFold(tagName(f), k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
