package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/accountcsv"
	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// The gateway tests' names for the admin API's answers.
type (
	AccountJSON         = admin.Account
	AccountPageJSON     = admin.AccountPage
	LinkCardRequest     = admin.LinkCardRequest
	RevocationStatsJSON = admin.RevocationStats
)

// adminRaw calls the admin API with a raw body and returns the status, the
// headers (with trailers) and the body.
func (g *testGateway) adminRaw(method, path, contentType string, body []byte) (int, http.Header, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(method, "http://"+g.admin+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: requestTimeout}).Do(req)
	if err != nil {
		g.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("admin %s %s: reading: %v", method, path, err)
	}
	for k, v := range resp.Trailer {
		resp.Header[k] = v
	}
	return resp.StatusCode, resp.Header, data
}

// adminError is the message of an admin API error answer.
func adminErrorText(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("not an admin API error answer: %q", body)
	}
	return e.Error
}

// auditEntries returns the audit log entries of event in a JSON log file.
func auditEntries(t *testing.T, path, event string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil || e["logger"] != auditLogName || e["event"] != event {
			continue
		}
		out = append(out, e)
	}
	return out
}

// lastAudit is the newest audit entry of event, failing the test if none.
func lastAudit(t *testing.T, path, event string) map[string]any {
	t.Helper()
	all := auditEntries(t, path, event)
	if len(all) == 0 {
		t.Fatalf("no %s audit entry", event)
	}
	return all[len(all)-1]
}

// checkLocalAdmin checks that an audit entry names the local admin
// endpoint's client as the actor.
func checkLocalAdmin(t *testing.T, e map[string]any) {
	t.Helper()
	if e["admin"] != "local" || !strings.HasPrefix(e["admin_source"].(string), "127.0.0.1:") {
		t.Errorf("%s: admin %v from %v, want local from 127.0.0.1", e["event"], e["admin"], e["admin_source"])
	}
}

