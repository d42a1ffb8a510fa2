package roster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const (
	janeUUID  = "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d"
	carlEmail = "carl.contractor@example.com"
)

// keyedRoster is a file with both key columns and no edipi column.
func keyedRoster(t *testing.T) *CSV {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roster.csv")
	content := "card_uuid,email,ssn,fin,dob,pebd,last,first,middle,category,organization\n" +
		strings.ToUpper(janeUUID) + ",,900-11-1901,,1979-02-14,,FEDERAL,JANE,Q,Federal Civilian,Department of Testing\n" +
		",Carl.Contractor@Example.com,900-11-1902,,1981-06-30,2003-01-02,CONTRACTOR,CARL,,Contractor,Example LLC\n" +
		",Carl.Contractor@Example.com,900-11-1902,,1981-06-30,,CONTRACTOR,CARL,,Navy Civilian,\n"
	writeFile(t, path, content)
	c, err := OpenCSV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCSVKeyedVerify: records are found by card UUID and by e-mail,
// whatever their case in the file, and matched on the typed facts as an
// EDIPI's are; a record of one key is never found by another.
func TestCSVKeyedVerify(t *testing.T) {
	c := keyedRoster(t)
	ctx := context.Background()

	res, err := c.Verify(ctx, Claim{CardUUID: janeUUID, SSN: "900111901", DOB: "1979-02-14"})
	if err != nil || !res.Match || len(res.Records) != 1 || res.Records[0].CardUUID != janeUUID || res.Records[0].EDIPI != "" || res.Records[0].Category != "Federal Civilian" {
		t.Fatalf("Verify by card UUID = %+v, %v", res, err)
	}
	for _, claim := range []Claim{
		{CardUUID: janeUUID, SSN: "900111902", DOB: "1979-02-14"},                                 // wrong SSN
		{CardUUID: janeUUID, SSN: "900111901", DOB: "1979-02-15"},                                 // wrong DOB
		{CardUUID: "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5e", SSN: "900111901", DOB: "1979-02-14"},   // another card
		{Email: "jane.federal@example.gov", SSN: "900111901", DOB: "1979-02-14"},                  // not her key
		{Email: carlEmail, SSN: "900111902", DOB: "1981-06-30", PEBD: "2003-01-03"},               // wrong PEBD: nothing
		{CardUUID: strings.Replace(janeUUID, "a0", "c0", 1), SSN: "900111902", DOB: "1981-06-30"}, // Carl's facts, a UUID
	} {
		if res, err := c.Verify(ctx, claim); err != nil || res.Match || res.NoRecord {
			t.Errorf("Verify(%+v) = %+v, %v; want no match", claim, res, err)
		}
	}
	// The dual record of an e-mail: both with the PEBD.
	res, err = c.Verify(ctx, Claim{Email: "CARL.contractor@example.com", SSN: "900-11-1902", DOB: "1981-06-30", PEBD: "2003-01-02"})
	if err != nil || !res.Match || len(res.Records) != 2 || res.Records[0].Email != carlEmail {
		t.Fatalf("Verify by e-mail = %+v, %v", res, err)
	}
}

// TestCSVKeyedLookup: Lookup says whether the roster has a record of a
// key and whether it has a PEBD; an unknown or malformed key is unknown.
func TestCSVKeyedLookup(t *testing.T) {
	c := keyedRoster(t)
	ctx := context.Background()
	for _, tt := range []struct {
		kind  KeyKind
		value string
		want  Presence
	}{
		{KeyCardUUID, janeUUID, Presence{Known: true, PEBD: PEBDNotAsked}},
		{KeyCardUUID, strings.ToUpper(janeUUID), Presence{Known: true, PEBD: PEBDNotAsked}},
		{KeyEmail, carlEmail, Presence{Known: true, PEBD: PEBDRequired}},
		{KeyEmail, "nobody@example.com", Presence{}},
		{KeyCardUUID, "not-a-uuid", Presence{}},
		{KeyEmail, carlEmail + "\n", Presence{}},
		{KeyEDIPI, "1234567890", Presence{}},
	} {
		if got, err := c.Lookup(ctx, tt.kind, tt.value); err != nil || got != tt.want {
			t.Errorf("Lookup(%s, %q) = %+v, %v; want %+v", tt.kind, tt.value, got, err, tt.want)
		}
	}
	if c.Len() != 3 {
		t.Errorf("Len = %d, want 3", c.Len())
	}
}

// TestCSVWithoutKeyColumnsKnowsNoKey: a roster file of EDIPIs, as before
// the key columns, still loads and knows no card UUID.
func TestCSVWithoutKeyColumnsKnowsNoKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roster.csv")
	writeFile(t, path, "edipi,ssn,fin,dob,pebd,last,first,middle,category,organization\n1234567890,900-11-1890,,1980-01-15,,DOE,JOHN,,Active Army,\n")
	c, err := OpenCSV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Lookup(context.Background(), KeyCardUUID, janeUUID); err != nil || p.Known {
		t.Errorf("Lookup = %+v, %v", p, err)
	}
	if res, err := c.Verify(context.Background(), Claim{EDIPI: "1234567890", SSN: "900111890", DOB: "1980-01-15"}); err != nil || !res.Match {
		t.Errorf("Verify = %+v, %v", res, err)
	}
}

