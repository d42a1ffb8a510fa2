package caddymodule

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// testRoster is a personnel roster for the test cards, with SSNs from the
// never-issued 9xx range.
const testRoster = `edipi,ssn,fin,dob,pebd,last,first,middle,category,organization
1234567890,900-11-1890,,1980-01-15,2002-06-01,DOE,JOHN,QUINCY,Active Army,1st Cavalry Division
1234567891,900-11-1891,,1985-03-22,,SMITH,JANE,,Active Navy,
1234567892,900-11-1892,,1975-04-12,,JOHNSON,ROBERT,E,Marine Corps Reserve,
1234567892,900-11-1892,,1975-04-12,,JOHNSON,ROBERT,E,DoD Civilian,Defense Logistics Agency
1234567896,900-11-1896,,1992-05-30,,GARCIA,LUIS,A,Contractor,
`

// startEnrollGateway runs the test gateway with a CSV roster (testRoster
// plus extraRows) and the given site enroll block; globalExtra goes into
// the global cacgate block.
func startEnrollGateway(t *testing.T, enrollBlock string, extraRows ...string) *testGateway {
	t.Helper()
	return startEnrollGatewayWith(t, "", enrollBlock, extraRows...)
}

func startEnrollGatewayWith(t *testing.T, globalExtra, enrollBlock string, extraRows ...string) *testGateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "roster.csv")
	content := testRoster + strings.Join(extraRows, "\n")
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGateway(t, "roster csv "+path+"\n"+globalExtra, enrollBlock)
}

// enrollJohnson enrolls robert.e.johnson (password Correct.Horse~Bat9) with
// his card and returns that card's client, the banner accepted.
func enrollJohnson(t *testing.T, g *testGateway) *http.Client {
	t.Helper()
	c := g.client(card(t, "johnson.robert.e.jr"))
	g.accept(t, c, "main")
	if _, page := enrollSteps(t, g, c, "900-11-1892", "1975-04-12"); !strings.Contains(page, "robert.e.johnson") {
		t.Fatalf("enrolling robert.e.johnson:\n%s", page)
	}
	return c
}

