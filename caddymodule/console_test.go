package caddymodule

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/internal/ui"
)

// The help-desk console at /.cacgate/admin, driven over real mTLS with an
// administrator's card, a read-only card and a card of neither group.

const consoleSite = `admin_group helpdesk
			admin_read_group auditors
			contact {
				name "Service Desk"
				phone "+1 555 0100"
				email help@example.mil
				hours "24/7"
				url https://help.example.mil/cac
			}`

// consoleFixture is a gateway with the console on and three people: an
// administrator (John Doe, helpdesk), a read-only auditor (Jane Smith),
// and Robert Johnson, in no group.
type consoleFixture struct {
	g                     *testGateway
	admin, reader, nobody *http.Client
	adminCard             *testpki.Card
}

func startConsole(t *testing.T) *consoleFixture {
	t.Helper()
	g := startGateway(t, "", consoleSite)
	for _, a := range []struct{ edipi, username, group string }{
		{"1234567890", "john.q.doe", "helpdesk"},
		{"1234567891", "jane.smith", "auditors"},
		{"1234567892", "robert.johnson", ""},
	} {
		g.createAccount(a.edipi, a.username)
		if a.group != "" {
			if code := g.adminDo("POST", "/cacgate/accounts/"+a.username+"/groups", map[string]any{"groups": []string{a.group}}, nil); code != http.StatusOK {
				t.Fatalf("adding %s to %s: HTTP %d", a.username, a.group, code)
			}
		}
	}
	f := &consoleFixture{g: g, adminCard: card(t, "doe.john.quincy")}
	f.admin = g.client(f.adminCard)
	f.reader = g.client(card(t, "smith.jane"))
	f.nobody = g.client(card(t, "johnson.robert.e.jr"))
	for _, c := range []*http.Client{f.admin, f.reader, f.nobody} {
		g.accept(t, c, "main")
	}
	return f
}

// page GETs a console page as a browser.
func (f *consoleFixture) page(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	return request(t, c, "GET", f.g.url("main", path), browser, nil)
}

// post submits a console form with the CSRF token of page.
func (f *consoleFixture) post(t *testing.T, c *http.Client, page, path string, fields url.Values) (*http.Response, string) {
	t.Helper()
	form := url.Values{"csrf": {formValue(t, page, "csrf")}}
	for k, v := range fields {
		form[k] = v
	}
	return request(t, c, "POST", f.g.url("main", path), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"},
	}, strings.NewReader(form.Encode()))
}

func (f *consoleFixture) account(t *testing.T, username string) AccountJSON {
	t.Helper()
	var a AccountJSON
	if code := f.g.adminDo("GET", "/cacgate/accounts/"+username, nil, &a); code != http.StatusOK {
		t.Fatalf("GET account %s: HTTP %d", username, code)
	}
	return a
}

func (f *consoleFixture) auditLog() string { return filepath.Join(f.g.dir, "caddy.log") }

// checkConsoleActor checks that an audit entry names the console's
// administrator as the admin API names a client certificate.
func checkConsoleActor(t *testing.T, e map[string]any, c *testpki.Card, username string) {
	t.Helper()
	if e["admin"] != c.Cert.Subject.ToRDNSequence().String() && !strings.Contains(e["admin"].(string), "DOE.JOHN.QUINCY") {
		t.Errorf("audit admin = %v, want the card's subject", e["admin"])
	}
	if e["admin_cert_sha256"] != fingerprint(c) {
		t.Errorf("audit admin_cert_sha256 = %v, want %s", e["admin_cert_sha256"], fingerprint(c))
	}
	if e["admin_username"] != username || e["admin_via"] != "console" {
		t.Errorf("audit admin_username = %v, admin_via = %v", e["admin_username"], e["admin_via"])
	}
	if src, _ := e["admin_source"].(string); !strings.HasPrefix(src, "127.0.0.1") {
		t.Errorf("audit admin_source = %v", e["admin_source"])
	}
}

