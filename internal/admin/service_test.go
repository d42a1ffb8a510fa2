package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// TestAPIActor checks whose name admin changes are recorded under.
func TestAPIActor(t *testing.T) {
	r := httptest.NewRequest("POST", "/cacgate/accounts/x/disable", nil)
	r.RemoteAddr = "127.0.0.1:5555"
	if a := APIActor(r); a.Identity != "local" || a.Source != "127.0.0.1:5555" || a.CertSHA256 != "" {
		t.Errorf("local admin: %+v", a)
	}
	r.RemoteAddr = "@"
	if a := APIActor(r); a.Source != "unix socket" {
		t.Errorf("admin over a unix socket: %+v", a)
	}
	// Caddy's remote admin requires a client certificate: its subject is
	// the admin.
	adminCert := testCard(t, "smith.jane").Cert
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{adminCert}}
	r.RemoteAddr = "192.0.2.7:443"
	a := APIActor(r)
	if !strings.Contains(a.Identity, "CN=SMITH.JANE.1234567891") || a.Source != "192.0.2.7:443" || a.CertSHA256 != cacid.Fingerprint(adminCert.Raw) {
		t.Errorf("remote admin: %+v", a)
	}
	var names []string
	for _, f := range a.Fields() {
		names = append(names, f.Key)
	}
	if !slices.Equal(names, []string{"admin", "admin_source", "admin_cert_sha256"}) {
		t.Errorf("actor fields: %v", names)
	}
}

func TestCLIActor(t *testing.T) {
	t.Setenv("SUDO_USER", "operator")
	a := CLIActor()
	if !strings.HasPrefix(a.Identity, "cli:") || !strings.HasSuffix(a.Identity, "@"+a.Source) || a.Source == "" {
		t.Errorf("CLI actor: %+v", a)
	}
	if a.SudoUser != "operator" && !strings.HasPrefix(a.Identity, "cli:operator@") {
		t.Errorf("sudo user not recorded: %+v", a)
	}
	var names []string
	for _, f := range (Actor{Identity: "cli:x@h", Source: "h", SudoUser: "op"}).Fields() {
		names = append(names, f.Key)
	}
	if !slices.Equal(names, []string{"admin", "admin_source", "admin_sudo_user"}) {
		t.Errorf("sudo actor fields: %v", names)
	}
}

// TestReasonOf keeps audit reasons to codes, never error text.
func TestReasonOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{BadRequest(store.ErrInvalidQuery), "invalid_request"},
		{notFound("no account %q", "x"), "not_found"},
		{conflict("taken"), "conflict"},
		{unprocessable(store.ErrInvalidAccount), "invalid_records"},
		{Errorf(http.StatusRequestEntityTooLarge, "big"), "too_large"},
		{Errorf(http.StatusServiceUnavailable, "slow"), "unavailable"},
		{Errorf(http.StatusUnsupportedMediaType, "csv"), "error"},
		{io.ErrUnexpectedEOF, "error"},
	} {
		if got := ReasonOf(tc.err); got != tc.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestStoreErrors(t *testing.T) {
	s := &Service{}
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{store.ErrNotFound, 404, `no account "x"`},
		{store.ErrUsernameTaken, 409, `username "x" is already taken`},
		{store.ErrEDIPITaken, 409, "an account already exists for this DoD ID"},
		{store.ErrCardTaken, 409, "the card is already registered"},
		{context.DeadlineExceeded, 503, "the account database did not answer in time (timeout): the request was not carried out; try again once that is fixed"},
		{errors.New("disk I/O error at page 7"), 500, "account database error (details in the log)"},
	} {
		err := s.storeError(tc.err, "x")
		if status(err) != tc.status || err.Error() != tc.msg {
			t.Errorf("storeError(%v) = %d %q, want %d %q", tc.err, status(err), err, tc.status, tc.msg)
		}
	}
}

