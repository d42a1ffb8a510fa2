package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// cli runs `caddy cacgate accounts <args>` in-process and returns what it
// printed.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := accountsCommand()
	cmd.SilenceUsage = true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// mustCLI is cli for a command that must succeed.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, "", args...)
	if err != nil {
		t.Fatalf("accounts %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// cliJSON runs a command with --json and decodes its output into v.
func cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := mustCLI(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("accounts %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cliSite writes a Caddyfile using a cacgate store at db and routing the
// audit logger to audit, as a server's would.
func cliSite(t *testing.T, dir, db, audit string) string {
	t.Helper()
	cf := filepath.Join(dir, "Caddyfile")
	src := fmt.Sprintf(`{
	admin off
	log audit {
		include %s
		output file %s
		format json
	}
	cacgate {
		store sqlite %s
	}
}
`, auditLogName, audit, db)
	if err := os.WriteFile(cf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return cf
}

func TestCLIDirectStore(t *testing.T) {
	dir := t.TempDir()
	db, auditPath := filepath.Join(dir, "cacgate.db"), filepath.Join(dir, "audit.log")
	cfg := []string{"--config", cliSite(t, dir, db, auditPath)}
	run := func(args ...string) string { t.Helper(); return mustCLI(t, append(args, cfg...)...) }
	runJSON := func(v any, args ...string) { t.Helper(); cliJSON(t, v, append(args, cfg...)...) }
	fails := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := cli(t, "", append(args, cfg...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("accounts %s: %v, want an error with %q\n%s%s", strings.Join(args, " "), err, want, out, errOut)
		}
	}

	// A missing database is not silently created.
	fails("--create-db", "list")
	if _, err := os.Stat(db); err == nil {
		t.Fatal("list created the database")
	}

	john := card(t, "doe.john.quincy")
	legacy := filepath.Join(dir, "legacy.csv")
	if err := os.WriteFile(legacy, csvOf(t,
		&store.Account{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe", Groups: []string{"ops"},
			Cards: []store.Card{{Fingerprint: fingerprint(john)}}},
		&store.Account{Username: "jane.smith", EDIPI: "1234567891", GivenName: "Jane", FamilyName: "Smith", Status: store.StatusPending},
		&store.Account{Username: "robert.e.johnson", EDIPI: "1234567892", GivenName: "Robert", FamilyName: "Johnson"},
	), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run("import", legacy, "--create-db"); !strings.Contains(out, "Read 3 records: imported 3 accounts with 1 cards.") {
		t.Fatalf("import: %s", out)
	}
	if e := lastAudit(t, auditPath, admin.EventImport); e["source"] != "legacy.csv" || e["imported"] != 3.0 || !strings.HasPrefix(e["admin"].(string), "cli:") {
		t.Errorf("import audit: %v", e)
	}

	out := run("list")
	for _, want := range []string{"USERNAME", "john.q.doe", "1234567890", "John Doe", "ops", "pending", "Accounts 1-3 of 3."} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if out := run("list", "--limit", "2"); !strings.Contains(out, "Accounts 1-2 of 3. Next page: --offset 2") {
		t.Errorf("paged list:\n%s", out)
	}
	var page admin.AccountPage
	runJSON(&page, "list", "--status", "pending")
	if page.Total != 1 || page.Accounts[0].Username != "jane.smith" {
		t.Errorf("list --status pending: %+v", page)
	}
	runJSON(&page, "search", "SMITH")
	if page.Total != 1 || page.Accounts[0].Username != "jane.smith" {
		t.Errorf("search SMITH: %+v", page)
	}
	runJSON(&page, "search", "--group", "ops")
	if page.Total != 1 || page.Accounts[0].Username != "john.q.doe" {
		t.Errorf("search --group ops: %+v", page)
	}
	runJSON(&page, "search", "--edipi", "1234567892")
	if page.Total != 1 || page.Accounts[0].Username != "robert.e.johnson" {
		t.Errorf("search --edipi: %+v", page)
	}
	fails("status must be", "list", "--status", "gone")
	fails("limit must be", "list", "--limit", "5000")

	out = run("show", "john.q.doe")
	for _, want := range []string{"Username:", "john.q.doe", "Groups:", "ops", fingerprint(john)} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	fails(`no account "nobody"`, "show", "nobody")
	fails("is not a username", "show", "John.Doe")

	if out := run("approve", "jane.smith"); !strings.Contains(out, "Approved jane.smith: status active.") {
		t.Errorf("approve: %s", out)
	}
	fails("not pending approval", "approve", "jane.smith")
	e := lastAudit(t, auditPath, "admin.account.approved")
	who := admin.CLIActor()
	if e["admin"] != who.Identity || e["admin_source"] != who.Source || e["outcome"] != audit.Failure || e["reason"] != "conflict" {
		t.Errorf("approve audit: %v, want the admin %s", e, who.Identity)
	}

	// A lockout, made the way failed sign-ins make it, lifted by unlock.
	st, err := store.OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	jane, err := st.AccountByUsername(context.Background(), "jane.smith")
	if err == nil {
		_, err = st.RecordLoginFailure(context.Background(), jane.ID, time.Now(), time.Hour, 1, time.Hour)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out := run("list", "--status", "active"); !strings.Contains(out, "active (locked)") {
		t.Errorf("a locked account is not shown as locked:\n%s", out)
	}
	var acct admin.Account
	runJSON(&acct, "unlock", "jane.smith")
	if acct.LockedUntil != nil {
		t.Errorf("unlock: still locked until %v", acct.LockedUntil)
	}

	if out := run("groups", "add", "john.q.doe", "finance.readers", "ops"); !strings.Contains(out, "john.q.doe is in [finance.readers ops].") {
		t.Errorf("groups add: %s", out)
	}
	run("groups", "rm", "john.q.doe", "ops")
	var groups []admin.Group
	runJSON(&groups, "groups", "list")
	if !slices.Equal(groups, []admin.Group{{Name: "finance.readers", Accounts: 1}}) {
		t.Errorf("groups list: %+v", groups)
	}
	fails("group 1", "groups", "add", "john.q.doe", "Finance Readers")
	if e := lastAudit(t, auditPath, admin.EventGroupsRemoved); e["username"] != "john.q.doe" || e["admin"] != who.Identity {
		t.Errorf("groups audit: %v", e)
	}

	runJSON(&acct, "disable", "robert.e.johnson")
	if acct.Status != "disabled" {
		t.Errorf("disable: %s", acct.Status)
	}
	_, errOut, _ := cli(t, "", append([]string{"enable", "robert.e.johnson"}, cfg...)...)
	if !strings.Contains(errOut, "cache_ttl") {
		t.Errorf("a direct change does not say when running servers see it: %q", errOut)
	}

	// Cards, by PEM file and by fingerprint.
	robert := card(t, "johnson.robert.e.jr")
	pemFile := filepath.Join(dir, "robert.pem")
	os.WriteFile(pemFile, pemChain(robert.Chain[:1]), 0o600)
	if out := run("link", "robert.e.johnson", pemFile); !strings.Contains(out, "Linked the card to robert.e.johnson (1 cards).") {
		t.Errorf("link: %s", out)
	}
	fails("not the account's", "link", "john.q.doe", pemFile)
	if e := lastAudit(t, auditPath, "admin.card.linked"); e["cert_sha256"] != fingerprint(robert) || e["outcome"] != audit.Failure ||
		e["username"] != "john.q.doe" || e["account_edipi"] != "1234567890" || e["edipi"] != "1234567892" {
		t.Errorf("refused link audit: %v", e)
	}
	run("unlink", "robert.e.johnson", pemFile)
	run("link", "robert.e.johnson", pemFile)
	fails("has no card", "unlink", "jane.smith", strings.ToUpper(fingerprint(robert)))

	runJSON(&acct, "create", "--edipi", "1234567896", "--username", "luis.a.garcia", "--given-name", "Luis", "--group", "ops,pilots")
	if !slices.Equal(acct.Groups, []string{"ops", "pilots"}) || acct.Status != "active" {
		t.Errorf("create: %+v", acct)
	}
	fails("already exists for this DoD ID", "create", "--edipi", "1234567896", "--username", "someone.else")

	// Export, then import into a new database: the same accounts.
	exported := filepath.Join(dir, "export.csv")
	_, errOut, err = cli(t, "", append([]string{"export", "--output", exported}, cfg...)...)
	if err != nil || !strings.Contains(errOut, "Exported 4 accounts to "+exported) {
		t.Fatalf("export: %v %s", err, errOut)
	}
	if fi, err := os.Stat(exported); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v %v", fi.Mode(), err)
	}
	fails("exists", "export", "--output", exported)
	run("export", "--output", exported, "--force")
	if e := lastAudit(t, auditPath, admin.EventExport); e["accounts"] != 4.0 || e["admin"] != who.Identity {
		t.Errorf("export audit: %v", e)
	}
	stdoutCSV := run("export")
	if data, _ := os.ReadFile(exported); string(data) != stdoutCSV {
		t.Errorf("export to stdout differs from --output")
	}

	dir2 := t.TempDir()
	cfg2 := []string{"--config", cliSite(t, dir2, filepath.Join(dir2, "cacgate.db"), filepath.Join(dir2, "audit.log"))}
	if out := mustCLI(t, append([]string{"import", exported, "--create-db"}, cfg2...)...); !strings.Contains(out, "imported 4 accounts with 2 cards") {
		t.Fatalf("re-import: %s", out)
	}
	var before, after admin.AccountPage
	runJSON(&before, "list")
	cliJSON(t, &after, append([]string{"list"}, cfg2...)...)
	summary := func(p admin.AccountPage) string {
		var b strings.Builder
		for _, a := range p.Accounts {
			fmt.Fprintf(&b, "%s %s %s %s %v %d|", a.Username, a.EDIPI, a.Status, admin.FullName(a), a.Groups, len(a.Cards))
			for _, c := range a.Cards {
				b.WriteString(c.Fingerprint + " ")
			}
		}
		return b.String()
	}
	if summary(before) != summary(after) || after.Total != 4 {
		t.Errorf("round trip:\n%s\n%s", summary(before), summary(after))
	}
	// From standard input, skipping what exists.
	csvData, _ := os.ReadFile(exported)
	out, errOut, err = cli(t, string(csvData), append([]string{"import", "-", "--on-conflict", "skip", "--json"}, cfg2...)...)
	var report admin.ImportReport
	if err != nil || json.Unmarshal([]byte(out), &report) != nil || report.Skipped != 4 || report.Imported != 0 || report.SkippedRecords[0].Line != 2 {
		t.Errorf("import - --on-conflict skip: %v %+v\n%s", err, report, errOut)
	}
	if e := lastAudit(t, filepath.Join(dir2, "audit.log"), admin.EventImport); e["source"] != "standard input" || e["skipped"] != 4.0 {
		t.Errorf("stdin import audit: %v", e)
	}

	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("username,edipi\nok.name,1234500001\nbad.name,12AB\n"), 0o600)
	fails("record 2 (line 3), edipi", "import", bad)
	fails(`on_conflict must be "fail" or "skip"`, "import", bad, "--on-conflict", "merge")
	runJSON(&page, "list")
	if page.Total != 4 {
		t.Errorf("a failed import stored accounts: %d", page.Total)
	}
	if data, err := os.ReadFile(auditPath); err != nil || bytes.Contains(data, []byte("12AB")) {
		t.Errorf("the audit log holds CSV content (or cannot be read: %v)", err)
	}
}

func TestCLIConfigErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "Caddyfile")
	os.WriteFile(plain, []byte("localhost:0 {\n\trespond ok\n}\n"), 0o600)
	jsonCfg := filepath.Join(dir, "caddy.json")
	os.WriteFile(jsonCfg, []byte(`{"apps":{"cacgate":{"store":{"backend":"nosuch"}}}}`), 0o600)
	// A handler without the global option: the app's default store, in
	// Caddy's data directory (the test's temporary one), which is empty.
	handlerOnly := filepath.Join(dir, "handler.json")
	os.WriteFile(handlerOnly, []byte(`{"apps": {"http": {"servers": {"s": {"listen": [":0"], "routes": [{"handle": [{"handler": "cacgate"}]}]}}}}}`), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list", "--config", plain}, "does not use cacgate"},
		{[]string{"list", "--config", filepath.Join(dir, "missing")}, "reading config"},
		{[]string{"list", "--config", jsonCfg}, "nosuch"},
		{[]string{"list", "--config", handlerOnly}, filepath.Join(os.Getenv("XDG_DATA_HOME"), "caddy", "cacgate", "cacgate.db")},
		{[]string{"list", "--config", plain, "--adapter", "yaml"}, "unknown config adapter"},
		{[]string{"list", "--config", jsonCfg, "--address", "127.0.0.1:1"}, "admin API"},
		{[]string{"show"}, "accepts 1 arg"},
		{[]string{"groups", "add", "john.q.doe"}, "requires at least 2 arg"},
	} {
		_, _, err := cli(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("accounts %s: %v, want an error with %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestCLIThroughAdminAPI runs the commands against a running gateway: the
// same answers as in direct mode, errors with the API's status.
func TestCLIThroughAdminAPI(t *testing.T) {
	g := startGateway(t, "", "")
	api := []string{"--address", g.admin}
	run := func(args ...string) string { t.Helper(); return mustCLI(t, append(args, api...)...) }

	if out := run("create", "--edipi", "1234567890", "--username", "john.q.doe", "--given-name", "John", "--group", "ops"); !strings.Contains(out, "Created john.q.doe (DoD ID 1234567890, active).") {
		t.Errorf("create: %s", out)
	}
	_, _, err := cli(t, "", append([]string{"create", "--edipi", "1234567890", "--username", "someone.else"}, api...)...)
	if err == nil || err.Error() != "HTTP 409: an account already exists for this DoD ID" {
		t.Errorf("duplicate create: %v", err)
	}
	csvData := string(csvOf(t, &store.Account{Username: "jane.smith", EDIPI: "1234567891", Status: store.StatusPending}))
	out, errOut, err := cli(t, csvData, append([]string{"import", "-"}, api...)...)
	if err != nil || !strings.Contains(out, "imported 1 accounts") || strings.Contains(errOut, "cache_ttl") {
		t.Fatalf("import through the API: %v %s %s", err, out, errOut)
	}
	run("approve", "jane.smith")
	run("groups", "add", "jane.smith", "ops")
	var page admin.AccountPage
	cliJSON(t, &page, append([]string{"search", "--group", "ops", "--status", "active"}, api...)...)
	if page.Total != 2 {
		t.Errorf("search through the API: %+v", page)
	}
	var groups []admin.Group
	cliJSON(t, &groups, append([]string{"groups", "list"}, api...)...)
	if !slices.Equal(groups, []admin.Group{{Name: "ops", Accounts: 2}}) {
		t.Errorf("groups through the API: %+v", groups)
	}
	exported := filepath.Join(t.TempDir(), "out.csv")
	_, errOut, err = cli(t, "", append([]string{"export", "-o", exported}, api...)...)
	if data, _ := os.ReadFile(exported); err != nil || !strings.Contains(errOut, "Exported 2 accounts") || !bytes.Contains(data, []byte("jane.smith")) {
		t.Errorf("export through the API: %v %s", err, errOut)
	}
	_, _, err = cli(t, "", append([]string{"show", "nobody"}, api...)...)
	if err == nil || !strings.HasPrefix(err.Error(), "HTTP 404: ") {
		t.Errorf("show unknown through the API: %v", err)
	}
	if e := lastAudit(t, filepath.Join(g.dir, "caddy.log"), admin.EventGroupsAdded); e["admin"] != "local" || e["username"] != "jane.smith" {
		t.Errorf("the API audits CLI changes as the local admin: %v", e)
	}
}
