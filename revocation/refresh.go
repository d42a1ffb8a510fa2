package revocation

import (
	"context"
	"time"
)

// idleWait is how long the refresh goroutine sleeps when no fetch is
// scheduled; new work wakes it earlier through crlStore.wake.
const idleWait = time.Hour

// refreshLoop keeps CRLs fresh until ctx is done. It is the only goroutine
// that loads CRLs, so loads never overlap and at most one new index is
// being built at any time.
func (c *Checker) refreshLoop(ctx context.Context) {
	defer close(c.stopped)
	poll := time.NewTicker(c.cfg.RefreshInterval)
	defer poll.Stop()
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	for {
		c.fetchDue(ctx)
		wait := idleWait
		if next, ok := c.nextFetchDue(); ok {
			wait = max(next.Sub(c.cfg.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			c.pollFiles()
		case <-c.crls.wake:
			// A new distribution point, or a CA that file CRLs wait for.
			c.pollFiles()
		case <-timer.C:
		}
	}
}