func TestCreateShowAndAudit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct, err := f.svc.Create(ctx, testWho, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe", GivenName: "John", FamilyName: "Doe",
		Email: "john.q.doe@mail.mil", Groups: []string{"ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Status != "active" || !slices.Equal(acct.Groups, []string{"ops"}) || acct.Cards == nil || len(acct.Cards) != 0 || acct.CreatedAt.IsZero() {
		t.Errorf("created: %+v", acct)
	}
	if f.invalidated != 1 {
		t.Errorf("Invalidate called %d times after a create", f.invalidated)
	}
	e := f.last(t, EventAccountCreated)
	if e["outcome"] != audit.Success || e["username"] != "john.q.doe" || e["edipi"] != "1234567890" || e["status"] != "active" ||
		e["admin"] != testWho.Identity || e["admin_source"] != testWho.Source || e["node"] != "node-1" {
		t.Errorf("created audit: %v", e)
	}
	shown, err := f.svc.Show(ctx, "john.q.doe")
	if err != nil || shown.Email != "john.q.doe@mail.mil" || FullName(shown) != "John Doe" {
		t.Errorf("show: %+v %v", shown, err)
	}

	// Refusals: the message names the rule, the audit the reason code, and
	// nothing changes.
	for _, tc := range []struct {
		req    NewAccountRequest
		status int
		msg    string
	}{
		{NewAccountRequest{EDIPI: "12345", Username: "x.y"}, 400, "edipi must be the 10-digit DoD ID number"},
		{NewAccountRequest{EDIPI: "1234567891", Username: "X.Y"}, 400, "username must be 1-64 characters"},
		{NewAccountRequest{EDIPI: "1234567891", Username: "export"}, 400, `username "export" is reserved by the admin API`},
		{NewAccountRequest{EDIPI: "1234567891", Username: "x.y", GivenName: "a\x00b"}, 400, "given_name contains a control or non-printable character"},
		{NewAccountRequest{EDIPI: "1234567891", Username: "x.y", Email: "Name <n@x.mil>"}, 400, "email must be a plain address"},
		{NewAccountRequest{EDIPI: "1234567891", Username: "x.y", Status: "gone"}, 400, `status must be "active", "disabled" or "pending"`},
		{NewAccountRequest{EDIPI: "1234567891", Username: "x.y", Groups: []string{"ok", "Bad Group"}}, 400, `group 2 ("Bad Group") must be`},
		{NewAccountRequest{EDIPI: "1234567890", Username: "someone.else"}, 409, "an account already exists for this DoD ID"},
		{NewAccountRequest{EDIPI: "1234567891", Username: "john.q.doe"}, 409, `username "john.q.doe" is already taken`},
	} {
		_, err := f.svc.Create(ctx, testWho, tc.req)
		if status(err) != tc.status || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("create %+v: %d %v, want %d %q", tc.req, status(err), err, tc.status, tc.msg)
		}
		if e := f.last(t, EventAccountCreated); e["outcome"] != audit.Failure || e["reason"] == nil || e["admin"] != testWho.Identity {
			t.Errorf("refused create audit: %v", e)
		}
	}
	if f.invalidated != 1 {
		t.Errorf("a refused change called Invalidate (%d)", f.invalidated)
	}
	if _, err := f.svc.Show(ctx, "nobody"); status(err) != 404 || err.Error() != `no account "nobody"` {
		t.Errorf("show unknown: %v", err)
	}
	if _, err := f.svc.Show(ctx, "John.Doe"); status(err) != 400 || !strings.Contains(err.Error(), `"John.Doe" is not a username`) {
		t.Errorf("show malformed: %v", err)
	}
}

func TestStatusChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe"})
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith", Status: "pending"})
	before := f.invalidated

	acct, err := f.svc.Disable(ctx, testWho, "john.q.doe")
	if err != nil || acct.Status != "disabled" {
		t.Fatalf("disable: %+v %v", acct, err)
	}
	if e := f.last(t, EventAccountDisabled); e["username"] != "john.q.doe" || e["edipi"] != "1234567890" || e["outcome"] != audit.Success {
		t.Errorf("disable audit: %v", e)
	}
	// Enabling a pending account is refused: approval is its own act.
	if _, err := f.svc.Enable(ctx, testWho, "jane.smith"); status(err) != 409 || err.Error() != `account "jane.smith" is pending: approve it instead` {
		t.Errorf("enable pending: %v", err)
	}
	if e := f.last(t, EventAccountEnabled); e["outcome"] != audit.Failure || e["reason"] != "conflict" || e["edipi"] != "1234567891" {
		t.Errorf("refused enable audit: %v", e)
	}
	if acct, err := f.svc.Enable(ctx, testWho, "john.q.doe"); err != nil || acct.Status != "active" {
		t.Fatalf("enable: %+v %v", acct, err)
	}
	if e := f.last(t, EventAccountEnabled); e["changed"] != true {
		t.Errorf("enable audit: %v", e)
	}
	// Enabling an active account changes nothing and succeeds.
	n := f.invalidated
	if acct, err := f.svc.Enable(ctx, testWho, "john.q.doe"); err != nil || acct.Status != "active" {
		t.Errorf("enabling an active account: %+v %v", acct, err)
	}
	if e := f.last(t, EventAccountEnabled); e["changed"] != false || e["outcome"] != audit.Success {
		t.Errorf("no-op enable audit: %v", e)
	}
	if f.invalidated != n {
		t.Errorf("a no-op enable called Invalidate")
	}
	if acct, err := f.svc.Approve(ctx, testWho, "jane.smith"); err != nil || acct.Status != "active" {
		t.Fatalf("approve: %+v %v", acct, err)
	}
	if _, err := f.svc.Approve(ctx, testWho, "jane.smith"); status(err) != 409 || err.Error() != `account "jane.smith" is not pending approval` {
		t.Errorf("approve twice: %v", err)
	}
	if _, err := f.svc.Approve(ctx, testWho, "nobody"); status(err) != 404 {
		t.Errorf("approve unknown: %v", err)
	}
	if e := f.last(t, EventAccountApproved); e["reason"] != "not_found" || e["username"] != "nobody" {
		t.Errorf("failed approve audit: %v", e)
	}
	if _, err := f.svc.Disable(ctx, testWho, "Bad Name"); status(err) != 400 {
		t.Errorf("disable malformed: %v", err)
	}
	if e := f.last(t, EventAccountDisabled); e["username"] != nil || e["reason"] != "invalid_request" {
		t.Errorf("a malformed username reached the audit log: %v", e)
	}
	if got := f.invalidated - before; got != 3 { // disable, enable, approve
		t.Errorf("Invalidate called %d times, want 3", got)
	}

	// Unlock lifts a password lockout.
	stored, err := f.store.AccountByUsername(ctx, "jane.smith")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.RecordLoginFailure(ctx, stored.ID, time.Now(), time.Hour, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if acct, _ := f.svc.Show(ctx, "jane.smith"); acct.LockedUntil == nil {
		t.Fatal("account not locked")
	}
	acct, err = f.svc.Unlock(ctx, testWho, "jane.smith")
	if err != nil || acct.LockedUntil != nil {
		t.Fatalf("unlock: %+v %v", acct, err)
	}
	if e := f.last(t, EventAccountUnlocked); e["username"] != "jane.smith" || e["was_locked_until"] == nil {
		t.Errorf("unlock audit: %v", e)
	}
}