// rawDB opens the gateway's SQLite account database with plain SQL, for
// tests that look at or age rows behind the gateway's back.
func (g *testGateway) rawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(g.dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openStore opens a second handle on the gateway's account database, as
// another node sharing it would.
func (g *testGateway) openStore(t *testing.T) *store.SQLStore {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(g.dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// post submits a form the way a browser does after reading page.
func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	return request(t, c, "POST", u, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}, strings.NewReader(form.Encode()))
}

// enrollSteps walks a card through self-enrollment and returns the last
// page. It stops early (returning that page) when a step does not lead on.
func enrollSteps(t *testing.T, g *testGateway, c *http.Client, ssn, dob string) (*http.Response, string) {
	t.Helper()
	resp, page := request(t, c, "GET", g.url("main", "/.cacgate/enroll/new"), browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("identity form: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = post(t, c, g.url("main", "/.cacgate/enroll/new"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "idtype": {"ssn"}, "ssn": {ssn}, "dob": {dob},
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		return resp, page
	}
	return profileAndQuestions(t, g, c, "main", page)
}

// profileAndQuestions completes the profile and security-question forms
// of site from the profile form page. The answers are confirmed in
// another case and spacing, which the questions page accepts.
func profileAndQuestions(t *testing.T, g *testGateway, c *http.Client, site, page string) (*http.Response, string) {
	t.Helper()
	resp, page := post(t, c, g.url(site, "/.cacgate/enroll/profile"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")},
		"email": {"person@example.com"}, "organization": {"USMC"}, "location": {"North America"},
		"password": {"Correct.Horse~Bat9"}, "confirm": {"Correct.Horse~Bat9"},
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="question-1"`) {
		return resp, page
	}
	qs := credential.Questions()
	form := url.Values{"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")}}
	for i := 1; i <= 3; i++ {
		n := fmt.Sprint(i)
		form.Set("question-"+n, qs[i].ID)
		form.Set("answer-"+n, "answer number "+n)
		form.Set("confirm-"+n, "Answer  Number "+n)
	}
	return post(t, c, g.url(site, "/.cacgate/enroll/questions"), form)
}

func TestSelfEnrollment(t *testing.T) {
	g := startEnrollGateway(t, "")
	c := g.client(card(t, "johnson.robert.e.jr"))
	g.accept(t, c, "main")

	// Unregistered: to the enrollment choice page.
	resp, _ := request(t, c, "GET", g.url("main", "/reports"), browser, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/.cacgate/enroll") {
		t.Fatalf("unregistered: HTTP %d %q", resp.StatusCode, loc)
	}
	resp, page := request(t, c, "GET", g.url("main", "/.cacgate/enroll"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "/.cacgate/enroll/new") {
		t.Fatalf("choice page: HTTP %d\n%s", resp.StatusCode, page)
	}

	// A wrong SSN: a clear refusal, no account.
	resp, page = enrollSteps(t, g, c, "900-11-1899", "1975-04-12")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "does not match") || strings.Contains(page, "900-11-1899") {
		t.Fatalf("roster mismatch: HTTP %d\n%s", resp.StatusCode, page)
	}

	// The right facts: a dual account, username robert.e.johnson.
	resp, page = enrollSteps(t, g, c, "900111892", "1975-04-12")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "robert.e.johnson") {
		t.Fatalf("enrollment: HTTP %d\n%s", resp.StatusCode, page)
	}
	var acct AccountJSON
	if code := g.adminDo("GET", "/cacgate/accounts/robert.e.johnson", nil, &acct); code != http.StatusOK || acct.EDIPI != "1234567892" || len(acct.Cards) != 1 {
		t.Fatalf("enrolled account: HTTP %d %+v", code, acct)
	}
	// Two roster records: one dual account carrying both categories.
	if strings.Join(acct.Categories, "|") != "Marine Corps Reserve|DoD Civilian" || !acct.HasPassword || acct.Email != "person@example.com" || acct.Organization != "USMC" {
		t.Fatalf("enrolled profile: %+v", acct)
	}
	// In at once (this node's caches were invalidated by the enrollment).
	resp, _ = request(t, c, "GET", g.url("main", "/reports"), browser, nil)
	if resp.StatusCode != http.StatusOK || g.backend.last(t).Get("X-Remote-User") != "robert.e.johnson" {
		t.Fatalf("after enrollment: HTTP %d", resp.StatusCode)
	}
	// The enrollment pages now send a registered card on.
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/enroll/new"), browser, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("enroll page for a registered card: HTTP %d", resp.StatusCode)
	}
}

func TestSelfEnrollmentUsernameCollisions(t *testing.T) {
	g := startEnrollGateway(t, "")
	// Another Luis A. Garcia already holds luis.a.garcia.
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567001", "username": "luis.a.garcia"}, nil); code != http.StatusCreated {
		t.Fatalf("seed: HTTP %d", code)
	}
	c := g.client(card(t, "garcia.luis.a"))
	g.accept(t, c, "main")
	resp, page := enrollSteps(t, g, c, "900-11-1896", "1992-05-30")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "luis.a.garcia1") {
		t.Fatalf("collision: HTTP %d\n%s", resp.StatusCode, page)
	}
}

func TestSelfEnrollmentApprovalAndIneligible(t *testing.T) {
	g := startEnrollGateway(t, `enroll {
			eligible "Active Navy" "Marine Corps Reserve"
			approval
		}`)
	// Ineligible: Garcia is a contractor.
	garcia := g.client(card(t, "garcia.luis.a"))
	g.accept(t, garcia, "main")
	resp, page := enrollSteps(t, g, garcia, "900-11-1896", "1992-05-30")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Contractor") {
		t.Fatalf("ineligible: HTTP %d\n%s", resp.StatusCode, page)
	}
	// Approval mode: pending until an admin approves.
	jane := g.client(card(t, "smith.jane"))
	g.accept(t, jane, "main")
	resp, page = enrollSteps(t, g, jane, "900-11-1891", "1985-03-22")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "approv") {
		t.Fatalf("approval: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, body := request(t, jane, "GET", g.url("main", "/"), apiClient, nil)
	if resp.StatusCode != http.StatusForbidden || jsonProblem(t, body) != "account_pending" {
		t.Fatalf("pending: HTTP %d %s", resp.StatusCode, body)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/approve", nil, nil); code != http.StatusOK {
		t.Fatalf("approve: HTTP %d", code)
	}
	if resp, _ := request(t, jane, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("approved: HTTP %d", resp.StatusCode)
	}
}

// TestConcurrentEnrollmentsOfOneCard: two browsers of the same card racing
// through the last step create exactly one account.
func TestConcurrentEnrollmentsOfOneCard(t *testing.T) {
	g := startEnrollGateway(t, "")
	doeCard := card(t, "smith.jane")
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := g.client(doeCard)
			g.accept(t, c, "main")
			resp, _ := enrollSteps(t, g, c, "900-11-1891", "1985-03-22")
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	var page AccountPageJSON
	g.adminDo("GET", "/cacgate/accounts", nil, &page)
	if list := page.Accounts; len(list) != 1 {
		t.Fatalf("want one account, got %d", len(list))
	}
	ok := 0
	for code := range codes {
		if code == http.StatusOK {
			ok++
		}
	}
	if ok < 1 {
		t.Fatal("no enrollment succeeded")
	}
}

func TestEnrollmentOff(t *testing.T) {
	g := startEnrollGateway(t, "enroll off")
	c := g.client(card(t, "johnson.robert.e.jr"))
	g.accept(t, c, "main")
	resp, page := request(t, c, "GET", g.url("main", "/.cacgate/enroll"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not registered") {
		t.Fatalf("enroll off: HTTP %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/enroll/new"), browser, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("enroll off, flow page: HTTP %d", resp.StatusCode)
	}
}

// TestSameNameEnrollments: two different people named Luis A. Garcia
// enrolling at the same moment both succeed, with distinct usernames; a
// third finds luis.a.garcia and luis.a.garcia1 taken and gets …2.
func TestSameNameEnrollments(t *testing.T) {
	p := testPKI(t)
	var cards []*testpki.Card
	var rows []string
	for i, edipi := range []string{"1234567011", "1234567012", "1234567013"} {
		c, err := p.Intermediate.IssueCard(testpki.CardSpec{
			Name: fmt.Sprintf("garcia.twin%d", i), Family: "GARCIA", Given: "LUIS", Middle: "A", EDIPI: edipi, Affiliation: "USAF",
		})
		if err != nil {
			t.Fatal(err)
		}
		cards = append(cards, c)
		rows = append(rows, edipi+",900-22-30"+fmt.Sprint(10+i)+",,1990-01-0"+fmt.Sprint(1+i)+",,GARCIA,LUIS,A,Active Air Force,")
	}
	g := startEnrollGateway(t, "", rows...)

	var wg sync.WaitGroup
	pages := make([]string, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := g.client(cards[i])
			g.accept(t, c, "main")
			_, pages[i] = enrollSteps(t, g, c, "900-22-30"+fmt.Sprint(10+i), "1990-01-0"+fmt.Sprint(1+i))
		}(i)
	}
	wg.Wait()
	got := map[string]bool{}
	for _, page := range pages {
		switch {
		case strings.Contains(page, "luis.a.garcia1"):
			got["luis.a.garcia1"] = true
		case strings.Contains(page, "luis.a.garcia"):
			got["luis.a.garcia"] = true
		}
	}
	if len(got) != 2 {
		t.Fatalf("concurrent same-name enrollments: usernames %v", got)
	}
	c := g.client(cards[2])
	g.accept(t, c, "main")
	if _, page := enrollSteps(t, g, c, "900-22-3012", "1990-01-03"); !strings.Contains(page, "luis.a.garcia2") {
		t.Fatalf("third Luis A. Garcia:\n%s", page)
	}
}

// TestRegisterSecondCardAndAccountPage: with link_by_edipi off, a second
// card joins an account through "register this card" (username and
// password, with the lockout counted in the database), and the account
// page lists both cards and can clear one.
func TestRegisterSecondCardAndAccountPage(t *testing.T) {
	g := startEnrollGatewayWith(t, "link_by_edipi off", "")
	first := g.client(card(t, "doe.john.quincy"))
	g.accept(t, first, "main")
	if _, page := enrollSteps(t, g, first, "900-11-1890", "1980-01-15"); !strings.Contains(page, "john.q.doe") {
		t.Fatalf("enrolling the first card:\n%s", page)
	}

	second := g.client(card(t, "doe.john.quincy.piv"))
	g.accept(t, second, "main")
	linkURL := g.url("main", "/.cacgate/enroll/link")
	linkForm := func(password string) (*http.Response, string) {
		_, page := request(t, second, "GET", linkURL, browser, nil)
		return post(t, second, linkURL, url.Values{"csrf": {formValue(t, page, "csrf")}, "username": {"john.q.doe"}, "password": {password}})
	}
	_, page := linkForm("Wrong.Password~123")
	if !strings.Contains(page, "2 tries remaining") || strings.Contains(page, "Wrong.Password") {
		t.Fatalf("first wrong password:\n%s", page)
	}
	resp, page := linkForm("Correct.Horse~Bat9")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "now registered") {
		t.Fatalf("linking with the right password: HTTP %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := request(t, second, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK || g.backend.last(t).Get("X-Remote-User") != "john.q.doe" {
		t.Fatalf("second card after linking: HTTP %d", resp.StatusCode)
	}

	// The account page lists both cards; the first card clears the second.
	resp, page = request(t, first, "GET", g.url("main", "/.cacgate/account"), browser, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, fingerprint(card(t, "doe.john.quincy.piv"))) || !strings.Contains(page, "this card") {
		t.Fatalf("account page: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, page = post(t, first, g.url("main", "/.cacgate/account/cards/clear"), url.Values{
		"csrf": {formValue(t, page, "csrf")}, "sha256": {fingerprint(card(t, "doe.john.quincy.piv"))},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clearing the second card: HTTP %d\n%s", resp.StatusCode, page)
	}
	// The cleared card is out at once and is not re-linked.
	if resp, _ := request(t, second, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cleared card: HTTP %d", resp.StatusCode)
	}

	// Three wrong passwords lock the account, in the database.
	for i := 0; i < 3; i++ {
		_, page = linkForm("Wrong.Password~123")
	}
	if !strings.Contains(page, "locked until") {
		t.Fatalf("after three wrong passwords:\n%s", page)
	}
	if _, page = linkForm("Correct.Horse~Bat9"); !strings.Contains(page, "locked until") {
		t.Fatalf("right password while locked:\n%s", page)
	}
}

// TestEnrollmentAttemptsPerIP: identity checks from one address are bounded
// across cards.
func TestEnrollmentAttemptsPerIP(t *testing.T) {
	g := startEnrollGateway(t, `enroll {
			attempts_per_ip 2
		}`)
	codes := []int{}
	for _, name := range []string{"johnson.robert.e.jr", "garcia.luis.a", "smith.jane"} {
		c := g.client(card(t, name))
		g.accept(t, c, "main")
		resp, _ := enrollSteps(t, g, c, "900-99-9999", "1970-01-01")
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusUnprocessableEntity || codes[1] != http.StatusUnprocessableEntity || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("status codes %v, want [422 422 429]", codes)
	}
}

// TestPasswordResetThroughGateway: a registered card holder who forgot the
// password answers the three security questions and sets a new one.
func TestPasswordResetThroughGateway(t *testing.T) {
	g := startEnrollGatewayWith(t, "link_by_edipi off", "")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	if _, page := enrollSteps(t, g, c, "900-11-1890", "1980-01-15"); !strings.Contains(page, "john.q.doe") {
		t.Fatalf("enrolling:\n%s", page)
	}
	resetURL := g.url("main", "/.cacgate/enroll/reset")
	resp, page := request(t, c, "GET", resetURL, browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset page for a registered card: HTTP %d", resp.StatusCode)
	}
	resp, page = post(t, c, resetURL, url.Values{"csrf": {formValue(t, page, "csrf")}, "username": {"john.q.doe"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="answer-1"`) {
		t.Fatalf("reset step 1: HTTP %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{"csrf": {formValue(t, page, "csrf")}, "state": {formValue(t, page, "state")}, "step": {"answers"},
		"password": {"Brand.New~Secret42"}, "confirm": {"Brand.New~Secret42"}}
	for i := 1; i <= 3; i++ {
		form.Set(fmt.Sprintf("answer-%d", i), fmt.Sprintf("ANSWER   number %d", i))
	}
	resp, page = post(t, c, resetURL, form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Password changed") || strings.Contains(page, "Brand.New") {
		t.Fatalf("reset step 2: HTTP %d\n%s", resp.StatusCode, page)
	}
	// The new password registers a second card; the old one no longer does.
	second := g.client(card(t, "doe.john.quincy.piv"))
	g.accept(t, second, "main")
	linkURL := g.url("main", "/.cacgate/enroll/link")
	_, page = request(t, second, "GET", linkURL, browser, nil)
	if _, page = post(t, second, linkURL, url.Values{"csrf": {formValue(t, page, "csrf")}, "username": {"john.q.doe"}, "password": {"Correct.Horse~Bat9"}}); !strings.Contains(page, "not correct") {
		t.Fatalf("old password after reset:\n%s", page)
	}
	_, page = request(t, second, "GET", linkURL, browser, nil)
	if resp, page = post(t, second, linkURL, url.Values{"csrf": {formValue(t, page, "csrf")}, "username": {"john.q.doe"}, "password": {"Brand.New~Secret42"}}); !strings.Contains(page, "now registered") {
		t.Fatalf("new password after reset: HTTP %d\n%s", resp.StatusCode, page)
	}
}
