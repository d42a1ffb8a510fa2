package forward

import "testing"

func TestWithoutSessionCookie(t *testing.T) {
	const s = "__Host-cacgate-session=bearer"
	const c = "__Host-cacgate-consent=tok"
	for in, want := range map[string]string{
		s:                                 "",
		s + "; " + c:                      c,
		"a=1; b=2":                        "a=1; b=2",
		s + "; a=1; b=2":                  "a=1; b=2",
		"a=1; b=2; " + s:                  "a=1; b=2",
		"a=1;" + s + ";b=2":               "a=1; b=2",
		"a=1; " + s + "; " + c + "; b=2":  "a=1; " + c + "; b=2",
		" a=1 ;  ; " + s + " ":            "a=1",
		s + "; a=1; " + s + "; b=2; " + s: "a=1; b=2",
		"x__Host-cacgate-session=1; " + s: "x__Host-cacgate-session=1",
		"a=__Host-cacgate-session=; " + s: "a=__Host-cacgate-session=",
		"":                                "",
	} {
		if got := WithoutSessionCookie(in); got != want {
			t.Errorf("WithoutSessionCookie(%q) = %q, want %q", in, got, want)
		}
	}
	// The usual orders cost nothing.
	for _, in := range []string{"a=1; b=2; " + s, s + "; " + c + "; a=1; b=2"} {
		if n := testing.AllocsPerRun(100, func() { WithoutSessionCookie(in) }); n != 0 {
			t.Errorf("%q: %v allocations", in, n)
		}
	}
}
