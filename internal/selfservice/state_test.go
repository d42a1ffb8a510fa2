package selfservice

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUsernameBase(t *testing.T) {
	for _, tc := range []struct{ given, middle, family, want string }{
		{"JOHN", "BARRY", "SMITH", "john.b.smith"},
		{"JANE", "", "SMITH", "jane.smith"},
		{"MARY ANN", "K", "O'BRIEN-SMITH", "maryann.k.obrien-smith"},
		{"ROBERT", "E", "JOHNSON", "robert.e.johnson"},
		{"Luis", "a", "Garcia", "luis.a.garcia"},
		{"JOSÉ", "", "NUÑEZ", "jos.nuez"},
		{"-A-", "", "--B--C--", "a.b-c"},
		{"", "Q", "DOE", ""},
		{"JOHN", "Q", "'", ""},
		{"JOHN", "'", "DOE", "john.doe"},
	} {
		if got := UsernameBase(tc.given, tc.middle, tc.family); got != tc.want {
			t.Errorf("UsernameBase(%q, %q, %q) = %q, want %q", tc.given, tc.middle, tc.family, got, tc.want)
		}
	}
}

func TestEligibleCategories(t *testing.T) {
	person := []string{"Army Retired", "DA Civilian", "DA Civilian", " "}
	if got := EligibleCategories(person, nil); !reflect.DeepEqual(got, []string{"Army Retired", "DA Civilian"}) {
		t.Errorf("all allowed: %q", got)
	}
	if got := EligibleCategories(person, []string{"da civilian ", "Active Army"}); !reflect.DeepEqual(got, []string{"DA Civilian"}) {
		t.Errorf("subset: %q", got)
	}
	if got := EligibleCategories(person, []string{"Contractor"}); len(got) != 0 {
		t.Errorf("none eligible: %q", got)
	}
}

type flowState struct {
	Step       int
	Categories []string
}

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealer(t *testing.T) {
	s := newSealer(t)
	now := time.Now()
	in := flowState{Step: 2, Categories: []string{"Active Army"}}
	sealed, err := s.Seal("card-a", in, now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "Active") {
		t.Fatal("sealed state is readable")
	}
	var out flowState
	if err := s.Open(sealed, "card-a", &out, now.Add(9*time.Minute)); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %v %+v", err, out)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(sealed)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	for name, tc := range map[string]struct {
		sealed, card string
		at           time.Time
	}{
		"other card":   {sealed, "card-b", now},
		"expired":      {sealed, "card-a", now.Add(10 * time.Minute)},
		"tampered":     {base64.RawURLEncoding.EncodeToString(flipped), "card-a", now},
		"truncated":    {sealed[:20], "card-a", now},
		"empty":        {"", "card-a", now},
		"not base64":   {"!!!", "card-a", now},
		"huge":         {strings.Repeat("A", maxSealed+1), "card-a", now},
		"other sealer": {mustSeal(t, newSealer(t), in), "card-a", now},
	} {
		if err := s.Open(tc.sealed, tc.card, &out, tc.at); err != ErrStateInvalid {
			t.Errorf("%s: %v, want ErrStateInvalid", name, err)
		}
	}
	if _, err := NewSealer(make([]byte, 16)); err == nil {
		t.Error("accepted a 16-byte key")
	}
}

func mustSeal(t *testing.T, s *Sealer, v any) string {
	t.Helper()
	out, err := s.Seal("card-a", v, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
