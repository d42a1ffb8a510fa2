package accountcsv

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/store"
)

const (
	fpA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	fpB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// readAll reads every account, failing the test on an error.
func readAll(t *testing.T, r *Reader) []*store.Account {
	t.Helper()
	var accounts []*store.Account
	for range 10_000 {
		a, err := r.Read()
		if err == io.EOF {
			return accounts
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		accounts = append(accounts, a)
	}
	t.Fatal("no io.EOF after 10,000 accounts")
	return nil
}

// readErr reads until an error other than a clean end and returns it.
func readErr(t *testing.T, input string) error {
	t.Helper()
	r := NewReader(strings.NewReader(input))
	for range 1000 {
		_, err := r.Read()
		if err == io.EOF {
			t.Fatalf("input read without error:\n%.200s", input)
		}
		if err != nil {
			// Errors are sticky.
			if _, again := r.Read(); again != err {
				t.Errorf("second Read returned %v, want the same error %v", again, err)
			}
			return err
		}
	}
	t.Fatal("no error after 1000 records")
	return nil
}

func fullAccount() *store.Account {
	return &store.Account{
		Username: "john.b.smith", EDIPI: "1234567890",
		GivenName: "John", MiddleName: "B", FamilyName: "Smith", Suffix: "Jr",
		Email: "john.smith@example.mil", Affiliation: "USA", Status: store.StatusPending,
		Organization: "HQ, 1st Bn", Location: "North America", WorkAddress: "Bldg 1, Fort Example, VA",
		Phone: "+1 703 555 0100", Categories: []string{"Active Army", "DA Civilian"},
		Groups: []string{"admins", "ops"},
		Cards:  []store.Card{{Fingerprint: fpA}, {Fingerprint: fpB}},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	accounts := []*store.Account{
		fullAccount(),
		{Username: "min", EDIPI: "0000000001"}, // nothing else: empty cells, nil lists
		{Username: "quotes", EDIPI: "0000000002", GivenName: `Ann "Nan", Jr.`, FamilyName: "O'Neil",
			Categories: []string{"=1+1", "'x"}, Organization: "-10", Suffix: "@home", Phone: "'+1"},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, a := range accounts {
		if err := w.Write(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), strings.Join(Columns, ",")+"\n") {
		t.Errorf("output does not start with the header:\n%s", buf.String())
	}
	got := readAll(t, NewReader(&buf))
	if !reflect.DeepEqual(got, accounts) {
		t.Errorf("round trip mismatch\n got: %+v\nwant: %+v", got, accounts)
	}
}

func TestWriterEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf).Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != strings.Join(Columns, ",")+"\n" {
		t.Errorf("empty export = %q, want the header alone", buf.String())
	}
	if got := readAll(t, NewReader(&buf)); len(got) != 0 {
		t.Errorf("read %d accounts from a header alone", len(got))
	}
}

func TestWriterRefusesUnreadableLists(t *testing.T) {
	for name, a := range map[string]*store.Account{
		"empty group":     {Username: "a", Groups: []string{""}},
		"padded category": {Username: "a", Categories: []string{" x;y"}},
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		err := w.Write(a)
		if err == nil {
			t.Errorf("%s: written", name)
			continue
		}
		if strings.Contains(err.Error(), "x;y") {
			t.Errorf("%s: error echoes the value: %v", name, err)
		}
	}
}

func TestReaderHeaderAnyOrderAndPartial(t *testing.T) {
	input := "\uFEFF Groups ,EDIPI,username,card_sha256\n" +
		"ops; admins ;;,1234567890,jdoe," + fpB + " ; " + fpA + "\n" +
		",0000000001,nobody,\n"
	got := readAll(t, NewReader(strings.NewReader(input)))
	want := []*store.Account{
		{Username: "jdoe", EDIPI: "1234567890", Groups: []string{"ops", "admins"},
			Cards: []store.Card{{Fingerprint: fpB}, {Fingerprint: fpA}}},
		{Username: "nobody", EDIPI: "0000000001"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestReaderLine(t *testing.T) {
	r := NewReader(strings.NewReader("username,edipi,work_address\na,1,\"two\nlines\"\nb,2,x\n"))
	for _, want := range []int{2, 4} {
		if _, err := r.Read(); err != nil {
			t.Fatal(err)
		}
		if r.Line() != want {
			t.Errorf("Line() = %d, want %d", r.Line(), want)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	const secret = "s3cr3t-value"
	long := strings.Repeat("x", MaxFieldBytes+1)
	tests := []struct {
		name, input string
		line        int
		column      string
	}{
		{"empty input", "", 1, ""},
		{"unknown column", "username,edipi," + secret + "\n", 1, "3"},
		{"repeated column", "username,edipi,Username\n", 1, "username"},
		{"no username column", "edipi,given_name\n", 1, "username"},
		{"no edipi column", "username\n", 1, "edipi"},
		{"too many fields", "username,edipi\na,1," + secret + "\n", 2, ""},
		{"too few fields", "username,edipi\na,1\nb\n", 3, ""},
		{"bare quote", "username,edipi\na,1\nb" + secret + `"x,2` + "\n", 3, ""},
		{"unterminated quote", "username,edipi\na,\"" + secret + "\n", 2, ""},
		{"long cell", "username,edipi,given_name\na,1," + long + "\n", 2, "given_name"},
		{"long record", "username,edipi,given_name,middle_name,family_name,suffix,email,affiliation,organization,location,work_address,phone,categories\na,1" +
			strings.Repeat(",\""+strings.Repeat(secret+"\n", (MaxFieldBytes-100)/(len(secret)+1))+"\"", 11) + "\n", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := readErr(t, tt.input)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if e.Line != tt.line || e.Column != tt.column {
				t.Errorf("error %v at line %d, column %q; want line %d, column %q", err, e.Line, e.Column, tt.line, tt.column)
			}
			if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "xxxxxxxx") {
				t.Errorf("error echoes input: %.200s", msg)
			}
		})
	}
}

// A record far longer than the cap is refused without being read whole.
func TestReaderBoundsMemory(t *testing.T) {
	src := &countingReader{r: io.MultiReader(strings.NewReader("username,edipi\na,\""), neverEnding('x'))}
	r := NewReader(src)
	_, err := r.Read()
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("error = %v, want a too-long record", err)
	}
	if src.n > MaxRecordBytes+3*readAhead {
		t.Errorf("read %d bytes before refusing the record", src.n)
	}
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestFormulaGuard(t *testing.T) {
	tests := []struct{ value, cell string }{
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"+1 703 555 0100", "'+1 703 555 0100"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'=already", "''=already"}, // would otherwise lose its apostrophe
		{"''", "'''"},
		{"'t Hooft", "'t Hooft"}, // an apostrophe before a letter is left alone
		{"'", "'"},
		{"plain", "plain"},
		{"a=b", "a=b"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := guard(tt.value); got != tt.cell {
			t.Errorf("guard(%q) = %q, want %q", tt.value, got, tt.cell)
		}
		if got := unguard(tt.cell); got != tt.value {
			t.Errorf("unguard(%q) = %q, want %q", tt.cell, got, tt.value)
		}
	}

	// Through Writer: no cell of the output starts a formula.
	a := &store.Account{Username: "u", EDIPI: "1", GivenName: "=HYPERLINK(\"http://evil\")", FamilyName: "+x",
		Email: "@x", Organization: "-x", Categories: []string{"=a", "b"}}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, dangerous := range []string{",=", ",+", ",-", ",@", "\n=", "\"=", "\"+"} {
		if strings.Contains(out, dangerous) {
			t.Errorf("output has a cell starting with %q:\n%s", dangerous[1:], out)
		}
	}
	got := readAll(t, NewReader(&buf))
	if len(got) != 1 || !reflect.DeepEqual(got[0], a) {
		t.Errorf("read back %+v, want %+v", got, a)
	}
	// Reader strips exactly the guard: a legacy file's "'=x" means "=x",
	// but its "'abc" is the name "'abc".
	got = readAll(t, NewReader(strings.NewReader("username,edipi,given_name,family_name\nu,1,'=x,'abc\n")))
	if got[0].GivenName != "=x" || got[0].FamilyName != "'abc" {
		t.Errorf("read %q, %q; want \"=x\", \"'abc\"", got[0].GivenName, got[0].FamilyName)
	}
}

// The format carries accounts from one store to another and back to the
// same bytes.
func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	open := func() *store.SQLStore {
		s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "cacgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	src := open()
	b := fullAccount()
	b.Username, b.EDIPI, b.Cards = "ann.oneil", "2222222222", nil
	b.GivenName, b.FamilyName, b.Status = "=1+1", "O'Neil", store.StatusDisabled
	for _, a := range []*store.Account{fullAccount(), b} {
		if err := src.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	export := func(s *store.SQLStore) []byte {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := s.ExportAccounts(ctx, w.Write); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := export(src)
	dst := open()
	report, err := dst.ImportAccounts(ctx, NewReader(bytes.NewReader(first)).Read, store.ImportOptions{})
	if err != nil || report.Imported != 2 || report.Cards != 2 {
		t.Fatalf("import: %+v, %v", report, err)
	}
	if second := export(dst); !bytes.Equal(first, second) {
		t.Errorf("export after import differs:\n%s\nvs\n%s", first, second)
	}
	got, err := dst.AccountByFingerprint(ctx, fpB)
	if err != nil || got.Username != "john.b.smith" || !reflect.DeepEqual(got.Groups, []string{"admins", "ops"}) {
		t.Errorf("imported account: %+v, %v", got, err)
	}

	// A CSV error surfaces from the import with its line and record.
	bad := "username,edipi\nok,1111111111\nbad,\"unterminated\n"
	_, err = open().ImportAccounts(ctx, NewReader(strings.NewReader(bad)).Read, store.ImportOptions{})
	var ie *store.ImportError
	var ce *Error
	if !errors.As(err, &ie) || ie.Record != 2 || !errors.As(err, &ce) || ce.Line != 3 {
		t.Errorf("import of a malformed CSV: %v", err)
	}
}

// Roster categories are free text: one with a ';' or a '\' must neither
// stop an export nor change on the way back in.
func TestListItemsWithSeparatorRoundTrip(t *testing.T) {
	ctx := context.Background()
	open := func() *store.SQLStore {
		s, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "cacgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	odd := []string{"Army; Reserve", `C:\odd`, `trailing\`, `\;`, ";", "plain"}
	src := open()
	a := fullAccount()
	a.Categories = odd
	if err := src.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	export := func(s *store.SQLStore) []byte {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if err := s.ExportAccounts(ctx, w.Write); err != nil {
			t.Fatalf("export: %v", err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := export(src)
	dst := open()
	if _, err := dst.ImportAccounts(ctx, NewReader(bytes.NewReader(first)).Read, store.ImportOptions{}); err != nil {
		t.Fatalf("import: %v", err)
	}
	got, err := dst.AccountByUsername(ctx, a.Username)
	if err != nil || !reflect.DeepEqual(got.Categories, odd) {
		t.Errorf("categories after the round trip: %q, %v; want %q", got.Categories, err, odd)
	}
	if second := export(dst); !bytes.Equal(first, second) {
		t.Errorf("export after import differs:\n%s\nvs\n%s", first, second)
	}
	// A backslash before anything but ';' or '\' is an ordinary character,
	// as in files written before lists had escapes.
	r := NewReader(strings.NewReader("username,edipi,categories\na,1,\"x\\y ; a\\;b;c\\\\\"\n"))
	if got := readAll(t, r); !reflect.DeepEqual(got[0].Categories, []string{`x\y`, "a;b", `c\`}) {
		t.Errorf("escapes read as %q", got[0].Categories)
	}
}