func TestConsoleAdminActions(t *testing.T) {
	f := startConsole(t)
	g := f.g
	// A pending account with a registered card: Luis Garcia.
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]any{"edipi": "1234567896", "username": "luis.garcia",
		"given_name": "Luis", "family_name": "Garcia", "status": "pending"}, nil); code != http.StatusCreated {
		t.Fatalf("creating luis.garcia: HTTP %d", code)
	}
	garcia := card(t, "garcia.luis.a")
	if code := g.adminDo("POST", "/cacgate/accounts/luis.garcia/cards", map[string]any{"certificate": string(pemChain(garcia.Chain[:1]))}, nil); code != http.StatusCreated {
		t.Fatalf("linking garcia's card: HTTP %d", code)
	}

	// The first page: counts and the approval queue.
	resp, home := f.page(t, f.admin, "/.cacgate/admin")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("console home: HTTP %d: %s", resp.StatusCode, home)
	}
	for _, want := range []string{"Waiting for approval (1)", "luis.garcia", "Approve", "Service Desk", `href="mailto:help@example.mil"`, `href="tel:&#43;15550100"`} {
		if !strings.Contains(home, want) {
			t.Errorf("console home lacks %q", want)
		}
	}

	// Search → account.
	_, found := f.page(t, f.admin, "/.cacgate/admin/accounts?q=garcia")
	if !strings.Contains(found, `href="/.cacgate/admin/accounts/luis.garcia"`) || !strings.Contains(found, "Accounts 1–1 of 1") {
		t.Fatalf("search for garcia: %s", found)
	}
	_, found = f.page(t, f.admin, "/.cacgate/admin/accounts?status=pending")
	if !strings.Contains(found, "luis.garcia") || strings.Contains(found, "john.q.doe</a>") {
		t.Errorf("search by state pending lists the wrong accounts")
	}
	_, page := f.page(t, f.admin, "/.cacgate/admin/accounts/luis.garcia")
	for _, want := range []string{"Account luis.garcia", "1234567896", "pending", garcia.Cert.Subject.CommonName, "Clear registration"} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q", want)
		}
	}

	// Approve from the queue.
	resp, _ = f.post(t, f.admin, home, "/.cacgate/admin/accounts/luis.garcia/approve", url.Values{"from": {"queue"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/.cacgate/admin?done=approved" {
		t.Fatalf("approve: HTTP %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if a := f.account(t, "luis.garcia"); a.Status != "active" {
		t.Fatalf("after approve: status %s", a.Status)
	}
	checkConsoleActor(t, lastAudit(t, f.auditLog(), "admin.account.approved"), f.adminCard, "john.q.doe")

	// Every other action, each changing the account and audited.
	steps := []struct {
		action string
		fields url.Values
		check  func(a AccountJSON) bool
		event  string
	}{
		{"disable", url.Values{"reason": {"ticket 4711: card reported lost"}}, func(a AccountJSON) bool { return a.Status == "disabled" }, "admin.account.disabled"},
		{"enable", url.Values{"reason": {"ticket 4712: card found"}}, func(a AccountJSON) bool { return a.Status == "active" }, "admin.account.enabled"},
		{"add-group", url.Values{"group": {"ops"}}, func(a AccountJSON) bool { return strings.Contains(strings.Join(a.Groups, ","), "ops") }, "admin.groups.added"},
		{"remove-group", url.Values{"group": {"ops"}}, func(a AccountJSON) bool { return len(a.Groups) == 0 }, "admin.groups.removed"},
		{"unlock", nil, func(a AccountJSON) bool { return a.LockedUntil == nil }, "admin.account.unlocked"},
		{"clear-card", url.Values{"sha256": {fingerprint(garcia)}}, func(a AccountJSON) bool { return len(a.Cards) == 0 }, "admin.card.unlinked"},
	}
	for _, s := range steps {
		_, page = f.page(t, f.admin, "/.cacgate/admin/accounts/luis.garcia")
		resp, body := f.post(t, f.admin, page, "/.cacgate/admin/accounts/luis.garcia/"+s.action, s.fields)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: HTTP %d: %s", s.action, resp.StatusCode, body)
		}
		if !s.check(f.account(t, "luis.garcia")) {
			t.Errorf("%s did not change the account: %+v", s.action, f.account(t, "luis.garcia"))
		}
		e := lastAudit(t, f.auditLog(), s.event)
		checkConsoleActor(t, e, f.adminCard, "john.q.doe")
		if e["username"] != "luis.garcia" || e["outcome"] != "success" {
			t.Errorf("%s audit: %v", s.action, e)
		}
		if r := s.fields.Get("reason"); r != "" && e["comment"] != r {
			t.Errorf("%s audit comment = %v, want %q", s.action, e["comment"], r)
		}
	}

	// A refused change re-renders the page with why and what was typed.
	_, page = f.page(t, f.admin, "/.cacgate/admin/accounts/luis.garcia")
	resp, body := f.post(t, f.admin, page, "/.cacgate/admin/accounts/luis.garcia/add-group", url.Values{"group": {"Bad Group!"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Nothing was changed") || !strings.Contains(body, `value="Bad Group!"`) {
		t.Errorf("bad group: HTTP %d, page keeps the input: %v", resp.StatusCode, strings.Contains(body, `value="Bad Group!"`))
	}
	resp, _ = f.post(t, f.admin, page, "/.cacgate/admin/accounts/luis.garcia/require-password-reset", nil)
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("require a reset without a password: HTTP %d, want 409", resp.StatusCode)
	}
	if e := lastAudit(t, f.auditLog(), "admin.password.reset_required"); e["outcome"] != "failure" || e["reason"] != "conflict" {
		t.Errorf("refused reset audit: %v", e)
	}

	// Without the CSRF token nothing happens.
	resp, _ = request(t, f.admin, "POST", g.url("main", "/.cacgate/admin/accounts/luis.garcia/disable"), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}, strings.NewReader("reason=x"))
	if resp.StatusCode != http.StatusForbidden || f.account(t, "luis.garcia").Status != "active" {
		t.Errorf("POST without CSRF: HTTP %d, status %s", resp.StatusCode, f.account(t, "luis.garcia").Status)
	}

	// The account page shows the history the actions left, on any node:
	// it is read from the account database.
	deadline := time.Now().Add(time.Minute)
	for {
		_, page = f.page(t, f.admin, "/.cacgate/admin/accounts/luis.garcia")
		if strings.Contains(page, "admin.card.unlinked") && strings.Contains(page, "ticket 4711") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the account page does not show the recent events:\n%s", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsoleReadOnlyAndRefused(t *testing.T) {
	f := startConsole(t)
	// Read-only: sees the pages, no forms, and a change is refused.
	resp, page := f.page(t, f.reader, "/.cacgate/admin/accounts/robert.johnson")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "read-only") {
		t.Fatalf("read-only account page: HTTP %d", resp.StatusCode)
	}
	if strings.Contains(page, `name="csrf"`) || strings.Contains(page, "<button") {
		t.Error("the read-only page offers forms")
	}
	_, adminPage := f.page(t, f.admin, "/.cacgate/admin/accounts/robert.johnson")
	// Even with a valid token (the reader's own would be bound to their
	// card), a reader cannot change anything.
	resp, _ = f.post(t, f.reader, adminPage, "/.cacgate/admin/accounts/robert.johnson/disable", url.Values{"reason": {"x"}})
	if resp.StatusCode != http.StatusForbidden || f.account(t, "robert.johnson").Status != "active" {
		t.Errorf("read-only disable: HTTP %d, status %s", resp.StatusCode, f.account(t, "robert.johnson").Status)
	}
	if e := lastAudit(t, f.auditLog(), "admin.console.refused"); e["reason"] != "read_only" || e["username"] != "jane.smith" {
		t.Errorf("read-only refusal audit: %v", e)
	}

	// Neither group: every console page is refused, and audited.
	for _, path := range []string{"/.cacgate/admin", "/.cacgate/admin/accounts?q=a", "/.cacgate/admin/accounts/john.q.doe", "/.cacgate/admin/status"} {
		resp, body := f.page(t, f.nobody, path)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "1234567890") {
			t.Errorf("GET %s as a non-admin: HTTP %d", path, resp.StatusCode)
		}
	}
	if e := lastAudit(t, f.auditLog(), "admin.console.refused"); e["reason"] != "not_in_group" || e["username"] != "robert.johnson" {
		t.Errorf("refusal audit: %v", e)
	}

	// No card: the gateway's "insert your card" page, never the console.
	resp, body := request(t, f.g.client(nil), "GET", f.g.url("main", "/.cacgate/admin"), browser, nil)
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "Help-desk console") {
		t.Errorf("no card: HTTP %d", resp.StatusCode)
	}
	// ...which shows the help desk.
	if !strings.Contains(body, "Service Desk") || !strings.Contains(body, "https://help.example.mil/cac") {
		t.Errorf("the no-card page lacks the help-desk block")
	}
}

