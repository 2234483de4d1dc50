package route

import (
	"fmt"
	"testing"
)

func TestMatch(t *testing.T) {
	r := New[string]()
	add := func(hosts []string, path, v string) {
		t.Helper()
		if err := r.Add(hosts, path, v); err != nil {
			t.Fatal(err)
		}
	}
	add(nil, "/", "root")
	add(nil, "/*p", "catchall")
	add(nil, "/users/:id", "user")
	add(nil, "/users/me", "me")
	add(nil, "/users/{id}/posts/{post}", "post")
	add(nil, "/static/{*file}", "static")
	add([]string{"api.example.com"}, "/{*p}", "api-exact")
	add([]string{"*.example.com"}, "/{*p}", "example-wild")
	add([]string{"*.eu.example.com"}, "/{*p}", "eu-wild")
	add([]string{"*.example.com"}, "/only-wild", "only-wild")

	tests := []struct {
		host, path, want string
		params           string
	}{
		{"x.org", "/", "root", "[]"},
		{"x.org", "/anything/else", "catchall", "[{p anything/else}]"},
		{"x.org", "/users/42", "user", "[{id 42}]"},
		{"x.org", "/users/me", "me", "[]"},
		{"x.org", "/users/42/posts/7", "post", "[{id 42} {post 7}]"},
		{"x.org", "/users/42/posts", "catchall", "[{p users/42/posts}]"},
		{"x.org", "/static/css/a.css", "static", "[{file css/a.css}]"},
		{"x.org", "/static/", "catchall", "[{p static/}]"},
		{"api.example.com", "/v1", "api-exact", "[{p v1}]"},
		{"API.Example.com:8443", "/v1", "api-exact", "[{p v1}]"},
		{"api.example.com.", "/v1", "api-exact", "[{p v1}]"}, // fully qualified
		{"www.example.com.:80", "/v1", "example-wild", "[{p v1}]"},
		{"www.example.com", "/v1", "example-wild", "[{p v1}]"},
		{"a.eu.example.com", "/v1", "eu-wild", "[{p v1}]"},
		{"example.com", "/v1", "catchall", "[{p v1}]"},
		{"www.example.com", "/", "root", "[]"}, // no "/" under the wildcard: falls to any-host
		{"api.example.com", "/only-wild", "api-exact", "[{p only-wild}]"},
		{"[::1]:80", "/users/me", "me", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			got, params, ok := r.Match(tt.host, tt.path, nil)
			if !ok || got != tt.want || fmt.Sprint(params) != tt.params {
				t.Fatalf("Match(%q, %q) = %q %v %v; want %q %s", tt.host, tt.path, got, params, ok, tt.want, tt.params)
			}
		})
	}
}

func TestNoMatch(t *testing.T) {
	r := New[int]()
	r.Add([]string{"a.com"}, "/x", 1)
	r.Add(nil, "/y/{id}", 2)
	for _, c := range [][2]string{{"a.com", "/"}, {"b.com", "/x"}, {"a.com", "/y/"}, {"a.com", "y"}, {"a.com", ""}} {
		if v, _, ok := r.Match(c[0], c[1], nil); ok {
			t.Errorf("Match(%q, %q) = %d, want no match", c[0], c[1], v)
		}
	}
}

func TestDuplicate(t *testing.T) {
	r := New[int]()
	if err := r.Add(nil, "/a/{id}", 1); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(nil, "/a/:other", 2); err == nil {
		t.Fatal("duplicate path accepted")
	}
	if err := r.Add([]string{"h"}, "/a/{id}", 2); err != nil {
		t.Fatalf("same path on another host rejected: %v", err)
	}
	if err := r.Add(nil, "/{*a}/b", 3); err == nil {
		t.Fatal("bad path accepted")
	}
}

func BenchmarkMatch(b *testing.B) {
	r := New[int]()
	r.Add(nil, "/", 0)
	r.Add(nil, "/api/v1/users/{id}", 1)
	r.Add(nil, "/{*p}", 2)
	params := make([]Param, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		r.Match("example.com", "/api/v1/users/42", params[:0])
	}
}