func mustCreate(t *testing.T, f *fixture, req NewAccountRequest) Account {
	t.Helper()
	acct, err := f.svc.Create(context.Background(), testWho, req)
	if err != nil {
		t.Fatalf("create %s: %v", req.Username, err)
	}
	return acct
}

func TestGroups(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe"})
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith"})
	acct, err := f.svc.AddGroups(ctx, testWho, "john.q.doe", []string{"ops", "finance.readers"})
	if err != nil || !slices.Equal(acct.Groups, []string{"finance.readers", "ops"}) {
		t.Fatalf("add: %v %v", acct.Groups, err)
	}
	e := f.last(t, EventGroupsAdded)
	if e["username"] != "john.q.doe" || e["edipi"] != "1234567890" || !slices.Equal(anyStrings(e["groups"]), []string{"ops", "finance.readers"}) ||
		!slices.Equal(anyStrings(e["account_groups"]), []string{"finance.readers", "ops"}) {
		t.Errorf("groups added audit: %v", e)
	}
	if _, err := f.svc.AddGroups(ctx, testWho, "jane.smith", []string{"ops"}); err != nil {
		t.Fatal(err)
	}
	if acct, err := f.svc.RemoveGroups(ctx, testWho, "john.q.doe", []string{"ops", "never.in"}); err != nil || !slices.Equal(acct.Groups, []string{"finance.readers"}) {
		t.Fatalf("remove: %v %v", acct.Groups, err)
	}
	if e := f.last(t, EventGroupsRemoved); e["username"] != "john.q.doe" || e["outcome"] != audit.Success {
		t.Errorf("groups removed audit: %v", e)
	}
	groups, err := f.svc.Groups(ctx)
	if err != nil || !slices.Equal(groups, []Group{{Name: "finance.readers", Accounts: 1}, {Name: "ops", Accounts: 1}}) {
		t.Errorf("groups: %+v %v", groups, err)
	}
	for _, tc := range []struct {
		username string
		groups   []string
		status   int
		msg      string
	}{
		{"john.q.doe", nil, 400, "name at least one group"},
		{"john.q.doe", []string{"Ops Team"}, 400, `group 1 ("Ops Team") must be`},
		{"john.q.doe", make([]string, maxGroupsPerRequest+1), 400, "at most"},
		{"nobody", []string{"ops"}, 404, `no account "nobody"`},
		{"Nobody", []string{"ops"}, 400, "is not a username"},
	} {
		_, err := f.svc.AddGroups(ctx, testWho, tc.username, tc.groups)
		if status(err) != tc.status || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("add %v to %s: %d %v, want %d %q", tc.groups, tc.username, status(err), err, tc.status, tc.msg)
		}
	}
	// The store's bound on one account's groups, reached over several
	// requests, is 422.
	var many []string
	for i := range store.MaxGroupsPerAccount + 1 {
		many = append(many, "g"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	half := len(many) / 2
	if _, err := f.svc.AddGroups(ctx, testWho, "jane.smith", many[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddGroups(ctx, testWho, "jane.smith", many[half:]); status(err) != 422 {
		t.Errorf("more groups than an account may have: %v", err)
	}
	if e := f.last(t, EventGroupsAdded); e["reason"] != "invalid_records" {
		t.Errorf("refused groups audit: %v", e)
	}
}

func anyStrings(v any) []string {
	var out []string
	switch s := v.(type) {
	case []string:
		return s
	case []any:
		for _, x := range s {
			out = append(out, x.(string))
		}
	}
	return out
}

func TestLinkAndUnlinkCard(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe"})
	piv := testCard(t, "doe.john.quincy.piv")
	acct, err := f.svc.LinkCard(ctx, testWho, "john.q.doe", certPEM(piv))
	if err != nil || len(acct.Cards) != 1 || acct.Cards[0].Fingerprint != cacid.Fingerprint(piv.Cert.Raw) {
		t.Fatalf("link: %+v %v", acct, err)
	}
	if e := f.last(t, EventCardLinked); e["cert_sha256"] != cacid.Fingerprint(piv.Cert.Raw) || e["username"] != "john.q.doe" || e["edipi"] != "1234567890" {
		t.Errorf("link audit: %v", e)
	}
	if _, err := f.svc.LinkCard(ctx, testWho, "john.q.doe", certPEM(piv)); status(err) != 409 || err.Error() != "the card is already registered" {
		t.Errorf("linking twice: %v", err)
	}
	jane := testCard(t, "smith.jane")
	_, err = f.svc.LinkCard(ctx, testWho, "john.q.doe", certPEM(jane))
	if status(err) != 400 || err.Error() != "the certificate's DoD ID 1234567891 is not the account's (1234567890)" {
		t.Errorf("another person's card: %v", err)
	}
	if e := f.last(t, EventCardLinked); e["outcome"] != audit.Failure || e["account_edipi"] != "1234567890" || e["edipi"] != "1234567891" {
		t.Errorf("refused link audit: %v", e)
	}
	for _, tc := range []struct{ pem, msg string }{
		{"not a pem", "certificate must be a PEM-encoded certificate"},
		{strings.Repeat("A", MaxPEM+1), "certificate is too large"},
		{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "parsing certificate"},
	} {
		if _, err := f.svc.LinkCard(ctx, testWho, "john.q.doe", tc.pem); status(err) != 400 || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("link %.20q: %v, want %q", tc.pem, err, tc.msg)
		}
	}

	fp := cacid.Fingerprint(piv.Cert.Raw)
	if err := f.svc.UnlinkCard(ctx, testWho, "john.q.doe", fp); err != nil {
		t.Fatal(err)
	}
	if e := f.last(t, EventCardUnlinked); e["outcome"] != audit.Success || e["cert_sha256"] != fp {
		t.Errorf("unlink audit: %v", e)
	}
	if err := f.svc.UnlinkCard(ctx, testWho, "john.q.doe", fp); status(err) != 404 || err.Error() != `account "john.q.doe" has no card `+fp {
		t.Errorf("unlink again: %v", err)
	}
	if err := f.svc.UnlinkCard(ctx, testWho, "john.q.doe", strings.ToUpper(fp)); status(err) != 400 {
		t.Errorf("unlink by an uppercase fingerprint: %v", err)
	}
	if e := f.last(t, EventCardUnlinked); e["cert_sha256"] != nil || e["reason"] != "invalid_request" {
		t.Errorf("a malformed fingerprint reached the audit log: %v", e)
	}
}

func TestRefused(t *testing.T) {
	f := newFixture(t)
	err := f.svc.Refused(testWho, EventCardLinked, BadRequest(errors.New("request body: x")), "john.q.doe")
	if status(err) != 400 {
		t.Errorf("Refused returned %v", err)
	}
	if e := f.last(t, EventCardLinked); e["username"] != "john.q.doe" || e["reason"] != "invalid_request" || e["outcome"] != audit.Failure {
		t.Errorf("refused audit: %v", e)
	}
	f.svc.Refused(testWho, EventCardLinked, BadRequest(errors.New("x")), "Not Valid\n")
	if e := f.last(t, EventCardLinked); e["username"] != nil {
		t.Errorf("a malformed username reached the audit log: %v", e)
	}
	f.svc.RefuseImport(testWho, "admin API", Errorf(http.StatusRequestEntityTooLarge, "too big"))
	if e := f.last(t, EventImport); e["source"] != "admin API" || e["reason"] != "too_large" {
		t.Errorf("refused import audit: %v", e)
	}
}
