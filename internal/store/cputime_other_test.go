//go:build !unix

package store

import (
	"testing"
	"time"
)

// cpuTime is not measured here; TestImportMillion reports zero.
func cpuTime(*testing.T) time.Duration { return 0 }
