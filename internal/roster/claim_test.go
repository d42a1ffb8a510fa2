package roster

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validateAt is ValidateClaim on a fixed day.
func validateAt(c Claim, now time.Time) error {
	var n normalizedClaim
	defer n.wipe()
	return n.parse(c, now)
}

func TestValidateClaim(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	ok := Claim{EDIPI: "1234567890", SSN: "512-34-5678", DOB: "1980-02-29"}
	with := func(edit func(*Claim)) Claim {
		c := ok
		edit(&c)
		return c
	}
	tests := []struct {
		name  string
		claim Claim
		field string // "" for valid
	}{
		{"valid SSN", ok, ""},
		{"SSN without dashes", with(func(c *Claim) { c.SSN = "512345678" }), ""},
		{"SSN with spaces and blanks around", with(func(c *Claim) { c.SSN = "\t512 34 5678 " }), ""},
		{"SSN of 8 digits", with(func(c *Claim) { c.SSN = "512-34-567" }), "ssn"},
		{"SSN of 10 digits", with(func(c *Claim) { c.SSN = "512-34-56789" }), "ssn"},
		{"SSN with a letter", with(func(c *Claim) { c.SSN = "512-34-567O" }), "ssn"},
		{"SSN with dots", with(func(c *Claim) { c.SSN = "512.34.5678" }), "ssn"},
		{"SSN in full-width digits", with(func(c *Claim) { c.SSN = "５１２３４５６７８" }), "ssn"},
		{"SSN area 000", with(func(c *Claim) { c.SSN = "000-12-3456" }), "ssn"},
		{"SSN area 666", with(func(c *Claim) { c.SSN = "666-12-3456" }), "ssn"},
		{"SSN group 00", with(func(c *Claim) { c.SSN = "512-00-5678" }), "ssn"},
		{"SSN serial 0000", with(func(c *Claim) { c.SSN = "512-34-0000" }), "ssn"},
		{"SSN of a megabyte", with(func(c *Claim) { c.SSN = strings.Repeat("1", 1<<20) }), "ssn"},
		{"no SSN nor FIN", with(func(c *Claim) { c.SSN = "" }), "ssn"},
		{"blank SSN, no FIN", with(func(c *Claim) { c.SSN = "   " }), "ssn"},
		{"both SSN and FIN", with(func(c *Claim) { c.FIN = "AB123" }), "fin"},
		{"FIN", with(func(c *Claim) { c.SSN, c.FIN = "", "de4471k09" }), ""},
		{"FIN with a dash", with(func(c *Claim) { c.SSN, c.FIN = "", "DE-4471-K09" }), ""},
		{"FIN of 1", with(func(c *Claim) { c.SSN, c.FIN = "", "7" }), ""},
		{"FIN of 12", with(func(c *Claim) { c.SSN, c.FIN = "", "ABCDEF123456" }), ""},
		{"FIN of 13", with(func(c *Claim) { c.SSN, c.FIN = "", "ABCDEF1234567" }), "fin"},
		{"FIN of dashes only", with(func(c *Claim) { c.SSN, c.FIN = "", "--" }), "fin"},
		{"FIN with punctuation", with(func(c *Claim) { c.SSN, c.FIN = "", "AB/123" }), "fin"},
		{"FIN with a non-ASCII letter", with(func(c *Claim) { c.SSN, c.FIN = "", "MÜ123" }), "fin"},
		{"DOB missing", with(func(c *Claim) { c.DOB = "" }), "dob"},
		{"DOB without leading zeros", with(func(c *Claim) { c.DOB = "1980-2-29" }), "dob"},
		{"DOB not a leap day", with(func(c *Claim) { c.DOB = "1981-02-29" }), "dob"},
		{"DOB month 13", with(func(c *Claim) { c.DOB = "1980-13-01" }), "dob"},
		{"DOB day 0", with(func(c *Claim) { c.DOB = "1980-01-00" }), "dob"},
		{"DOB with slashes", with(func(c *Claim) { c.DOB = "1980/02/29" }), "dob"},
		{"DOB American", with(func(c *Claim) { c.DOB = "02/29/1980" }), "dob"},
		{"DOB with a time", with(func(c *Claim) { c.DOB = "1980-02-29T00:00:00Z" }), "dob"},
		{"DOB with a sign", with(func(c *Claim) { c.DOB = "+980-02-29" }), "dob"},
		{"DOB with blanks around", with(func(c *Claim) { c.DOB = " 1980-02-29 " }), ""},
		{"DOB 1900-01-01", with(func(c *Claim) { c.DOB = "1900-01-01" }), ""},
		{"DOB 1899-12-31", with(func(c *Claim) { c.DOB = "1899-12-31" }), "dob"},
		{"DOB today", with(func(c *Claim) { c.DOB = "2026-03-10" }), ""},
		{"DOB tomorrow somewhere (UTC+14)", with(func(c *Claim) { c.DOB = "2026-03-11" }), ""},
		{"DOB the day after", with(func(c *Claim) { c.DOB = "2026-03-12" }), "dob"},
		{"PEBD", with(func(c *Claim) { c.PEBD = "2001-06-01" }), ""},
		{"PEBD blank", with(func(c *Claim) { c.PEBD = " " }), ""},
		{"PEBD malformed", with(func(c *Claim) { c.PEBD = "2001-6-1" }), "pebd"},
		{"PEBD before 1900", with(func(c *Claim) { c.PEBD = "1899-06-01" }), "pebd"},
		{"PEBD in the future", with(func(c *Claim) { c.PEBD = "2027-01-01" }), "pebd"},
		{"the first problem in form order", with(func(c *Claim) { c.SSN, c.DOB = "1", "x" }), "ssn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateAt(tt.claim, now)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("error %v for a valid claim", err)
				}
				return
			}
			var input *InputError
			if !errors.As(err, &input) || input.Field != tt.field {
				t.Fatalf("error = %v, want an *InputError for %s", err, tt.field)
			}
			for _, typed := range []string{tt.claim.SSN, tt.claim.FIN, tt.claim.DOB, tt.claim.PEBD} {
				if len(strings.TrimSpace(typed)) > 1 && strings.Contains(err.Error(), strings.TrimSpace(typed)) {
					t.Errorf("error %q repeats the typed value %q", err, typed)
				}
			}
		})
	}
}