func TestConsoleAnnouncements(t *testing.T) {
	f := startConsole(t)
	g := f.g
	_, page := f.page(t, f.admin, "/.cacgate/admin/announcements")
	end := time.Now().UTC().Add(2 * time.Hour).Format("2006-01-02T15:04")
	msg := "Maintenance tonight <b>22:00</b> & the portal is down"
	// A bad form is shown again with what was typed.
	resp, body := f.post(t, f.admin, page, "/.cacgate/admin/announcements", url.Values{"severity": {"outage"}, "message": {msg}, "end": {"soon"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Maintenance tonight &lt;b&gt;22:00&lt;/b&gt;") {
		t.Fatalf("bad announcement: HTTP %d", resp.StatusCode)
	}
	resp, body = f.post(t, f.admin, page, "/.cacgate/admin/announcements", url.Values{"severity": {"outage"}, "message": {msg}, "end": {end}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving an announcement: HTTP %d: %s", resp.StatusCode, body)
	}
	checkConsoleActor(t, lastAudit(t, f.auditLog(), "admin.announcement.created"), f.adminCard, "john.q.doe")

	// Shown, as text, on the banner page and the no-card page.
	escaped := "Maintenance tonight &lt;b&gt;22:00&lt;/b&gt; &amp; the portal is down"
	shown := func(c *http.Client, path string) bool {
		_, body := request(t, c, "GET", g.url("main", path), browser, nil)
		return strings.Contains(body, escaped) && strings.Contains(body, "Outage:")
	}
	fresh := g.client(card(t, "obrien-smith.mary.ann.k"))
	waitUntil(t, "the announcement on the banner page", func() bool { return shown(fresh, "/.cacgate/consent?next=/") })
	if !shown(g.client(nil), "/") {
		t.Error("the no-card page does not show the announcement")
	}
	var list []map[string]any
	if code := g.adminDo("GET", "/cacgate/announcements", nil, &list); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("admin API announcements: HTTP %d, %v", code, list)
	}

	// Deleted in the console: gone from the pages.
	_, page = f.page(t, f.admin, "/.cacgate/admin/announcements")
	id := int(list[0]["id"].(float64))
	resp, _ = f.post(t, f.admin, page, "/.cacgate/admin/announcements/"+itoa(id)+"/delete", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("deleting: HTTP %d", resp.StatusCode)
	}
	waitUntil(t, "the announcement gone", func() bool { return !shown(g.client(nil), "/") })
	if e := lastAudit(t, f.auditLog(), "admin.announcement.deleted"); e["outcome"] != "success" {
		t.Errorf("delete audit: %v", e)
	}
}

// waitUntil polls cond every 50ms for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestConsoleCaddyfileErrors(t *testing.T) {
	for _, src := range []string{
		"cacgate {\ncontact\n}",
		"cacgate {\ncontact {\nfax 1\n}\n}",
		"cacgate {\ncontact {\nname a\nname b\n}\n}",
		"cacgate {\ncontact {\nname a b\n}\n}",
		"cacgate {\nadmin_group\n}",
		"cacgate {\nadmin_group a\nadmin_group b\n}",
	} {
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("no error for:\n%s", src)
		}
	}
	for _, src := range []string{
		"cacgate {\nevent_history on\n}",
		"cacgate {\nevent_history {\nmax_age\n}\n}",
		"cacgate {\nevent_history {\nkeep 1\n}\n}",
	} {
		if err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("no error for:\n%s", src)
		}
	}
	a := new(App)
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("cacgate {\nevent_history off\n}")); err != nil || !a.EventHistory.Off {
		t.Errorf("event_history off: %v %+v", err, a.EventHistory)
	}
}

