package mail

import (
	"os"
	"time"
)

// SetClock makes s read the time from now (tests).
func SetClock(s *Sender, now func() time.Time) { s.now = now }

// WriteFile writes a test file.
func WriteFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
