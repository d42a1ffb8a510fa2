package roster

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// The people of the test roster. SSNs are in the form people type them.
var (
	john = Row{EDIPI: "1234567890", SSN: "512-34-5678", DOB: "1980-02-29",
		Last: "DOE", First: "JOHN", Middle: "QUINCY", Category: "Active Army", Organization: "1st Cavalry Division"}
	// A foreign national: a FIN and no SSN.
	hans = Row{EDIPI: "3456789012", FIN: "DE4471K09", DOB: "1990-01-31",
		Last: "MUELLER", First: "HANS", Category: "Foreign National", Organization: "USAREUR"}
	// A soldier whose record carries a PEBD.
	maria = Row{EDIPI: "4567890123", SSN: "534-56-7890", DOB: "1985-10-10", PEBD: "2004-08-16",
		Last: "GARCIA", First: "MARIA", Category: "Army Reserve"}
	// A dual account: retired soldier and Army civilian, plus a record of
	// someone else filed under the same EDIPI with another SSN.
	retired = Row{EDIPI: "5678901234", SSN: "545-67-8901", DOB: "1960-03-03",
		Last: "SMITH", First: "ROBERT", Category: "Army Retired"}
	civilian = Row{EDIPI: "5678901234", SSN: "545-67-8901", DOB: "1960-03-03",
		Last: "SMITH", First: "ROBERT", Middle: "E", Category: "DA Civilian", Organization: "AMC"}
	impostor = Row{EDIPI: "5678901234", SSN: "556-78-9012", DOB: "1960-03-03",
		Last: "SMYTHE", First: "ROBERTA", Category: "Contractor"}
	// A dual account where only the military record has a PEBD.
	guardRecord = Row{EDIPI: "6789012345", SSN: "567-89-0123", DOB: "1970-12-01", PEBD: "1990-06-15",
		Last: "JONES", First: "ALEX", Category: "Army National Guard"}
	guardCivilian = Row{EDIPI: "6789012345", SSN: "567-89-0123", DOB: "1970-12-01",
		Last: "JONES", First: "ALEX", Category: "Army National Guard Technician"}
)

var testRows = []Row{john, hans, maria, retired, civilian, impostor, guardRecord, guardCivilian}

