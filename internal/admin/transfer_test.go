package admin

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/accountcsv"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

func csvOf(t *testing.T, accounts ...*store.Account) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := accountcsv.NewWriter(&buf)
	for _, a := range accounts {
		if err := w.Write(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportExport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	legacy := []*store.Account{
		{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", Groups: []string{"ops"},
			Cards: []store.Card{{Fingerprint: strings.Repeat("ab", 32)}}},
		{Username: "jane.smith", EDIPI: "1234567891", Status: store.StatusPending},
		{Username: "robert.e.johnson", EDIPI: "1234567892", GivenName: "=HYPERLINK(1)", Categories: []string{"Army; Reserve"}},
	}
	report, err := f.svc.Import(ctx, testWho, bytes.NewReader(csvOf(t, legacy...)), "", "legacy.csv")
	if err != nil || !reflect.DeepEqual(report, ImportReport{OnConflict: "fail", Records: 3, Imported: 3, Cards: 1}) {
		t.Fatalf("import: %+v %v", report, err)
	}
	if f.invalidated != 1 {
		t.Errorf("Invalidate called %d times after an import", f.invalidated)
	}
	e := f.last(t, EventImport)
	if e["outcome"] != audit.Success || e["source"] != "legacy.csv" || e["on_conflict"] != "fail" || e["records"] != int64(3) || e["imported"] != int64(3) || e["admin"] != testWho.Identity {
		t.Errorf("import audit: %v", e)
	}

	// Again: refused whole, by the first clash, or skipped record by record.
	_, err = f.svc.Import(ctx, testWho, bytes.NewReader(csvOf(t, legacy...)), "fail", "legacy.csv")
	if status(err) != 409 || !strings.Contains(err.Error(), "record 1 (line 2)") || !strings.Contains(err.Error(), "nothing was imported (on_conflict skip skips such records)") {
		t.Errorf("clashing import: %v", err)
	}
	if e := f.last(t, EventImport); e["outcome"] != audit.Failure || e["failed_record"] != int64(1) || e["reason"] != "conflict" {
		t.Errorf("failed import audit: %v", e)
	}
	newcomer := &store.Account{Username: "luis.a.garcia", EDIPI: "1234567896"}
	report, err = f.svc.Import(ctx, testWho, bytes.NewReader(csvOf(t, append(slices.Clone(legacy), newcomer)...)), "skip", "x.csv")
	if err != nil || report.Imported != 1 || report.Skipped != 3 || report.SkippedRecords[2] != (SkippedRecord{Record: 3, Line: 4, Username: "robert.e.johnson", Taken: "username"}) {
		t.Fatalf("skipping import: %+v %v", report, err)
	}
	if e := f.last(t, EventImport); e["skipped"] != int64(3) || e["on_conflict"] != "skip" {
		t.Errorf("skipping import audit: %v", e)
	}
	n := f.invalidated
	if report, err := f.svc.Import(ctx, testWho, bytes.NewReader(csvOf(t, newcomer)), "skip", "x.csv"); err != nil || report.Imported != 0 {
		t.Fatalf("import of nothing new: %+v %v", report, err)
	}
	if f.invalidated != n {
		t.Errorf("an import that stored nothing called Invalidate")
	}

	for _, tc := range []struct {
		name, csv, onConflict string
		status                int
		msg                   string
	}{
		{"bad edipi", "username,edipi\nok.name,1234500001\nbad.name,12AB\n", "", 422, "record 2 (line 3), edipi"},
		{"unknown column", "username,edipi,password\nx.y,1234500002,hunter2\n", "", 422, "CSV header, line 1, column 3"},
		{"short row", "username,edipi,email\nx.y,1234500002,a@b.mil\nz.w,1234500003\n", "", 422, "record 2, CSV line 3"},
		{"no header", "", "", 422, "CSV header"},
		{"reserved", "username,edipi\nexport,1234500004\n", "", 422, "record 1 (line 2), username"},
		{"mode", "username,edipi\n", "merge", 400, `on_conflict must be "fail" or "skip"`},
	} {
		_, err := f.svc.Import(ctx, testWho, strings.NewReader(tc.csv), tc.onConflict, "x.csv")
		if status(err) != tc.status || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "12AB") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %d %v, want %d %q", tc.name, status(err), err, tc.status, tc.msg)
		}
	}
	for _, entry := range f.events.All() {
		for _, v := range entry.ContextMap() {
			if s, ok := v.(string); ok && (strings.Contains(s, "12AB") || strings.Contains(s, "hunter2")) {
				t.Errorf("the audit trail holds CSV content: %v", entry.ContextMap())
			}
		}
	}

	// Export: every account, with cards and groups, as CSV.
	var buf bytes.Buffer
	exported, err := f.svc.Export(ctx, testWho, &buf)
	if err != nil || exported != 4 {
		t.Fatalf("export: %d %v", exported, err)
	}
	if e := f.last(t, EventExport); e["accounts"] != int64(4) || e["outcome"] != audit.Success || e["admin"] != testWho.Identity {
		t.Errorf("export audit: %v", e)
	}
	rd := accountcsv.NewReader(&buf)
	got := map[string]*store.Account{}
	for {
		a, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[a.Username] = a
	}
	if len(got) != 4 || got["robert.e.johnson"].GivenName != "=HYPERLINK(1)" || !slices.Equal(got["robert.e.johnson"].Categories, []string{"Army; Reserve"}) ||
		len(got["john.q.doe"].Cards) != 1 || !slices.Equal(got["john.q.doe"].Groups, []string{"ops"}) || got["jane.smith"].Status != store.StatusPending {
		t.Errorf("export: %+v", got)
	}

	// A writer that fails: the export stops, says how far it got, and is
	// audited as failed.
	if n, err := f.svc.Export(ctx, testWho, failingWriter{}); err == nil || !strings.Contains(err.Error(), "export stopped after") {
		t.Errorf("export to a failing writer: %d %v", n, err)
	}
	if e := f.last(t, EventExport); e["outcome"] != audit.Failure || e["reason"] != "error" {
		t.Errorf("failed export audit: %v", e)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// TestExportImportCredentialKinds: a federal PIV and an ECA account, with
// a card each, survive export and import: the CSV carries the credential
// kind and key (no DoD ID), and the cards come back keyed like them.
func TestExportImportCredentialKinds(t *testing.T) {
	ctx := context.Background()
	src := newFixture(t)
	accounts := []*store.Account{
		{Username: "jane.federal", Kind: store.KindPIV, Key: "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d",
			Cards: []store.Card{{Fingerprint: strings.Repeat("cd", 32)}}},
		{Username: "carl.contractor", Kind: store.KindECA, Key: strings.Repeat("e1", 32)},
		{Username: "john.q.doe", EDIPI: "1234567890"},
	}
	if _, err := src.svc.Import(ctx, testWho, bytes.NewReader(csvOf(t, accounts...)), "", "kinds.csv"); err != nil {
		t.Fatalf("import: %v", err)
	}
	var buf bytes.Buffer
	if _, err := src.svc.Export(ctx, testWho, &buf); err != nil {
		t.Fatal(err)
	}
	dst := newFixture(t)
	if report, err := dst.svc.Import(ctx, testWho, bytes.NewReader(buf.Bytes()), "", "export.csv"); err != nil || report.Imported != 3 || report.Cards != 1 {
		t.Fatalf("re-import of the export: %+v %v\n%s", report, err, buf.String())
	}
	for _, want := range accounts {
		got, err := dst.store.AccountByUsername(ctx, want.Username)
		if err != nil {
			t.Fatal(err)
		}
		wantKind, wantKey := want.Kind, want.Key
		if wantKind == "" {
			wantKind, wantKey = store.KindCAC, want.EDIPI
		}
		if got.Kind != wantKind || got.Key != wantKey || got.EDIPI != want.EDIPI || len(got.Cards) != len(want.Cards) {
			t.Errorf("%s after the round trip: kind %q key %q edipi %q, %d cards", want.Username, got.Kind, got.Key, got.EDIPI, len(got.Cards))
		}
	}
	if acct, err := dst.store.AccountByKey(ctx, store.KindPIV, accounts[0].Key); err != nil || acct.Username != "jane.federal" {
		t.Errorf("the PIV account by its key after the round trip: %v %v", acct, err)
	}
}
