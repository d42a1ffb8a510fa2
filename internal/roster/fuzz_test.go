package roster

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// longDigitRun finds nine or more digits in a row: the shape of an SSN.
// Line numbers and limits in error messages are shorter.
var longDigitRun = regexp.MustCompile(`[0-9]{9,}`)

var (
	normalizedSSN = regexp.MustCompile(`^[0-9]{9}$`)
	normalizedFIN = regexp.MustCompile(`^[A-Z0-9]{1,12}$`)
)

// FuzzParseRoster feeds the CSV parser arbitrary files: it must never
// panic, an error must name a line and carry no run of digits that could
// be an SSN from the file, and a roster it accepts must be well formed.
func FuzzParseRoster(f *testing.F) {
	f.Add([]byte(CSVContent(testRows...)))
	f.Add([]byte("\xEF\xBB\xBF" + strings.ReplaceAll(CSVContent(john, hans), "\n", "\r\n")))
	f.Add([]byte(header + `1234567890,"512-34-5678",,1980-02-29,,"DOE, ""JR""",JOHN,,Active Army,"a` + "\n" + `b"` + "\n"))
	f.Add([]byte(header + "1234567890,512345678,,1980-02-29,,DOE,JOHN,,Active Army,\n1234567890,512345678,,1980-02-29,,DOE,JOHN,,Active Army,\n"))
	f.Add([]byte(header + "\"unterminated"))
	f.Add([]byte("card_uuid,email,ssn,fin,dob,pebd,last,first,middle,category,organization\n" +
		"A0B1C2D3-E4F5-4A6B-8C7D-0E1F2A3B4C5D,,900-11-1901,,1979-02-14,,FEDERAL,JANE,Q,Federal Civilian,\n" +
		",Carl@Example.com,900-11-1902,,1981-06-30,,CONTRACTOR,CARL,,Contractor,\n"))
	f.Add([]byte("512-34-5678,1234567890\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		original := bytes.Clone(data)
		x, err := parseRoster("fuzz.csv", data)
		if err != nil {
			var fileErr *FileError
			if !errors.As(err, &fileErr) || fileErr.Line < 1 {
				t.Fatalf("error %v is not a *FileError with a line", err)
			}
			if run := longDigitRun.FindString(fileErr.Problem); run != "" && bytes.Contains(original, []byte(run)) {
				t.Fatalf("error %q repeats %q from the file", err, run)
			}
			return
		}
		records := 0
		for edipi, entries := range x.byEDIPI {
			if !isEDIPI(edipi) || len(entries) == 0 || len(entries) > maxRecordsPerEDIPI {
				t.Fatalf("EDIPI %q with %d records", edipi, len(entries))
			}
			for _, e := range entries {
				r := e.record
				if r.EDIPI != edipi || r.Category == "" || r.Last == "" || r.First == "" || e.hasSSN+e.hasFIN == 0 {
					t.Fatalf("accepted an incomplete record %+v", r)
				}
				for _, s := range []string{r.Category, r.Last, r.First, r.Middle, r.Organization} {
					if !isPrintable(s) || s != strings.TrimSpace(s) {
						t.Fatalf("accepted the text %q", s)
					}
				}
			}
			records += len(entries)
		}
		// Each record is in the map of each of its keys; counted once,
		// in the map of its first key.
		for kind, m := range map[KeyKind]map[string][]entry{KeyCardUUID: x.byUUID, KeyEmail: x.byEmail} {
			for key, entries := range m {
				if v, ok := normalizeKey(kind, key); !ok || v != key || len(entries) == 0 || len(entries) > maxRecordsPerEDIPI {
					t.Fatalf("%s %q with %d records", kind, key, len(entries))
				}
				for _, e := range entries {
					r := e.record
					if (kind == KeyCardUUID && r.CardUUID != key) || (kind == KeyEmail && r.Email != key) || r.Category == "" || e.hasSSN+e.hasFIN == 0 {
						t.Fatalf("accepted an incomplete record %+v", r)
					}
					first := r.EDIPI == "" && (kind == KeyCardUUID || r.CardUUID == "")
					if first {
						records++
					}
				}
			}
		}
		if records != x.records {
			t.Fatalf("counted %d records, indexed %d", x.records, records)
		}
	})
}

// FuzzValidateClaim: no input panics, an accepted claim normalizes to the
// documented forms, and a message never repeats what was typed.
func FuzzValidateClaim(f *testing.F) {
	f.Add("1234567890", "512-34-5678", "", "1980-02-29", "")
	f.Add("1234567890", "", "de-4471k09", "1990-01-31", "2010-05-06")
	f.Add("123456789x", "666-00-0000", "x", "2000-02-30", "9999-99-99")
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, edipi, ssn, fin, dob, pebd string) {
		var n normalizedClaim
		defer n.wipe()
		err := n.parse(Claim{EDIPI: edipi, SSN: ssn, FIN: fin, DOB: dob, PEBD: pebd}, now)
		var input *InputError
		switch {
		case errors.Is(err, ErrInvalidEDIPI):
			return
		case errors.As(err, &input):
			if longDigitRun.MatchString(input.Message) {
				t.Fatalf("message %q", input.Message)
			}
			return
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		}
		id := string(n.id.bytes())
		switch n.kind {
		case idSSN:
			if !normalizedSSN.MatchString(id) {
				t.Fatalf("SSN normalized to %q", id)
			}
		case idFIN:
			if !normalizedFIN.MatchString(id) {
				t.Fatalf("FIN normalized to %q", id)
			}
		default:
			t.Fatal("accepted a claim without an identifier")
		}
		for _, d := range []*secret{&n.dob, &n.pebd} {
			if !d.empty() {
				if _, err := time.Parse(time.DateOnly, string(d.bytes())); err != nil {
					t.Fatalf("date normalized to %q", d.bytes())
				}
			}
		}
	})
}
