package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestLogConfigDurations starts `nexus serve` with JSON logs and checks that the logged configuration shows
// durations in words ("15m0s"), not as nanoseconds.
func TestLogConfigDurations(t *testing.T) {
	vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_FORMAT": "json"}
	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev"}, envFunc(vars), strings.NewReader(""), io.Discard, stderr)
	}()
	exited := false
	defer func() {
		cancel()
		if exited {
			return
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(line, `"msg":"configuration"`) {
				if !strings.Contains(line, `"access_token_ttl":"15m0s"`) {
					t.Errorf("configuration logged without access_token_ttl 15m0s:\n%s", line)
				}
				return
			}
		}
		select {
		case err := <-done:
			exited = true
			t.Fatalf("server exited: %v\n%s", err, stderr)
		default:
		}
	}
	t.Fatalf("no configuration logged:\n%s", stderr)
}
