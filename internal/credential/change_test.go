package credential

import (
	"strings"
	"testing"
)

func TestCharactersChanged(t *testing.T) {
	for _, tc := range []struct {
		current, next string
		want          int
	}{
		{"", "", 0},
		{"Summer.Breeze~2024", "Summer.Breeze~2024", 0},
		{"Summer.Breeze~2024", "Summer.Breeze~2025", 1},
		{"Summer.Breeze~2024", "summer.breeze~2024", 2}, // case counts
		{"Summer.Breeze~2024", "Summer.Breeze~2024!!", 2},
		{"Summer.Breeze~2024", "Breeze~2024", 7},
		{"Summer.Breeze~2024", "Winter.Storm!!1999", 15},
		{"abc", "", 3},
		{"", "Correct.Horse~Bat9", 18},
		{"Ünïcödé.Pass~word1", "Unicode.Pass~word1", 4}, // characters, not bytes
	} {
		if got := CharactersChanged(tc.current, tc.next); got != tc.want {
			t.Errorf("CharactersChanged(%q, %q) = %d, want %d", tc.current, tc.next, got, tc.want)
		}
		if got := CharactersChanged(tc.next, tc.current); got != tc.want {
			t.Errorf("CharactersChanged(%q, %q) = %d, want %d (symmetric)", tc.next, tc.current, got, tc.want)
		}
	}
}

func TestCharactersChangedBoundsHostileInput(t *testing.T) {
	// A megabyte each side is compared on its first 256 characters: 256²
	// steps, not 10¹².
	long := strings.Repeat("a", 1<<20)
	if got := CharactersChanged(long, strings.Repeat("b", 1<<20)); got != maxCompared {
		t.Fatalf("CharactersChanged of two long strings = %d, want %d", got, maxCompared)
	}
}

func TestChangeRuleNamesTheCount(t *testing.T) {
	if !strings.Contains(ChangeRule, "8 characters") {
		t.Fatalf("ChangeRule = %q", ChangeRule)
	}
}
