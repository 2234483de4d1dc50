package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestVerdict(t *testing.T) {
	tests := []struct {
		name     string
		runErr   error
		failures int
		lacking  int
		allow    bool
		want     int
	}{
		{"all good", nil, 0, 0, false, 0},
		{"a run failed", nil, 2, 0, false, 1},
		{"pure-Go build", nil, 0, 3, false, 1},
		{"pure-Go build allowed", nil, 0, 3, true, 0},
		{"pure-Go build allowed, a run failed", nil, 1, 3, true, 1},
		{"suite error", errors.New("bench: nginx does not start"), 0, 0, true, 1},
		{"interrupted", fmt.Errorf("bench: %w", context.Canceled), 0, 0, false, 130},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := verdict(tt.runErr, tt.failures, tt.lacking, tt.allow)
			if code != tt.want || (code == 0) != (err == nil) {
				t.Errorf("verdict = %d, %v; want %d", code, err, tt.want)
			}
		})
	}
}
