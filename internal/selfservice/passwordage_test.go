package selfservice

import (
	"testing"
	"time"
)

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour:      "24 hours",
		60 * 24 * time.Hour: "60 days",
		48 * time.Hour:      "2 days",
		90 * time.Minute:    "90 minutes",
		time.Hour:           "60 minutes",
		90 * time.Second:    "1m30s",
	} {
		if got := formatAge(d); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", d, got, want)
		}
	}
}