// TestCSVKeyColumnProblems: malformed keys are refused with the line and
// the column, never the value.
func TestCSVKeyColumnProblems(t *testing.T) {
	const header = "edipi,card_uuid,email,ssn,fin,dob,pebd,last,first,middle,category,organization\n"
	for _, tt := range []struct {
		name, content, problem string
	}{
		{"no key column", "ssn,fin,dob,pebd,last,first,middle,category,organization\n", "no edipi column"},
		{"no key", header + ",,,900-11-1901,,1979-02-14,,A,B,,Contractor,\n", "all empty"},
		{"bad uuid", header + ",zz-secret-uuid,,900-11-1901,,1979-02-14,,A,B,,Contractor,\n", "card_uuid is not a UUID"},
		{"bad email", header + ",,secret value@x,900-11-1901,,1979-02-14,,A,B,,Contractor,\n", "email is not an e-mail address"},
		{"email without domain", header + ",,secret@,900-11-1901,,1979-02-14,,A,B,,Contractor,\n", "email is not an e-mail address"},
		{"repeated uuid", header + "," + janeUUID + ",,900-11-1901,,1979-02-14,,A,B,,Contractor,\n," + strings.ToUpper(janeUUID) + ",,900-11-1902,,1979-02-14,,A,B,,Contractor,\n", "repeats the card_uuid and category of line 2"},
		{"repeated email", header + ",,a@b.example,900-11-1901,,1979-02-14,,A,B,,Contractor,\n,,A@B.example,900-11-1902,,1979-02-14,,A,B,,Contractor,\n", "repeats the email and category of line 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "roster.csv")
			writeFile(t, path, tt.content)
			_, err := OpenCSV(path, nil)
			var fe *FileError
			if !errors.As(err, &fe) || !strings.Contains(fe.Problem, tt.problem) {
				t.Fatalf("OpenCSV = %v, want a problem with %q", err, tt.problem)
			}
			for _, secret := range []string{"secret", "900-11-190", "1979-02-14"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes %q: %v", secret, err)
				}
			}
		})
	}
}