func TestConsoleValidate(t *testing.T) {
	valid := Handler{ConsentTTL: caddy.Duration(time.Hour)}
	for name, h := range map[string]Handler{
		"bad group":        {AdminGroup: "Help Desk"},
		"same groups":      {AdminGroup: "helpdesk", AdminReadGroup: "helpdesk"},
		"bad email":        {HelpDesk: &ui.HelpDesk{Email: "Help <help@example.mil>"}},
		"javascript url":   {HelpDesk: &ui.HelpDesk{URL: "javascript:alert(1)"}},
		"relative url":     {HelpDesk: &ui.HelpDesk{URL: "/help"}},
		"control in hours": {HelpDesk: &ui.HelpDesk{Hours: "9\x1b[31m-5"}},
		"empty block":      {HelpDesk: &ui.HelpDesk{}},
	} {
		h.ConsentTTL = valid.ConsentTTL
		if err := h.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ok := Handler{ConsentTTL: valid.ConsentTTL, AdminGroup: "helpdesk", AdminReadGroup: "auditors",
		HelpDesk: &ui.HelpDesk{Name: "Desk", Email: "help@example.mil", URL: "https://help.example.mil"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid handler: %v", err)
	}
	if ok.contactText() != "Desk, help@example.mil" {
		t.Errorf("contact text = %q", ok.contactText())
	}
	if err := (&App{EventHistory: &EventHistoryConfig{MaxAge: caddy.Duration(time.Minute)}}).EventHistory.validate(); err == nil {
		t.Error("event_history max_age 1m: no error")
	}
}

// TestConsoleAccountKinds: the account page names what an account is
// known by: a federal PIV holder's card UUID (no DoD ID), and a utility
// account's sponsor and expiry.
func TestConsoleAccountKinds(t *testing.T) {
	f := startConsole(t)
	g := f.g
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"username": "jane.federal", "credential": "piv",
		"key": testpki.FederalPIVUUID}, nil); code != http.StatusCreated {
		t.Fatalf("creating the PIV account: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/utility", map[string]any{"username": "svc.feed", "name": "Feed",
		"sponsor": "john.q.doe", "expires_at": time.Now().Add(48 * time.Hour)}, nil); code != http.StatusCreated {
		t.Fatalf("creating the utility account: HTTP %d", code)
	}
	_, page := f.page(t, f.admin, "/.cacgate/admin/accounts/jane.federal")
	for _, want := range []string{"federal PIV, card UUID " + testpki.FederalPIVUUID, "A certificate of this credential"} {
		if !strings.Contains(page, want) {
			t.Errorf("PIV account page lacks %q", want)
		}
	}
	if strings.Contains(page, "<dt>DoD ID</dt>") {
		t.Errorf("PIV account page shows a DoD ID")
	}
	_, page = f.page(t, f.admin, "/.cacgate/admin/accounts/svc.feed")
	for _, want := range []string{"a utility (non-person) account", "<dt>Sponsor</dt>", "<dt>Expires</dt>"} {
		if !strings.Contains(page, want) {
			t.Errorf("utility account page lacks %q", want)
		}
	}
}
