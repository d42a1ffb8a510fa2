package caddymodule

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cacgate/cacgate/internal/testpki"
)

// cardUUID is the card UUID of a federal test card, as its certificate's
// urn:uuid SAN carries it.
func cardUUID(t *testing.T, c *testpki.Card) string {
	t.Helper()
	for _, u := range c.Cert.URIs {
		if u.Scheme == "urn" && strings.HasPrefix(u.Opaque, "uuid:") {
			return strings.ToLower(strings.TrimPrefix(u.Opaque, "uuid:"))
		}
	}
	t.Fatalf("card %s has no card UUID", c.Name)
	return ""
}

// certEmail is the e-mail address of a test certificate.
func certEmail(t *testing.T, c *testpki.Card) string {
	t.Helper()
	if len(c.Cert.EmailAddresses) == 0 {
		t.Fatalf("card %s has no e-mail address", c.Name)
	}
	return c.Cert.EmailAddresses[0]
}

// rosterIdentitySteps walks the identity form with ssn and dob, then the
// rest of the enrollment, returning the last answer. It stops early on
// an answer that is not the next form.
func rosterIdentitySteps(t *testing.T, g *testGateway, c *http.Client, ssn, dob string) (*http.Response, string) {
	t.Helper()
	resp, page := request(t, c, "GET", g.url("all", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="ssn"`) {
		return resp, page
	}
	resp, page = post(t, c, g.url("all", "/.cacgate/enroll/new"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {ssn}, "dob": {dob},
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		return resp, page
	}
	return profileAndQuestions(t, g, c, "all", page)
}

// signsInAs checks that the card reaches the application as username,
// signed in with the credential kind.
func signsInAs(t *testing.T, g *testGateway, c *http.Client, username, kind string) {
	t.Helper()
	if resp, body := request(t, c, "GET", g.url("all", "/app"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s signing in: HTTP %d %s", username, resp.StatusCode, body)
	}
	if h := g.backend.last(t); h.Get("X-Remote-User") != username || h.Get("X-Cac-Credential") != kind || h.Get("X-Cac-Edipi") != "" {
		t.Errorf("%s headers: %v", username, h)
	}
}

// TestCredentialKindRosterEnrollment: on a site whose CSV roster lists a
// federal PIV holder by card UUID and an ECA contractor by e-mail, both
// enroll through the identity form as a CAC holder does (a wrong answer
// refused and counted, the page naming their credential), get active
// accounts without an administrator, and sign in as their kind; the PIV-I
// holder, whom the roster does not list, is sponsored and waits pending.
func TestCredentialKindRosterEnrollment(t *testing.T) {
	f := federalPKI(t)
	rows := fmt.Sprintf("%s,card_uuid,email\n", strings.SplitN(testRoster, "\n", 2)[0])
	for _, line := range strings.Split(strings.TrimSpace(testRoster), "\n")[1:] {
		rows += line + ",,\n"
	}
	rows += fmt.Sprintf(",900-11-1901,,1979-02-14,,FEDERAL,JANE,Q,Federal Civilian,Department of Testing,%s,\n", strings.ToUpper(cardUUID(t, f.PIV)))
	rows += fmt.Sprintf(",900-11-1902,,1981-06-30,,CONTRACTOR,CARL,,Contractor,Example Contractor LLC,,%s\n", strings.ToUpper(certEmail(t, f.ECA)))
	rosterPath := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startKindsGateway(t, "roster csv "+rosterPath, "enroll {\n sponsor\n }")

	// A wrong answer: the form again (what was typed is not), naming the credential.
	piv := g.client(f.PIV)
	g.accept(t, piv, "all")
	resp, page := request(t, piv, "GET", g.url("all", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "federal PIV card") || !strings.Contains(page, `name="ssn"`) {
		t.Fatalf("PIV identity form: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = post(t, piv, g.url("all", "/.cacgate/enroll/new"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {"900-11-1999"}, "dob": {"1979-02-14"},
	})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "does not match the personnel records for your federal PIV card") || strings.Contains(page, "900-11-1999") {
		t.Fatalf("PIV wrong SSN: HTTP %d\n%s", resp.StatusCode, page)
	}

	for _, c := range []struct {
		card      *testpki.Card
		ssn, dob  string
		username  string
		kind      string
		category  string
		givenName string
	}{
		{f.PIV, "900-11-1901", "1979-02-14", "jane.q.federal", "piv", "Federal Civilian", "JANE"},
		{f.ECA, "900111902", "1981-06-30", "carl.contractor", "eca", "Contractor", "CARL"},
	} {
		cl := g.client(c.card)
		g.accept(t, cl, "all")
		resp, page := rosterIdentitySteps(t, g, cl, c.ssn, c.dob)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, c.username) {
			t.Fatalf("%s enrollment: HTTP %d\n%s", c.kind, resp.StatusCode, page)
		}
		var acct AccountJSON
		if code := g.adminDo("GET", "/cacgate/accounts/"+c.username, nil, &acct); code != http.StatusOK ||
			acct.Status != "active" || acct.EDIPI != "" || acct.Credential != c.kind || len(acct.Cards) != 1 ||
			len(acct.Categories) != 1 || acct.Categories[0] != c.category || acct.GivenName != c.givenName {
			t.Fatalf("%s account: HTTP %d %+v", c.kind, code, acct)
		}
		signsInAs(t, g, cl, c.username, c.kind)
	}

	// Not in the roster: sponsored, pending.
	pivi := g.client(f.PIVI)
	g.accept(t, pivi, "all")
	resp, page = sponsorSteps(t, g, pivi)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "pat.partner") {
		t.Fatalf("PIV-I sponsored enrollment: HTTP %d\n%s", resp.StatusCode, page)
	}
	var acct AccountJSON
	if code := g.adminDo("GET", "/cacgate/accounts/pat.partner", nil, &acct); code != http.StatusOK || acct.Status != "pending" {
		t.Fatalf("PIV-I account: HTTP %d %+v", code, acct)
	}

	audit, err := os.ReadFile(filepath.Join(g.dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"via":"roster:card_uuid"`, `"via":"roster:email"`, `"via":"sponsor"`, `"reason":"no_match"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("the log has no %s", want)
		}
	}
	for _, secret := range []string{"900-11-1901", "900111901", "900111902", "1979-02-14", "900111999"} {
		if strings.Contains(string(audit), secret) {
			t.Errorf("the log holds the secret %s", secret)
		}
	}
}

// TestCredentialKindHTTPRosterEnrollment: an HTTP roster service that
// answers for card UUIDs and e-mail addresses (roster http … { keys
// card_uuid email }) is asked with the card's key in place of an EDIPI;
// a holder it knows enrolls active, one it answers "known":false for is
// sponsored.
func TestCredentialKindHTTPRosterEnrollment(t *testing.T) {
	f := federalPKI(t)
	janeUUID := cardUUID(t, f.PIV)
	var mu sync.Mutex
	var asked []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1024)).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked = append(asked, fmt.Sprintf("edipi=%s card_uuid=%s email=%s", req["edipi"], req["card_uuid"], req["email"]))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case req["card_uuid"] == janeUUID && req["ssn"] == "900111901" && req["dob"] == "1979-02-14":
			fmt.Fprintf(w, `{"match":true,"records":[{"card_uuid":%q,"category":"Federal Civilian","last":"FEDERAL","first":"JANE","middle":"Q"}]}`, janeUUID)
		case req["card_uuid"] == janeUUID:
			fmt.Fprint(w, `{"match":false}`)
		case req["card_uuid"] != "" || req["email"] != "":
			fmt.Fprint(w, `{"match":false,"known":false}`)
		default:
			fmt.Fprint(w, `{"match":false}`)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	g := startKindsGateway(t, fmt.Sprintf("roster http http://%s/verify {\n keys card_uuid email\n }", ln.Addr()), "enroll {\n sponsor\n }")
	piv := g.client(f.PIV)
	g.accept(t, piv, "all")
	resp, page := rosterIdentitySteps(t, g, piv, "900-11-1901", "1979-02-14")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "jane.q.federal") {
		t.Fatalf("PIV enrollment over the HTTP roster: HTTP %d\n%s", resp.StatusCode, page)
	}
	var acct AccountJSON
	if code := g.adminDo("GET", "/cacgate/accounts/jane.q.federal", nil, &acct); code != http.StatusOK || acct.Status != "active" || acct.Credential != "piv" {
		t.Fatalf("PIV account: HTTP %d %+v", code, acct)
	}
	signsInAs(t, g, piv, "jane.q.federal", "piv")

	// The service does not know the ECA holder: after the form, sponsorship.
	eca := g.client(f.ECA)
	g.accept(t, eca, "all")
	resp, page = request(t, eca, "GET", g.url("all", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="ssn"`) {
		t.Fatalf("ECA identity form: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = post(t, eca, g.url("all", "/.cacgate/enroll/new"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {"900-11-1902"}, "dob": {"1981-06-30"},
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		t.Fatalf("ECA holder the service does not know: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = profileAndQuestions(t, g, eca, "all", page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "carl.contractor") {
		t.Fatalf("ECA sponsored enrollment: HTTP %d\n%s", resp.StatusCode, page)
	}
	if code := g.adminDo("GET", "/cacgate/accounts/carl.contractor", nil, &acct); code != http.StatusOK || acct.Status != "pending" || acct.Credential != "eca" {
		t.Fatalf("ECA account: HTTP %d %+v", code, acct)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"edipi= card_uuid=" + janeUUID + " email=",
		"edipi= card_uuid= email=" + strings.ToLower(certEmail(t, f.ECA)),
	}
	if len(asked) != len(want) || asked[0] != want[0] || asked[1] != want[1] {
		t.Errorf("the service was asked %q, want %q", asked, want)
	}
}
