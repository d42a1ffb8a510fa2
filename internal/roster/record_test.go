package roster

import (
	"strings"
	"testing"
)

// The roster accepts exactly the names an account may hold (64 characters,
// as the store's import checks them), so every enrolled account exports
// and imports back.
func TestRecordNameLimitMatchesTheStore(t *testing.T) {
	rec := func(last string) *Record { return &Record{Category: "Active Army", First: "JOHN", Last: last} }
	if problem := cleanRecordText(rec(strings.Repeat("Ü", 64))); problem != "" {
		t.Errorf("64 characters (128 bytes): %s", problem)
	}
	if problem := cleanRecordText(rec(strings.Repeat("X", 65))); problem != "last is longer than 64 characters" {
		t.Errorf("65 characters: %q", problem)
	}
}
