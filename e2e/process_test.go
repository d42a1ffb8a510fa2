package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"
)

// startCaddy runs `caddy run` with the given Caddyfile in dir and waits
// until ready reports true, polling for at most startWait. It returns false,
// with Caddy's output, if Caddy exited first or never became ready; the
// caller may then retry on fresh ports. Once ready, the process is stopped
// when the test ends, and its output logged under label if the test failed.
// startWait bounds the wait for a started Caddy to be ready. A gateway
// starts in well under a second, but a busy machine (and a PostgreSQL
// server starting its migrations there) can take many times that; a
// Caddy that exits is noticed at once whatever the bound.
const startWait = 2 * time.Minute

func startCaddy(t *testing.T, dir, caddyfile, label string, extraEnv []string, ready func() bool) (ok bool, output string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(caddyEnv(dir), extraEnv...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cancel()
		<-exited
	}
	deadline := time.Now().Add(startWait)
	for !ready() {
		select {
		case <-exited:
			return false, log.String()
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return false, log.String()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", label, lastLines(log.String(), 40))
		}
	})
	return true, ""
}
