package roster

import (
	"context"
	"errors"
	"os"
	"time"

	"go.uber.org/zap"
)

// defaultPollInterval is how often Start checks the file when given no
// interval: new hires can enroll within a minute of an export.
const defaultPollInterval = 30 * time.Second

// Start checks the file every interval (default 30s) and reloads it when
// its modification time, size or identity changed, until ctx is done. A
// file that fails to load is logged with the reason (the line and the
// problem, never a value) and the roster loaded before stays in use; the
// same bad file is not read or reported again until it changes. Write new
// rosters to another file and rename them into place: a file caught being
// written is not used, and is read again at the next poll.
//
// Start returns at once; calls after the first do nothing.
func (c *CSV) Start(ctx context.Context, interval time.Duration) {
	if !c.started.CompareAndSwap(false, true) {
		return
	}
	if interval <= 0 {
		interval = defaultPollInterval
	}
	go c.watch(ctx, interval)
}

func (c *CSV) watch(ctx context.Context, interval time.Duration) {
	defer close(c.stopped)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			c.poll()
		}
	}
}

// poll reloads the file if it changed since it was last loaded or last
// failed to load.
func (c *CSV) poll() {
	info, err := os.Stat(c.path)
	if err != nil {
		if !c.statFailed {
			c.logger.Warn("cannot check the roster file; the roster loaded before stays in use",
				zap.String("file", c.path), zap.Error(err))
		}
		c.statFailed = true
		return
	}
	c.statFailed = false
	if !fileChanged(c.loadedInfo, info) || !fileChanged(c.failedInfo, info) {
		return
	}
	switch err := c.load(); {
	case errors.Is(err, errChangedWhileReading):
		c.logger.Info("roster file changed while it was read; reading it again at the next poll",
			zap.String("file", c.path))
	case err != nil:
		c.failedInfo = info
		c.logger.Error("roster file not loaded; the roster loaded before stays in use",
			zap.String("file", c.path), zap.Int("records_in_use", c.Len()), zap.Error(err))
	default:
		c.failedInfo = nil
	}
}