func openTestCSV(t *testing.T) *CSV {
	t.Helper()
	c, err := OpenCSV(WriteCSV(t, testRows...), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func claimFor(r Row) Claim {
	return Claim{EDIPI: r.EDIPI, SSN: r.SSN, FIN: r.FIN, DOB: r.DOB, PEBD: r.PEBD}
}

func categories(res Result) []string {
	var out []string
	for _, r := range res.Records {
		out = append(out, r.Category)
	}
	return out
}

func TestCSVVerify(t *testing.T) {
	c := openTestCSV(t)
	with := func(r Row, edit func(*Claim)) Claim {
		claim := claimFor(r)
		edit(&claim)
		return claim
	}
	tests := []struct {
		name  string
		claim Claim
		want  []string // categories matched; nil for no match
	}{
		{"SSN", claimFor(john), []string{"Active Army"}},
		{"SSN without dashes", with(john, func(c *Claim) { c.SSN = "512345678" }), []string{"Active Army"}},
		{"SSN with spaces", with(john, func(c *Claim) { c.SSN = " 512 34 5678 " }), []string{"Active Army"}},
		{"PEBD given but the record has none", with(john, func(c *Claim) { c.PEBD = "2000-01-01" }), []string{"Active Army"}},
		{"FIN", claimFor(hans), []string{"Foreign National"}},
		{"FIN in lower case with a dash", with(hans, func(c *Claim) { c.FIN = "de-4471k09" }), []string{"Foreign National"}},
		{"PEBD right", claimFor(maria), []string{"Army Reserve"}},
		{"dual account", claimFor(retired), []string{"Army Retired", "DA Civilian"}},
		{"the other SSN under a dual account's EDIPI", claimFor(impostor), []string{"Contractor"}},
		{"dual account, PEBD on one record, right", claimFor(guardRecord), []string{"Army National Guard", "Army National Guard Technician"}},

		{"DOB wrong", with(john, func(c *Claim) { c.DOB = "1980-03-01" }), nil},
		{"SSN wrong", with(john, func(c *Claim) { c.SSN = "512-34-5679" }), nil},
		{"SSN of another person", with(john, func(c *Claim) { c.SSN = maria.SSN }), nil},
		{"FIN wrong", with(hans, func(c *Claim) { c.FIN = "DE4471K08" }), nil},
		{"FIN given for a record with an SSN only", with(john, func(c *Claim) { c.SSN, c.FIN = "", "512345678" }), nil},
		{"SSN given for a record with a FIN only", with(hans, func(c *Claim) { c.SSN, c.FIN = "512-34-5678", "" }), nil},
		// A site that does not ask for the PEBD sends none: the other
		// factors decide (a site that asks makes the form require it).
		{"PEBD not asked", with(maria, func(c *Claim) { c.PEBD = "" }), []string{"Army Reserve"}},
		{"PEBD wrong", with(maria, func(c *Claim) { c.PEBD = "2004-08-17" }), nil},
		{"PEBD equal to the DOB", with(maria, func(c *Claim) { c.PEBD = maria.DOB }), nil},
		{"dual account, PEBD on one record, not asked", with(guardRecord, func(c *Claim) { c.PEBD = "" }), []string{"Army National Guard", "Army National Guard Technician"}},
		{"dual account, PEBD on one record, wrong", with(guardRecord, func(c *Claim) { c.PEBD = "1990-06-16" }), nil},
		{"unknown EDIPI", with(john, func(c *Claim) { c.EDIPI = "9999999999" }), nil},
		{"another person's EDIPI", with(john, func(c *Claim) { c.EDIPI = maria.EDIPI }), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Verify(context.Background(), tt.claim)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.want == nil {
				// Every kind of mismatch gives the one same answer.
				if !reflect.DeepEqual(res, Result{}) {
					t.Fatalf("Verify = %+v, want the zero Result", res)
				}
				return
			}
			if !res.Match || !slices.Equal(categories(res), tt.want) {
				t.Fatalf("Verify = %+v, want a match of %v", res, tt.want)
			}
			for _, r := range res.Records {
				if r.EDIPI != tt.claim.EDIPI {
					t.Errorf("record %+v is not for EDIPI %s", r, tt.claim.EDIPI)
				}
			}
		})
	}
}

func TestCSVVerifyReturnsRecordFields(t *testing.T) {
	c := openTestCSV(t)
	res, err := c.Verify(context.Background(), claimFor(civilian))
	if err != nil {
		t.Fatal(err)
	}
	want := Record{EDIPI: "5678901234", Category: "DA Civilian", Last: "SMITH", First: "ROBERT", Middle: "E", Organization: "AMC"}
	if len(res.Records) != 2 || res.Records[1] != want {
		t.Fatalf("records = %+v, want the second to be %+v", res.Records, want)
	}
	// The caller owns what it gets: changing it changes nothing inside.
	res.Records[1].Last = "CHANGED"
	again, _ := c.Verify(context.Background(), claimFor(civilian))
	if again.Records[1] != want {
		t.Fatalf("a caller's edit leaked into the roster: %+v", again.Records[1])
	}
}

func TestCSVVerifyRefusesMalformedClaims(t *testing.T) {
	c := openTestCSV(t)
	claim := claimFor(john)
	claim.DOB = "02/29/1980"
	_, err := c.Verify(context.Background(), claim)
	var input *InputError
	if !errors.As(err, &input) || input.Field != "dob" {
		t.Fatalf("Verify = %v, want an *InputError for dob", err)
	}
	claim = claimFor(john)
	claim.EDIPI = "12345"
	if _, err := c.Verify(context.Background(), claim); !errors.Is(err, ErrInvalidEDIPI) {
		t.Fatalf("Verify = %v, want ErrInvalidEDIPI", err)
	}
}

func TestCSVVerifyAbandonedContext(t *testing.T) {
	c := openTestCSV(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Verify(ctx, claimFor(john))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want ErrUnavailable and context.Canceled", err)
	}
}

func TestCSVNeedsPEBD(t *testing.T) {
	c := openTestCSV(t)
	for _, tt := range []struct {
		edipi string
		want  PEBDNeed
	}{
		{maria.EDIPI, PEBDRequired},
		{guardRecord.EDIPI, PEBDRequired}, // one of the two records has a PEBD
		{john.EDIPI, PEBDNotAsked},
		{retired.EDIPI, PEBDNotAsked},
		{"9999999999", PEBDNotAsked}, // unknown: see the package documentation
		{"not an edipi", PEBDNotAsked},
	} {
		got, err := c.NeedsPEBD(context.Background(), tt.edipi)
		if err != nil || got != tt.want {
			t.Errorf("NeedsPEBD(%q) = %v, %v; want %v", tt.edipi, got, err, tt.want)
		}
	}
}

func TestCSVLen(t *testing.T) {
	if got := openTestCSV(t).Len(); got != len(testRows) {
		t.Fatalf("Len = %d, want %d", got, len(testRows))
	}
}

func TestCSVHeaderInAnyOrderAndCase(t *testing.T) {
	content := "\xEF\xBB\xBFOrganization, Category ,MIDDLE,first,last,pebd,dob,fin,ssn,EDIPI\r\n" +
		`"1st Cavalry Division, ""First Team""",Active Army,QUINCY,JOHN,DOE,,1980-02-29,,512-34-5678,1234567890` + "\r\n\r\n"
	path := WriteCSV(t)
	writeFile(t, path, content)
	c, err := OpenCSV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(context.Background(), claimFor(john))
	if err != nil || !res.Match {
		t.Fatalf("Verify = %+v, %v; want a match", res, err)
	}
	if got := res.Records[0].Organization; got != `1st Cavalry Division, "First Team"` {
		t.Fatalf("organization = %q", got)
	}
}

func TestCSVEmptyRosterMatchesNobody(t *testing.T) {
	c, err := OpenCSV(WriteCSV(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Verify(context.Background(), claimFor(john))
	if err != nil || res.Match || c.Len() != 0 {
		t.Fatalf("Verify = %+v, %v, Len %d; want no match in an empty roster", res, err, c.Len())
	}
}

func TestCSVLogsNoSecrets(t *testing.T) {
	logger, logs := observed()
	c, err := OpenCSV(WriteCSV(t, testRows...), logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range testRows {
		c.Verify(context.Background(), claimFor(r))
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged; the load should be")
	}
	for _, r := range testRows {
		assertNoSecret(t, "log", logText(logs), r.SSN, r.FIN)
	}
}
