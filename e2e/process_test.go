package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// caddyProc is a running `caddy run` process of a test.
type caddyProc struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	// exited is closed once the process has exited and its output is in.
	exited chan struct{}
	log    *syncBuffer
}

// Pid is the process's ID (for signals and resource limits).
func (p *caddyProc) Pid() int { return p.cmd.Process.Pid }

// Kill ends the process with SIGKILL, as a power cut or the OOM killer
// would (no shutdown of any kind), and waits until it has exited.
func (p *caddyProc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Exited reports whether the process has exited.
func (p *caddyProc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Output is what the process has written so far, stdout and stderr.
func (p *caddyProc) Output() string { return p.log.String() }

func (p *caddyProc) stop() {
	p.cancel()
	<-p.exited
}

// syncBuffer is a bytes.Buffer that the process's output copier writes
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

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
	p, output := startCaddyProc(t, dir, caddyfile, label, extraEnv, ready)
	return p != nil, output
}

// startCaddyProc is startCaddy returning the process (nil when it did not
// become ready), for tests that signal it or limit its resources.
func startCaddyProc(t *testing.T, dir, caddyfile, label string, extraEnv []string, ready func() bool) (*caddyProc, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(caddyEnv(dir), extraEnv...)
	p := &caddyProc{cmd: cmd, cancel: cancel, exited: make(chan struct{}), log: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(startWait)
	for !ready() {
		if p.Exited() {
			cancel()
			return nil, p.Output()
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, p.Output()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", label, lastLines(p.Output(), 40))
		}
	})
	return p, ""
}