// TestClaimKeys: a claim has exactly one well-formed key.
func TestClaimKeys(t *testing.T) {
	base := Claim{SSN: "900111901", DOB: "1979-02-14"}
	for _, tt := range []struct {
		name string
		edit func(*Claim)
		want error
	}{
		{"none", func(c *Claim) {}, ErrInvalidEDIPI},
		{"two", func(c *Claim) { c.EDIPI, c.CardUUID = "1234567890", janeUUID }, ErrInvalidKey},
		{"uuid and email", func(c *Claim) { c.CardUUID, c.Email = janeUUID, carlEmail }, ErrInvalidKey},
		{"short uuid", func(c *Claim) { c.CardUUID = janeUUID[:35] }, ErrInvalidKey},
		{"uuid without dashes", func(c *Claim) { c.CardUUID = strings.ReplaceAll(janeUUID, "-", "") + "0000" }, ErrInvalidKey},
		{"email with a quote", func(c *Claim) { c.Email = `a"b@example.com` }, ErrInvalidKey},
		{"email with two @", func(c *Claim) { c.Email = "a@b@example.com" }, ErrInvalidKey},
		{"email too long", func(c *Claim) { c.Email = strings.Repeat("a", 250) + "@b.cd" }, ErrInvalidKey},
		{"uuid", func(c *Claim) { c.CardUUID = strings.ToUpper(janeUUID) }, nil},
		{"email", func(c *Claim) { c.Email = carlEmail }, nil},
	} {
		c := base
		tt.edit(&c)
		if err := ValidateClaim(c); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("%s: ValidateClaim = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// keyedService starts a loopback service answering with handler, asked
// about card UUIDs and e-mail addresses.
func keyedService(t *testing.T, keys []KeyKind, handler http.HandlerFunc) *HTTP {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	h, err := NewHTTP(HTTPConfig{URL: srv.URL + "/verify", Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHTTPKeyedRequest: the request carries the key in place of the
// EDIPI, normalized, and the records come back with it.
func TestHTTPKeyedRequest(t *testing.T) {
	for _, tt := range []struct {
		claim Claim
		field string
		value string
	}{
		{Claim{CardUUID: strings.ToUpper(janeUUID), SSN: "900-11-1901", DOB: "1979-02-14"}, "card_uuid", janeUUID},
		{Claim{Email: "Carl.Contractor@Example.com", SSN: "900-11-1901", DOB: "1979-02-14"}, "email", carlEmail},
	} {
		var got map[string]string
		h := keyedService(t, []KeyKind{KeyCardUUID, KeyEmail}, func(w http.ResponseWriter, r *http.Request) {
			if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
				t.Error(err)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"match":true,"records":[{"` + tt.field + `":"` + strings.ToUpper(tt.value) + `","category":"Contractor","last":"A","first":"B"}]}`))
		})
		res, err := h.Verify(context.Background(), tt.claim)
		if err != nil || !res.Match || len(res.Records) != 1 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		rec := res.Records[0]
		if rec.EDIPI != "" || (tt.field == "card_uuid" && rec.CardUUID != tt.value) || (tt.field == "email" && rec.Email != tt.value) {
			t.Errorf("record %+v", rec)
		}
		want := map[string]string{tt.field: tt.value, "ssn": "900111901", "dob": "1979-02-14"}
		if len(got) != len(want) {
			t.Errorf("request %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("request %v, want %v", got, want)
			}
		}
	}
}

// TestHTTPKeysNotConfigured: a service configured for EDIPIs alone is
// never asked about another key, and Lookup says it knows none.
func TestHTTPKeysNotConfigured(t *testing.T) {
	var asked atomic.Int32
	h := keyedService(t, []KeyKind{KeyEmail}, func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"match":false}`))
	})
	ctx := context.Background()
	if _, err := h.Verify(ctx, Claim{CardUUID: janeUUID, SSN: "900111901", DOB: "1979-02-14"}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Verify by an unconfigured key = %v, want ErrInvalidKey", err)
	}
	if asked.Load() != 0 {
		t.Error("the service was asked about a key it does not answer for")
	}
	if p, _ := h.Lookup(ctx, KeyCardUUID, janeUUID); p.Known {
		t.Error("Lookup knows an unconfigured key")
	}
	if p, _ := h.Lookup(ctx, KeyEmail, carlEmail); !p.Known || p.PEBD != PEBDOptional {
		t.Errorf("Lookup(email) = %+v", p)
	}
	if p, _ := h.Lookup(ctx, KeyEmail, "no address"); p.Known {
		t.Error("Lookup knows a malformed key")
	}
	if _, err := NewHTTP(HTTPConfig{URL: "https://roster.example/verify", Keys: []KeyKind{"ssn"}}); err == nil {
		t.Error("NewHTTP accepted the key ssn")
	}
}

// TestHTTPKeyedReplies: "known":false on a keyed no-match says the service
// has no record; "known" anywhere else, or a record for another key or
// naming an EDIPI, is a reply not understood.
func TestHTTPKeyedReplies(t *testing.T) {
	uuidClaim := Claim{CardUUID: janeUUID, SSN: "900111901", DOB: "1979-02-14"}
	edipiClaim := Claim{EDIPI: "1234567890", SSN: "900111901", DOB: "1979-02-14"}
	for _, tt := range []struct {
		name        string
		claim       Claim
		body        string
		noRecord    bool
		unavailable bool
	}{
		{"no record", uuidClaim, `{"match":false,"known":false}`, true, false},
		{"known, wrong facts", uuidClaim, `{"match":false,"known":true}`, false, false},
		{"plain no match", uuidClaim, `{"match":false}`, false, false},
		{"known on a match", uuidClaim, `{"match":true,"known":true,"records":[{"category":"C","last":"A","first":"B"}]}`, false, true},
		{"known for an EDIPI", edipiClaim, `{"match":false,"known":false}`, false, true},
		{"another card", uuidClaim, `{"match":true,"records":[{"card_uuid":"a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5e","category":"C","last":"A","first":"B"}]}`, false, true},
		{"an EDIPI beside a card", uuidClaim, `{"match":true,"records":[{"edipi":"1234567890","category":"C","last":"A","first":"B"}]}`, false, true},
		{"an e-mail beside an EDIPI", edipiClaim, `{"match":true,"records":[{"email":"a@b.example","category":"C","last":"A","first":"B"}]}`, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := keyedService(t, []KeyKind{KeyCardUUID}, reply(tt.body))
			res, err := h.Verify(context.Background(), tt.claim)
			if tt.unavailable {
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Verify = %+v, %v; want ErrUnavailable", res, err)
				}
				return
			}
			if err != nil || res.Match || res.NoRecord != tt.noRecord {
				t.Fatalf("Verify = %+v, %v; want NoRecord %v", res, err, tt.noRecord)
			}
		})
	}
}

// TestDemoRosterListsFederalCards: the demo roster lists the committed
// federal test PIV card by its UUID.
func TestDemoRosterListsFederalCards(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "roster.csv")
	if _, err := os.Stat(path); err != nil {
		t.Skip("no demo roster")
	}
	c, err := OpenCSV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Lookup(context.Background(), KeyCardUUID, janeUUID); err != nil || !p.Known {
		t.Errorf("the demo roster does not list the PIV card %s: %+v, %v", janeUUID, p, err)
	}
}
