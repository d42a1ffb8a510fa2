package caddymodule

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/store"
)

// Wrong methods on the admin routes get the admin API's JSON error shape
// and an Allow header; HEAD is one of them, so it never runs an export.
func TestAdminMethodNotAllowedIsJSON(t *testing.T) {
	g := startGateway(t, "", "")
	logPath := filepath.Join(g.dir, "caddy.log")
	g.createAccount("1234567890", "john.q.doe")
	for _, tc := range []struct{ method, path, allow string }{
		{"PATCH", "/cacgate/accounts", "GET, POST"},
		{"PATCH", "/cacgate/accounts/john.q.doe", "GET"},
		{"GET", "/cacgate/accounts/john.q.doe/approve", "POST"},
		{"PATCH", "/cacgate/accounts/john.q.doe/groups", "DELETE, POST, PUT"},
		{"GET", "/cacgate/accounts/john.q.doe/cards/abc", "DELETE"},
		{"PUT", "/cacgate/accounts/import", "GET, POST"}, // GET: /cacgate/accounts/{username}
		{"DELETE", "/cacgate/accounts/export", "GET"},
		{"POST", "/cacgate/groups", "GET"},
		{"POST", "/cacgate/revocation", "GET"},
	} {
		code, h, body := g.adminRaw(tc.method, tc.path, "", nil)
		if code != http.StatusMethodNotAllowed || h.Get("Allow") != tc.allow || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: HTTP %d, Allow %q, Content-Type %q; want 405, Allow %q, JSON", tc.method, tc.path, code, h.Get("Allow"), h.Get("Content-Type"), tc.allow)
			continue
		}
		adminErrorText(t, body)
	}
	if code, h, body := g.adminRaw("GET", "/cacgate/nosuch", "", nil); code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("unknown path: HTTP %d %q", code, body)
	} else {
		adminErrorText(t, body)
	}

	exports := len(auditEntries(t, logPath, admin.EventExport))
	for _, path := range []string{"/cacgate/accounts/export", "/cacgate/accounts"} {
		code, h, _ := g.adminRaw("HEAD", path, "", nil)
		if code != http.StatusMethodNotAllowed || !strings.Contains(h.Get("Allow"), "GET") || h.Get(admin.ExportCountTrailer) != "" {
			t.Errorf("HEAD %s: HTTP %d, Allow %q, count %q", path, code, h.Get("Allow"), h.Get(admin.ExportCountTrailer))
		}
	}
	if n := len(auditEntries(t, logPath, admin.EventExport)); n != exports {
		t.Errorf("HEAD ran an export: %d export audit entries, had %d", n, exports)
	}
	// The real routes still answer.
	if code, _, _ := g.adminRaw("GET", "/cacgate/accounts/export", "", nil); code != http.StatusOK {
		t.Errorf("GET export: HTTP %d", code)
	}
	if code, _, _ := g.adminRaw("GET", "/cacgate/accounts/john.q.doe", "", nil); code != http.StatusOK {
		t.Errorf("GET account: HTTP %d", code)
	}
}

// A CSV import cannot create the accounts the admin API's own paths would
// hide.
func TestAdminImportRefusesReservedUsernames(t *testing.T) {
	g := startGateway(t, "", "")
	for _, name := range []string{"import", "export"} {
		csv := "username,edipi\nok.name,1234567890\n" + name + ",1234567891\n"
		code, _, body := g.adminRaw("POST", "/cacgate/accounts/import", "text/csv", []byte(csv))
		if code != http.StatusUnprocessableEntity || !strings.Contains(adminErrorText(t, body), "record 2 (line 3), username") {
			t.Errorf("import of %q: HTTP %d %s", name, code, body)
		}
	}
	var page admin.AccountPage
	if g.adminDo("GET", "/cacgate/accounts", nil, &page); page.Total != 0 {
		t.Errorf("%d accounts stored", page.Total)
	}
}

// An account whose roster category holds a ';' exports, and the export
// imports back unchanged.
func TestCLIExportCategoryWithSeparator(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "cacgate.db")
	cfg := []string{"--config", cliSite(t, dir, db, filepath.Join(dir, "audit.log"))}
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	odd := []string{"Army; Reserve", `C:\x`}
	if err := s.CreateAccount(ctx, &store.Account{Username: "john.q.doe", EDIPI: "1234567890", Status: store.StatusActive, Categories: odd}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	exported := filepath.Join(dir, "export.csv")
	mustCLI(t, append([]string{"export", "--output", exported}, cfg...)...)

	dir2 := t.TempDir()
	db2 := filepath.Join(dir2, "cacgate.db")
	cfg2 := []string{"--config", cliSite(t, dir2, db2, filepath.Join(dir2, "audit.log"))}
	mustCLI(t, append([]string{"import", exported, "--create-db"}, cfg2...)...)
	var acct admin.Account
	cliJSON(t, &acct, append([]string{"show", "john.q.doe"}, cfg2...)...)
	if !reflect.DeepEqual(acct.Categories, odd) {
		t.Errorf("categories after export and import: %q, want %q", acct.Categories, odd)
	}
}

// export --output --force replaces the file whole, with mode 0600 (the
// admin package tests that a failed export leaves the old one alone).
func TestCLIExportForceReplacesSafely(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "cacgate.db")
	cfg := []string{"--config", cliSite(t, dir, db, filepath.Join(dir, "audit.log"))}
	if _, errOut, err := cli(t, "username,edipi\njohn.q.doe,1234567890\n", append([]string{"import", "-", "--create-db"}, cfg...)...); err != nil {
		t.Fatalf("import: %v %s", err, errOut)
	}
	out := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(out, []byte("old export\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(out, 0o644)
	mustCLI(t, append([]string{"export", "--output", out, "--force"}, cfg...)...)
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced export: mode %v, %v; want 0600", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(out); !bytes.HasPrefix(data, []byte("username,edipi,")) {
		t.Errorf("replaced export holds %q", data)
	}
}
