package selfservice

import (
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/store"
)

// A long name gives a base short enough for the store to accept it with a
// four-digit suffix: the last name is cut first, then the first name, and
// no cut leaves a '-' or '.' at the end of a part.
func TestUsernameBaseFitsTheStore(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	for _, tc := range []struct{ given, middle, family, want string }{
		{"JOHN", "B", long("X", 80), "john.b." + long("x", maxUsernameBaseLen-len("john.b."))},
		{"JOHN", "", long("X", 80), "john." + long("x", maxUsernameBaseLen-len("john."))},
		{long("A", 64), "B", long("C", 64), long("a", 29) + ".b." + long("c", 28)},
		// The cut falls just after a hyphen, which goes with it.
		{"JOHN", "B", long("X", maxUsernameBaseLen-len("john.b.")-1) + "-SMITH", "john.b." + long("x", maxUsernameBaseLen-len("john.b.")-1)},
		{"JOHN", "B", "SMITH", "john.b.smith"},
		// A username must start with a letter.
		{"3RD", "", "SMITH", ""},
	} {
		got := UsernameBase(tc.given, tc.middle, tc.family)
		if got != tc.want {
			t.Errorf("UsernameBase(%q, %q, %q) = %q, want %q", tc.given, tc.middle, tc.family, got, tc.want)
			continue
		}
		if got == "" {
			continue
		}
		if withSuffix := got + "9999"; !store.ValidUsername(withSuffix) {
			t.Errorf("%q is not a valid username", withSuffix)
		}
		if strings.HasSuffix(got, "-") || strings.HasSuffix(got, ".") || strings.Contains(got, "-.") {
			t.Errorf("%q: a part ends with '-' or '.'", got)
		}
	}
}
