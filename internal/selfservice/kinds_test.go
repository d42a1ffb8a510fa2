package selfservice

import "testing"

func TestNameCase(t *testing.T) {
	for in, want := range map[string]string{
		"JANE": "Jane", "O'BRIEN-SMITH": "O'Brien-Smith", "MARY ANN": "Mary Ann", "McDonald": "McDonald", "": "",
	} {
		if got := nameCase(in); got != want {
			t.Errorf("nameCase(%q) = %q, want %q", in, got, want)
		}
	}
}