func TestValidateClaimEDIPI(t *testing.T) {
	for _, edipi := range []string{"", "123456789", "12345678901", "123456789O", " 1234567890"} {
		c := Claim{EDIPI: edipi, SSN: "512-34-5678", DOB: "1980-02-29"}
		if err := ValidateClaim(c); !errors.Is(err, ErrInvalidEDIPI) {
			t.Errorf("EDIPI %q: %v, want ErrInvalidEDIPI", edipi, err)
		}
	}
}

func TestValidateClaimUsesTodaysDate(t *testing.T) {
	c := Claim{EDIPI: "1234567890", SSN: "512-34-5678", DOB: time.Now().UTC().Format(time.DateOnly)}
	if err := ValidateClaim(c); err != nil {
		t.Fatalf("a DOB of today: %v", err)
	}
	c.DOB = time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly)
	if err := ValidateClaim(c); err == nil {
		t.Fatal("a DOB three days ahead was accepted")
	}
}

func TestInputErrorsAreNotShared(t *testing.T) {
	c := Claim{EDIPI: "1234567890", DOB: "1980-02-29"}
	first := ValidateClaim(c).(*InputError)
	first.Message = "changed"
	if second := ValidateClaim(c).(*InputError); second.Message == "changed" {
		t.Fatal("ValidateClaim returns a shared *InputError")
	}
}

func TestParseDateWipesOnError(t *testing.T) {
	var s secret
	if err := parseDate("1981-02-29", &s); err == nil {
		t.Fatal("1981-02-29 accepted")
	}
	if s.n != 0 || s.buf != [maxSecretLen]byte{} {
		t.Fatalf("a refused date left %q behind", s.buf)
	}
	if err := parseSSN("512-34-567", &s); err == nil || s.buf != [maxSecretLen]byte{} {
		t.Fatalf("a refused SSN left %q behind", s.buf)
	}
}