func TestAdminAPISearchAndShow(t *testing.T) {
	g := startGateway(t, "", "")
	for _, a := range []admin.NewAccountRequest{
		{EDIPI: "1234567890", Username: "john.q.doe", GivenName: "John", FamilyName: "Doe", Email: "john.q.doe@mail.mil", Groups: []string{"ops"}},
		{EDIPI: "1234567891", Username: "jane.smith", GivenName: "Jane", FamilyName: "Smith", Status: "pending"},
		{EDIPI: "1234567892", Username: "robert.e.johnson", GivenName: "Robert", FamilyName: "Johnson", Groups: []string{"ops", "finance.readers"}},
	} {
		if code := g.adminDo("POST", "/cacgate/accounts", a, nil); code != http.StatusCreated {
			t.Fatalf("creating %s: HTTP %d", a.Username, code)
		}
	}
	search := func(query string) admin.AccountPage {
		t.Helper()
		var page admin.AccountPage
		if code := g.adminDo("GET", "/cacgate/accounts"+query, nil, &page); code != http.StatusOK {
			t.Fatalf("GET /cacgate/accounts%s: HTTP %d", query, code)
		}
		return page
	}
	usernames := func(p admin.AccountPage) []string {
		var out []string
		for _, a := range p.Accounts {
			out = append(out, a.Username)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
		total int
	}{
		{"", []string{"jane.smith", "john.q.doe", "robert.e.johnson"}, 3},
		{"?q=SMITH", []string{"jane.smith"}, 1},
		{"?q=12345678", []string{"jane.smith", "john.q.doe", "robert.e.johnson"}, 3},
		{"?q=mail.mil", []string{"john.q.doe"}, 1},
		{"?username=john.q.doe", []string{"john.q.doe"}, 1},
		{"?edipi=1234567892", []string{"robert.e.johnson"}, 1},
		{"?status=pending", []string{"jane.smith"}, 1},
		{"?group=ops", []string{"john.q.doe", "robert.e.johnson"}, 2},
		{"?group=ops&q=rob", []string{"robert.e.johnson"}, 1},
		{"?limit=1&offset=1", []string{"john.q.doe"}, 3},
		{"?offset=5", nil, 3},
		{"?q=nobody", nil, 0},
	} {
		page := search(tc.query)
		if got := usernames(page); !slices.Equal(got, tc.want) || page.Total != tc.total {
			t.Errorf("%q: %v of %d, want %v of %d", tc.query, got, page.Total, tc.want, tc.total)
		}
	}
	if p := search("?limit=2&offset=1"); p.Offset != 1 || p.Limit != 2 {
		t.Errorf("page bounds echoed as offset %d limit %d", p.Offset, p.Limit)
	}
	if p := search(""); p.Limit != admin.DefaultPageLimit || p.Accounts[1].Groups[0] != "ops" {
		t.Errorf("default page: limit %d, groups %v", p.Limit, p.Accounts[1].Groups)
	}

	for _, bad := range []string{"?status=bogus", "?limit=0", "?limit=1001", "?offset=-1", "?offset=x", "?sort=name",
		"?q=a&q=b", "?edipi=12345", "?group=Ops", "?username=John", "?q=" + strings.Repeat("a", 101), "?q=%00"} {
		code, _, body := g.adminRaw("GET", "/cacgate/accounts"+bad, "", nil)
		if code != http.StatusBadRequest {
			t.Errorf("GET /cacgate/accounts%s: HTTP %d, want 400", bad, code)
			continue
		}
		adminErrorText(t, body)
	}

	var acct admin.Account
	if code := g.adminDo("GET", "/cacgate/accounts/robert.e.johnson", nil, &acct); code != http.StatusOK ||
		acct.EDIPI != "1234567892" || !slices.Equal(acct.Groups, []string{"finance.readers", "ops"}) {
		t.Fatalf("show: HTTP %d %+v", code, acct)
	}
	if code, _, body := g.adminRaw("GET", "/cacgate/accounts/nobody", "", nil); code != http.StatusNotFound || !strings.Contains(adminErrorText(t, body), "nobody") {
		t.Errorf("unknown account: HTTP %d %s", code, body)
	}
	if code, _, _ := g.adminRaw("GET", "/cacgate/accounts/John.Doe", "", nil); code != http.StatusBadRequest {
		t.Errorf("malformed username: HTTP %d", code)
	}
	if code, _, _ := g.adminRaw("PATCH", "/cacgate/accounts/john.q.doe", "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("PATCH: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567896", "username": "export"}, nil); code != http.StatusBadRequest {
		t.Errorf("reserved username: HTTP %d", code)
	}
}

func TestAdminAPIChangesAreAuditedAndImmediate(t *testing.T) {
	g := startGateway(t, "", "")
	logPath := filepath.Join(g.dir, "caddy.log")
	g.createAccount("1234567890", "john.q.doe")
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567891", "username": "jane.smith", "status": "pending"}, nil); code != http.StatusCreated {
		t.Fatalf("create pending: HTTP %d", code)
	}
	created := lastAudit(t, logPath, "admin.account.created")
	checkLocalAdmin(t, created)
	if created["outcome"] != audit.Success || created["username"] != "jane.smith" || created["edipi"] != "1234567891" {
		t.Errorf("created audit: %v", created)
	}

	// The card gets in; a disable refuses the very next request.
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before disable: HTTP %d", resp.StatusCode)
	}
	var acct admin.Account
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/disable", nil, &acct); code != http.StatusOK || acct.Status != "disabled" {
		t.Fatalf("disable: HTTP %d %+v", code, acct)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("request right after disable: HTTP %d, want 403", resp.StatusCode)
	}
	e := lastAudit(t, logPath, "admin.account.disabled")
	checkLocalAdmin(t, e)
	if e["username"] != "john.q.doe" || e["edipi"] != "1234567890" || e["outcome"] != audit.Success || e["node"] == "" || e["time"] == "" {
		t.Errorf("disable audit: %v", e)
	}
	// Enabling a pending account is refused: approval is its own act.
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/enable", nil, nil); code != http.StatusConflict {
		t.Errorf("enable pending: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.account.enabled"); e["outcome"] != audit.Failure || e["reason"] != "conflict" {
		t.Errorf("refused enable audit: %v", e)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/enable", nil, &acct); code != http.StatusOK || acct.Status != "active" {
		t.Fatalf("enable: HTTP %d", code)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("request right after enable: HTTP %d", resp.StatusCode)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/enable", nil, &acct); code != http.StatusOK || acct.Status != "active" {
		t.Errorf("enabling an active account: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.account.enabled"); e["changed"] != false {
		t.Errorf("no-op enable audit: %v", e)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/approve", nil, &acct); code != http.StatusOK || acct.Status != "active" {
		t.Fatalf("approve: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.account.approved"); e["username"] != "jane.smith" || e["outcome"] != audit.Success {
		t.Errorf("approve audit: %v", e)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/nobody/approve", nil, nil); code != http.StatusNotFound {
		t.Errorf("approve unknown: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.account.approved"); e["outcome"] != audit.Failure || e["reason"] != "not_found" {
		t.Errorf("failed approve audit: %v", e)
	}

	// Unlock lifts a password lockout.
	app, err := runningApp()
	if err != nil {
		t.Fatal(err)
	}
	g.adminDo("GET", "/cacgate/accounts/jane.smith", nil, &acct)
	stored, err := app.store.AccountByUsername(context.Background(), "jane.smith")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.store.RecordLoginFailure(context.Background(), stored.ID, time.Now(), time.Hour, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if g.adminDo("GET", "/cacgate/accounts/jane.smith", nil, &acct); acct.LockedUntil == nil || !acct.LockedUntil.After(time.Now()) {
		t.Fatalf("account not locked: %+v", acct.LockedUntil)
	}
	acct = admin.Account{} // a field the answer leaves out must not survive from the last one
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/unlock", nil, &acct); code != http.StatusOK || acct.LockedUntil != nil {
		t.Fatalf("unlock: HTTP %d, locked until %v", code, acct.LockedUntil)
	}
	if e := lastAudit(t, logPath, "admin.account.unlocked"); e["username"] != "jane.smith" || e["was_locked_until"] == nil {
		t.Errorf("unlock audit: %v", e)
	}

	// Groups: added (PUT and POST alike), removed, listed, audited.
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", admin.GroupsRequest{Groups: []string{"ops", "finance.readers"}}, &acct); code != http.StatusOK ||
		!slices.Equal(acct.Groups, []string{"finance.readers", "ops"}) {
		t.Fatalf("add groups: HTTP %d %v", code, acct.Groups)
	}
	if code := g.adminDo("PUT", "/cacgate/accounts/jane.smith/groups", admin.GroupsRequest{Groups: []string{"ops"}}, &acct); code != http.StatusOK || !slices.Equal(acct.Groups, []string{"ops"}) {
		t.Fatalf("PUT groups: HTTP %d %v", code, acct.Groups)
	}
	if e := lastAudit(t, logPath, "admin.groups.added"); e["username"] != "jane.smith" || e["outcome"] != audit.Success {
		t.Errorf("groups audit: %v", e)
	}
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/groups", admin.GroupsRequest{Groups: []string{"ops", "never.in"}}, &acct); code != http.StatusOK ||
		!slices.Equal(acct.Groups, []string{"finance.readers"}) {
		t.Fatalf("remove groups: HTTP %d %v", code, acct.Groups)
	}
	if e := lastAudit(t, logPath, "admin.groups.removed"); e["username"] != "john.q.doe" {
		t.Errorf("groups removed audit: %v", e)
	}
	var groups []admin.Group
	if code := g.adminDo("GET", "/cacgate/groups", nil, &groups); code != http.StatusOK ||
		!slices.Equal(groups, []admin.Group{{Name: "finance.readers", Accounts: 1}, {Name: "ops", Accounts: 1}}) {
		t.Fatalf("groups: HTTP %d %+v", code, groups)
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/cacgate/accounts/john.q.doe/groups", `{"groups":["Ops Team"]}`, http.StatusBadRequest},
		{"POST", "/cacgate/accounts/john.q.doe/groups", `{"groups":[]}`, http.StatusBadRequest},
		{"POST", "/cacgate/accounts/john.q.doe/groups", `{"group":["ops"]}`, http.StatusBadRequest},
		{"POST", "/cacgate/accounts/john.q.doe/groups", `{"groups":["ops"]} {"groups":["x"]}`, http.StatusBadRequest},
		{"POST", "/cacgate/accounts/john.q.doe/groups", ``, http.StatusBadRequest},
		{"POST", "/cacgate/accounts/nobody/groups", `{"groups":["ops"]}`, http.StatusNotFound},
		{"DELETE", "/cacgate/accounts/Nobody/groups", `{"groups":["ops"]}`, http.StatusBadRequest},
		{"POST", "/cacgate/accounts", `{"edipi":"1234567899","username":"x.y","groups":"ops"}`, http.StatusBadRequest},
		{"POST", "/cacgate/accounts", `{"edipi":"1234567899","username":"x.y","pad":"` + strings.Repeat("a", admin.MaxJSONBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"POST", "/cacgate/accounts/john.q.doe/cards", `{"certificate":"` + strings.Repeat("A", admin.MaxJSONBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"POST", "/cacgate/accounts/john.q.doe/cards", `{"certificate":"not a pem"}`, http.StatusBadRequest},
		{"DELETE", "/cacgate/accounts/john.q.doe/cards/" + strings.Repeat("A", 64), ``, http.StatusBadRequest},
		{"DELETE", "/cacgate/accounts/john.q.doe/cards/" + strings.Repeat("ab", 32), ``, http.StatusNotFound},
	} {
		code, _, body := g.adminRaw(tc.method, tc.path, "application/json", []byte(tc.body))
		if code != tc.want {
			t.Errorf("%s %s %.60s: HTTP %d, want %d: %s", tc.method, tc.path, tc.body, code, tc.want, body)
			continue
		}
		adminErrorText(t, body)
	}
	if e := lastAudit(t, logPath, "admin.card.unlinked"); e["outcome"] != audit.Failure || e["reason"] != "not_found" || e["cert_sha256"] != strings.Repeat("ab", 32) {
		t.Errorf("failed unlink audit: %v", e)
	}

	// Cards: linked by PEM and unlinked, both audited with the card.
	leaf := card(t, "doe.john.quincy.piv")
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/cards", admin.LinkCardRequest{Certificate: string(pemChain(leaf.Chain[:1]))}, &acct); code != http.StatusCreated {
		t.Fatalf("link: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.card.linked"); e["cert_sha256"] != fingerprint(leaf) || e["username"] != "john.q.doe" {
		t.Errorf("link audit: %v", e)
	}
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/cards/"+fingerprint(leaf), nil, nil); code != http.StatusNoContent {
		t.Fatalf("unlink: HTTP %d", code)
	}
	e = lastAudit(t, logPath, "admin.card.unlinked")
	checkLocalAdmin(t, e)
	if e["outcome"] != audit.Success || e["cert_sha256"] != fingerprint(leaf) {
		t.Errorf("unlink audit: %v", e)
	}
}

// csvOf writes accounts in the import/export format.
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

func TestAdminAPIImportExport(t *testing.T) {
	g := startGateway(t, "", "")
	logPath := filepath.Join(g.dir, "caddy.log")
	john := card(t, "doe.john.quincy")
	legacy := []*store.Account{
		{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe", Email: "john.q.doe@mail.mil",
			Groups: []string{"ops"}, Cards: []store.Card{{Fingerprint: fingerprint(john)}}},
		{Username: "jane.smith", EDIPI: "1234567891", GivenName: "Jane", FamilyName: "Smith", Status: store.StatusPending},
		// A name a spreadsheet would run as a formula survives the round trip.
		{Username: "robert.e.johnson", EDIPI: "1234567892", GivenName: "=HYPERLINK(1)", FamilyName: "Johnson", Categories: []string{"Active Army"}},
	}
	importCSV := func(query string, data []byte) (int, admin.ImportReport, string) {
		t.Helper()
		code, _, body := g.adminRaw("POST", "/cacgate/accounts/import"+query, "text/csv; charset=utf-8", data)
		var report admin.ImportReport
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &report); err != nil {
				t.Fatal(err)
			}
			return code, report, ""
		}
		return code, report, adminErrorText(t, body)
	}
	total := func() int {
		t.Helper()
		var page admin.AccountPage
		g.adminDo("GET", "/cacgate/accounts", nil, &page)
		return page.Total
	}

	code, report, msg := importCSV("", csvOf(t, legacy...))
	if code != http.StatusOK || report.Records != 3 || report.Imported != 3 || report.Cards != 1 || report.Skipped != 0 || report.OnConflict != "fail" {
		t.Fatalf("import: HTTP %d %+v %s", code, report, msg)
	}
	e := lastAudit(t, logPath, admin.EventImport)
	checkLocalAdmin(t, e)
	if e["outcome"] != audit.Success || e["records"] != 3.0 || e["imported"] != 3.0 || e["source"] != "admin API" {
		t.Errorf("import audit: %v", e)
	}
	// The imported card is an enrolled card at once.
	c := g.client(john)
	g.accept(t, c, "main")
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK || g.backend.last(t).Get("X-Remote-User") != "john.q.doe" {
		t.Fatalf("imported card: HTTP %d", resp.StatusCode)
	}

	// The same accounts again: refused whole, by the first clash.
	code, _, msg = importCSV("?on_conflict=fail", csvOf(t, legacy...))
	if code != http.StatusConflict || !strings.Contains(msg, "record 1 (line 2)") || !strings.Contains(msg, "nothing was imported") {
		t.Errorf("clashing import: HTTP %d %q", code, msg)
	}
	if e := lastAudit(t, logPath, admin.EventImport); e["outcome"] != audit.Failure || e["failed_record"] != 1.0 || e["reason"] != "conflict" {
		t.Errorf("failed import audit: %v", e)
	}
	// Skipping them stores the new one and lists the rest by number.
	newcomer := &store.Account{Username: "luis.a.garcia", EDIPI: "1234567896"}
	code, report, msg = importCSV("?on_conflict=skip", csvOf(t, append(slices.Clone(legacy), newcomer)...))
	if code != http.StatusOK || report.Imported != 1 || report.Skipped != 3 || len(report.SkippedRecords) != 3 ||
		report.SkippedRecords[2] != (admin.SkippedRecord{Record: 3, Line: 4, Username: "robert.e.johnson", Taken: "username"}) {
		t.Fatalf("skipping import: HTTP %d %+v %s", code, report, msg)
	}
	if e := lastAudit(t, logPath, admin.EventImport); e["skipped"] != 3.0 || e["on_conflict"] != "skip" {
		t.Errorf("skipping import audit: %v", e)
	}

	// Bad records: named by number and line, their content never echoed
	// or logged, and nothing stored.
	const marker = "leak.marker@mail.mil"
	bad := []*store.Account{
		{Username: "good.one", EDIPI: "1234500001", Email: marker},
		{Username: "bad.edipi", EDIPI: "99999", Email: marker},
	}
	code, _, msg = importCSV("", csvOf(t, bad...))
	t.Logf("invalid record: %s", msg)
	if code != http.StatusUnprocessableEntity || !strings.Contains(msg, "record 2 (line 3), edipi") || strings.Contains(msg, "99999") {
		t.Errorf("invalid record: HTTP %d %q", code, msg)
	}
	if e := lastAudit(t, logPath, admin.EventImport); e["failed_record"] != 2.0 || e["reason"] != "invalid_records" {
		t.Errorf("invalid import audit: %v", e)
	}
	for _, tc := range []struct {
		name, csv, want string
	}{
		{"unknown column", "username,edipi,password\nx.y,1234500002,hunter2\n", "CSV header, line 1, column 3"},
		{"short row", "username,edipi,email\nx.y,1234500002," + marker + "\nz.w,1234500003\n", "record 2, CSV line 3"},
		{"bare quote", "username,edipi\nx.y,12345\"00002\n", "record 1, CSV line 2"},
		{"no header", "", "CSV header"},
	} {
		code, _, msg := importCSV("", []byte(tc.csv))
		t.Logf("%s: %s", tc.name, msg)
		if code != http.StatusUnprocessableEntity || !strings.Contains(msg, tc.want) || strings.Contains(msg, "hunter2") {
			t.Errorf("%s: HTTP %d %q, want 422 naming %q", tc.name, code, msg, tc.want)
		}
	}
	if n := total(); n != 4 {
		t.Errorf("%d accounts after the failed imports, want 4", n)
	}
	if log, err := os.ReadFile(logPath); err != nil || bytes.Contains(log, []byte(marker)) || bytes.Contains(log, []byte("hunter2")) {
		t.Errorf("the log holds CSV content (or cannot be read: %v)", err)
	}

	for _, tc := range []struct {
		query, contentType string
		want               int
	}{
		{"", "application/json", http.StatusUnsupportedMediaType},
		{"", "", http.StatusUnsupportedMediaType},
		{"?on_conflict=overwrite", "text/csv", http.StatusBadRequest},
		{"?dry_run=1", "text/csv", http.StatusBadRequest},
	} {
		if code, _, body := g.adminRaw("POST", "/cacgate/accounts/import"+tc.query, tc.contentType, csvOf(t, newcomer)); code != tc.want {
			t.Errorf("import%s as %q: HTTP %d, want %d: %s", tc.query, tc.contentType, code, tc.want, body)
		}
	}
	defer func(n int64) { maxImportBody = n }(maxImportBody)
	maxImportBody = 100
	if code, _, msg := importCSV("", csvOf(t, legacy...)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized import: HTTP %d %q", code, msg)
	}
	if e := lastAudit(t, logPath, admin.EventImport); e["reason"] != "too_large" {
		t.Errorf("oversized import audit: %v", e)
	}

	// Export: every account, streamed as CSV, the count last.
	code, hdr, body := g.adminRaw("GET", "/cacgate/accounts/export", "", nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || hdr.Get(admin.ExportCountTrailer) != "4" {
		t.Fatalf("export: HTTP %d %v", code, hdr)
	}
	rd := accountcsv.NewReader(bytes.NewReader(body))
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
	if len(got) != 4 || got["robert.e.johnson"].GivenName != "=HYPERLINK(1)" || !bytes.Contains(body, []byte("'=HYPERLINK(1)")) ||
		len(got["john.q.doe"].Cards) != 1 || got["john.q.doe"].Cards[0].Fingerprint != fingerprint(john) ||
		!slices.Equal(got["john.q.doe"].Groups, []string{"ops"}) || got["jane.smith"].Status != store.StatusPending ||
		!slices.Equal(got["robert.e.johnson"].Categories, []string{"Active Army"}) {
		t.Errorf("export:\n%s", body)
	}
	if e := lastAudit(t, logPath, admin.EventExport); e["accounts"] != 4.0 || e["outcome"] != audit.Success {
		t.Errorf("export audit: %v", e)
	}
	if code, _, _ := g.adminRaw("GET", "/cacgate/accounts/export?format=json", "", nil); code != http.StatusBadRequest {
		t.Errorf("export with a query: HTTP %d", code)
	}
}
