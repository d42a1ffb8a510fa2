package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/store"
)

// adminRaw calls the admin API with a raw body and returns the status, the
// headers (with trailers) and the body.
func (g *gateway) adminRaw(method, path, contentType string, body []byte) (int, http.Header, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(method, "http://"+g.admin+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
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
	for _, a := range []NewAccountRequest{
		{EDIPI: "1234567890", Username: "john.q.doe", GivenName: "John", FamilyName: "Doe", Email: "john.q.doe@mail.mil", Groups: []string{"ops"}},
		{EDIPI: "1234567891", Username: "jane.smith", GivenName: "Jane", FamilyName: "Smith", Status: "pending"},
		{EDIPI: "1234567892", Username: "robert.e.johnson", GivenName: "Robert", FamilyName: "Johnson", Groups: []string{"ops", "finance.readers"}},
	} {
		if code := g.adminDo("POST", "/cacgate/accounts", a, nil); code != http.StatusCreated {
			t.Fatalf("creating %s: HTTP %d", a.Username, code)
		}
	}
	search := func(query string) AccountPageJSON {
		t.Helper()
		var page AccountPageJSON
		if code := g.adminDo("GET", "/cacgate/accounts"+query, nil, &page); code != http.StatusOK {
			t.Fatalf("GET /cacgate/accounts%s: HTTP %d", query, code)
		}
		return page
	}
	usernames := func(p AccountPageJSON) []string {
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
	if p := search(""); p.Limit != defaultPageLimit || p.Accounts[1].Groups[0] != "ops" {
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

	var acct AccountJSON
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
	if created["outcome"] != outcomeSuccess || created["username"] != "jane.smith" || created["edipi"] != "1234567891" {
		t.Errorf("created audit: %v", created)
	}

	// The card gets in; a disable refuses the very next request.
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before disable: HTTP %d", resp.StatusCode)
	}
	var acct AccountJSON
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/disable", nil, &acct); code != http.StatusOK || acct.Status != "disabled" {
		t.Fatalf("disable: HTTP %d %+v", code, acct)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("request right after disable: HTTP %d, want 403", resp.StatusCode)
	}
	e := lastAudit(t, logPath, "admin.account.disabled")
	checkLocalAdmin(t, e)
	if e["username"] != "john.q.doe" || e["edipi"] != "1234567890" || e["outcome"] != outcomeSuccess || e["node"] == "" || e["time"] == "" {
		t.Errorf("disable audit: %v", e)
	}
	// Enabling a pending account is refused: approval is its own act.
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/enable", nil, nil); code != http.StatusConflict {
		t.Errorf("enable pending: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.account.enabled"); e["outcome"] != outcomeFailure || e["reason"] != "conflict" {
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
	if e := lastAudit(t, logPath, "admin.account.approved"); e["username"] != "jane.smith" || e["outcome"] != outcomeSuccess {
		t.Errorf("approve audit: %v", e)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/nobody/approve", nil, nil); code != http.StatusNotFound {
		t.Errorf("approve unknown: HTTP %d", code)
	}
	if e := lastAudit(t, logPath, "admin.account.approved"); e["outcome"] != outcomeFailure || e["reason"] != "not_found" {
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
	acct = AccountJSON{} // a field the answer leaves out must not survive from the last one
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/unlock", nil, &acct); code != http.StatusOK || acct.LockedUntil != nil {
		t.Fatalf("unlock: HTTP %d, locked until %v", code, acct.LockedUntil)
	}
	if e := lastAudit(t, logPath, "admin.account.unlocked"); e["username"] != "jane.smith" || e["was_locked_until"] == nil {
		t.Errorf("unlock audit: %v", e)
	}

	// Groups: added (PUT and POST alike), removed, listed, audited.
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", GroupsRequest{Groups: []string{"ops", "finance.readers"}}, &acct); code != http.StatusOK ||
		!slices.Equal(acct.Groups, []string{"finance.readers", "ops"}) {
		t.Fatalf("add groups: HTTP %d %v", code, acct.Groups)
	}
	if code := g.adminDo("PUT", "/cacgate/accounts/jane.smith/groups", GroupsRequest{Groups: []string{"ops"}}, &acct); code != http.StatusOK || !slices.Equal(acct.Groups, []string{"ops"}) {
		t.Fatalf("PUT groups: HTTP %d %v", code, acct.Groups)
	}
	if e := lastAudit(t, logPath, "admin.groups.added"); e["username"] != "jane.smith" || e["outcome"] != outcomeSuccess {
		t.Errorf("groups audit: %v", e)
	}
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/groups", GroupsRequest{Groups: []string{"ops", "never.in"}}, &acct); code != http.StatusOK ||
		!slices.Equal(acct.Groups, []string{"finance.readers"}) {
		t.Fatalf("remove groups: HTTP %d %v", code, acct.Groups)
	}
	if e := lastAudit(t, logPath, "admin.groups.removed"); e["username"] != "john.q.doe" {
		t.Errorf("groups removed audit: %v", e)
	}
	var groups []GroupJSON
	if code := g.adminDo("GET", "/cacgate/groups", nil, &groups); code != http.StatusOK ||
		!slices.Equal(groups, []GroupJSON{{Name: "finance.readers", Accounts: 1}, {Name: "ops", Accounts: 1}}) {
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
		{"POST", "/cacgate/accounts", `{"edipi":"1234567899","username":"x.y","pad":"` + strings.Repeat("a", maxJSONBody) + `"}`, http.StatusRequestEntityTooLarge},
		{"POST", "/cacgate/accounts/john.q.doe/cards", `{"certificate":"` + strings.Repeat("A", maxJSONBody) + `"}`, http.StatusRequestEntityTooLarge},
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
	if e := lastAudit(t, logPath, "admin.card.unlinked"); e["outcome"] != outcomeFailure || e["reason"] != "not_found" || e["cert_sha256"] != strings.Repeat("ab", 32) {
		t.Errorf("failed unlink audit: %v", e)
	}

	// Cards: linked by PEM and unlinked, both audited with the card.
	leaf := card(t, "doe.john.quincy.piv")
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/cards", LinkCardRequest{Certificate: string(pemChain(leaf.Chain[:1]))}, &acct); code != http.StatusCreated {
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
	if e["outcome"] != outcomeSuccess || e["cert_sha256"] != fingerprint(leaf) {
		t.Errorf("unlink audit: %v", e)
	}
}

// TestAPIActor checks whose name admin changes are recorded under.
func TestAPIActor(t *testing.T) {
	r := httptest.NewRequest("POST", "/cacgate/accounts/x/disable", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	if a := apiActor(r); a.identity != "local" || a.source != "127.0.0.1:5555" || a.certSHA256 != "" {
		t.Errorf("local admin: %+v", a)
	}
	// Caddy's remote admin requires a client certificate: its subject is
	// the admin.
	adminCert := card(t, "smith.jane").Cert
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{adminCert}}
	r.RemoteAddr = "192.0.2.7:443"
	a := apiActor(r)
	if !strings.Contains(a.identity, "CN=SMITH.JANE.1234567891") || a.source != "192.0.2.7:443" || a.certSHA256 != certFingerprint(adminCert.Raw) {
		t.Errorf("remote admin: %+v", a)
	}
	var names []string
	for _, f := range a.fields() {
		names = append(names, f.Key)
	}
	if !slices.Equal(names, []string{"admin", "admin_source", "admin_cert_sha256"}) {
		t.Errorf("actor fields: %v", names)
	}
}

// TestReasonOf keeps audit reasons to codes, never error text.
func TestReasonOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{badRequest(store.ErrInvalidQuery), "invalid_request"},
		{notFound("no account %q", "x"), "not_found"},
		{conflict("taken"), "conflict"},
		{unprocessable(store.ErrInvalidAccount), "invalid_records"},
		{io.ErrUnexpectedEOF, "error"},
	} {
		if got := reasonOf(tc.err); got != tc.want {
			t.Errorf("reasonOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
