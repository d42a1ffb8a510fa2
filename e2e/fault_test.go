package e2e

// The fault suite (go test ./e2e -run Fault): the built gateway, as real
// processes on real databases, under the faults a deployment meets — the
// PostgreSQL server stopped and crashed under load, a node killed with
// SIGKILL at every step of an enrollment and the enrollment finished on the
// other node, the disk filling up under SQLite, configuration reloads under
// load — each followed by a look straight into the database: nothing lost,
// nothing half-written.
//
// "Under load" is a few clients, each with its own card, asking the nodes
// for a protected page in turn while the fault happens; every answer is
// recorded and judged afterwards. Nothing here asserts a duration: the
// machine is shared and often loaded, so waits poll a condition up to
// faultDeadline, and the durations that matter (how soon a change made
// after a database restart reaches the other node) are measured and
// logged.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to inspect the cluster's database
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", to inspect a SQLite node's database

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
)

// faultDeadline bounds every wait of the fault suite. It is far above what
// any condition takes on an idle machine: it is there to end a test that
// would otherwise hang, not to judge speed.
const faultDeadline = 60 * time.Second

// pollUntil calls cond every interval until it holds, and fails the test
// after faultDeadline (or faultDeadline/interval tries). It returns how long
// the condition took to hold. Call it from the test's goroutine.
func pollUntil(t *testing.T, what string, interval time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(faultDeadline)
	var last string
	for tries := int(faultDeadline/interval) + 1; tries > 0; tries-- {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(interval)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, faultDeadline, last)
	return 0
}

// ---- accounts an administrator created, and their holders ----

// faultUser is an account created through the admin API and the browser
// of its holder, whose card is linked to it on first use (link_by_edipi).
type faultUser struct {
	username, edipi string
	card            *testpki.Card
	br              *http.Client
}

// fingerprint is the card's registration key (hex SHA-256 of the
// certificate).
func (u *faultUser) fingerprint() string {
	return fmt.Sprintf("%x", sha256.Sum256(u.card.Cert.Raw))
}

var natoNames = []string{"ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"}

// createUser creates account fault.user<i> (DoD ID 12345690<i>) through
// node via's admin API and issues its holder's card. The card is not used.
func (c *cluster) createUser(t *testing.T, via *node, i int) *faultUser {
	t.Helper()
	u := &faultUser{username: fmt.Sprintf("fault.user%d", i), edipi: fmt.Sprint(1234569000 + i)}
	card, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{Name: "fault" + fmt.Sprint(i), Family: "FAULT", Given: natoNames[i%len(natoNames)],
		EDIPI: u.edipi, Affiliation: "USN"})
	if err != nil {
		t.Fatal(err)
	}
	u.card, u.br = card, c.browser(t, card)
	body := fmt.Sprintf(`{"edipi":%q,"username":%q,"given_name":"Fault","family_name":"User","email":"fault.user@mail.mil"}`, u.edipi, u.username)
	if status, resp, err := adminRequest(via, "POST", "/cacgate/accounts", body); err != nil || status != http.StatusCreated {
		t.Fatalf("creating %s through node %s: HTTP %d %v %s", u.username, via.name, status, err, resp)
	}
	return u
}

// provision creates count accounts (createUser) and lets each card in once
// through node via, which links the card and accepts the banner.
func (c *cluster) provision(t *testing.T, via *node, count int) []*faultUser {
	t.Helper()
	users := make([]*faultUser, count)
	for i := range users {
		users[i] = c.createUser(t, via, i)
		resp, body := acceptBanner(t, users[i].br, via.site, "/")
		if want := "user=" + users[i].username + " node=" + via.name; resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("%s through node %s: HTTP %d %q, want %q", users[i].username, via.name, resp.StatusCode, body, want)
		}
	}
	return users
}

// adminRequest calls node n's admin API; unlike adminCall it does not fail
// the test, so that answers during a fault can be judged.
func adminRequest(n *node, method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+n.admin+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 40 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}

// adminUntilDone repeats an admin change while the node answers 503 (the
// database not reachable yet), up to faultDeadline, and returns when it
// went through. Any other answer fails the test; a 500 is reported but
// retried, so that the rest of the test still runs.
func adminUntilDone(t *testing.T, n *node, method, path string) {
	t.Helper()
	reported := false
	pollUntil(t, fmt.Sprintf("node %s admin %s %s", n.name, method, path), 20*time.Millisecond, func() (bool, string) {
		status, body, err := adminRequest(n, method, path, "")
		switch {
		case err != nil:
			return false, err.Error()
		case status/100 == 2:
			return true, ""
		case status == http.StatusInternalServerError && !reported:
			reported = true
			t.Errorf("node %s admin %s %s: HTTP 500 %s; the database being unreachable is a 503", n.name, method, path, body)
		case status == http.StatusInternalServerError:
		case status != http.StatusServiceUnavailable:
			t.Fatalf("node %s admin %s %s: HTTP %d %s", n.name, method, path, status, body)
		}
		return false, fmt.Sprintf("HTTP %d %s", status, body)
	})
}

// ---- account changes, and when each node applied them ----

// change is an account disabled or enabled through one node's admin API
// during a test: when it was sent and committed, and when nodes were
// first seen answering in its new state.
type change struct {
	user     *faultUser
	disabled bool // the account's state after the change
	via      *node
	// sent is when the request left, committed when its answer came.
	sent, committed time.Time
	// seen is, per node, the first answer in the new state (the node it
	// went through applies it at once: committed).
	seen map[string]time.Time
}

// setStatus disables or enables u's account through node via (again while
// via answers 503: the database may just be back; see adminUntilDone).
func setStatus(t *testing.T, u *faultUser, via *node, disable bool) *change {
	t.Helper()
	ch := &change{user: u, disabled: disable, via: via, sent: time.Now(), seen: map[string]time.Time{}}
	action := "enable"
	if disable {
		action = "disable"
	}
	adminUntilDone(t, via, "POST", "/cacgate/accounts/"+u.username+"/"+action)
	ch.committed = time.Now()
	ch.seen[via.name] = ch.committed
	return ch
}

// applied reports whether an answer is in the change's new state.
func (ch *change) applied(h hit) bool {
	if ch.disabled {
		return h.refusedDisabled()
	}
	return h.admitted()
}

// watch asks node n for the page with the account's card every 10 ms
// until n answers in the change's new state (up to faultDeadline),
// recording the answers with the load's, and records when that was. It
// logs how long after the commit that was, and how many answers in
// between still gave the old state: admitted after a disable, refused
// before an enable.
func (ch *change) watch(t *testing.T, l *load, n *node) time.Duration {
	t.Helper()
	u := ch.user
	var seen time.Time
	pollUntil(t, fmt.Sprintf("node %s applies the change to %s", n.name, u.username), 10*time.Millisecond, func() (bool, string) {
		h := u.get(n)
		l.record(h)
		if ch.applied(h) {
			seen = h.end
			return true, ""
		}
		return false, h.String()
	})
	// The load's clients may have seen it first.
	l.mu.Lock()
	for _, h := range l.hits {
		if h.user == u.username && h.node == n.name && h.start.After(ch.committed) && ch.applied(h) && h.end.Before(seen) {
			seen = h.end
		}
	}
	l.mu.Unlock()
	stale := l.count(func(h hit) bool {
		return h.user == u.username && h.node == n.name && h.start.After(ch.committed) && h.end.Before(seen) &&
			!ch.applied(h) && (h.admitted() || h.refusedDisabled())
	})
	ch.seen[n.name] = seen
	state := "enabled"
	if ch.disabled {
		state = "disabled"
	}
	took := seen.Sub(ch.committed)
	t.Logf("%s %s through node %s: node %s applied it %v after the commit, answering with the old state %d times in between",
		u.username, state, ch.via.name, n.name, took.Round(time.Millisecond), stale)
	return took
}

// statusJudge judges load answers against the changes made during the
// test (in the order they were sent): an account is active before its
// first change; from the moment a change applies on a node (committed
// there, or seen there) until the account's next change is sent, that
// node must answer in the change's state. Between a commit and a node's
// applying it, either state is an answer.
func statusJudge(changes []*change) func(hit) string {
	return func(h hit) string {
		var mine []*change
		for _, ch := range changes {
			if ch.user.username == h.user {
				mine = append(mine, ch)
			}
		}
		if (len(mine) == 0 || h.end.Before(mine[0].sent)) && h.status == http.StatusForbidden {
			return "refused while the account was active"
		}
		for i, ch := range mine {
			if i+1 < len(mine) && !h.end.Before(mine[i+1].sent) {
				continue // judged by a later change
			}
			applies, ok := ch.seen[h.node]
			switch {
			case !ok || !h.start.After(applies):
			case ch.disabled && h.admitted():
				return fmt.Sprintf("admitted after the disable through node %s applied here", ch.via.name)
			case !ch.disabled && h.status == http.StatusForbidden:
				return fmt.Sprintf("refused after the enable through node %s applied here", ch.via.name)
			}
		}
		return ""
	}
}

// allOf combines judges of load answers: the first objection counts.
func allOf(judges ...func(hit) string) func(hit) string {
	return func(h hit) string {
		for _, j := range judges {
			if why := j(h); why != "" {
				return why
			}
		}
		return ""
	}
}

// servedFromCache objects to a 503 for the given users' cards: cards a
// node has cached are served without the database (the hot path does no
// I/O).
func servedFromCache(users []*faultUser) func(hit) string {
	return func(h hit) string {
		for _, u := range users {
			if h.user == u.username && h.status == http.StatusServiceUnavailable {
				return "a cached card refused for want of the database"
			}
		}
		return ""
	}
}

// ---- load ----

// hit is one answer a load client got.
type hit struct {
	user       string // the username of the client's card
	node       string
	start, end time.Time
	status     int
	retryAfter string
	location   string
	body       string // its beginning
	err        error
}

func (h hit) String() string {
	if h.err != nil {
		return fmt.Sprintf("%s on node %s at %s: %v", h.user, h.node, h.start.Format("15:04:05.000"), h.err)
	}
	return fmt.Sprintf("%s on node %s at %s: HTTP %d (Retry-After %q, Location %q) %q", h.user, h.node, h.start.Format("15:04:05.000"), h.status, h.retryAfter, h.location, h.body)
}

// get asks node n for the protected page with u's card.
func (u *faultUser) get(n *node) hit {
	h := hit{user: u.username, node: n.name, start: time.Now()}
	req, _ := http.NewRequest("GET", "https://"+n.site+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := u.br.Do(req)
	if err != nil {
		h.err, h.end = err, time.Now()
		return h
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	h.end = time.Now()
	h.status, h.retryAfter, h.location = resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Location")
	h.body = string(b)
	if len(h.body) > 300 {
		h.body = h.body[:300]
	}
	return h
}

// admitted: the page itself, for this user.
func (h hit) admitted() bool { return h.status == http.StatusOK }

// refusedDisabled: the "account disabled" refusal.
func (h hit) refusedDisabled() bool {
	return h.status == http.StatusForbidden && strings.Contains(h.body, "disabled")
}

const (
	// loadPace is the pause between one client's requests: four clients
	// make some two hundred requests a second, enough for every fault to
	// happen under load without starving the database on two cores.
	loadPace = 20 * time.Millisecond
	// loadMaxRequests bounds each client's requests.
	loadMaxRequests = 20000
)

// load is clients asking nodes for the protected page in turn until
// stopped, recording every answer.
type load struct {
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	hits     []hit
}

// startLoad starts one client per user, each visiting the nodes in turn,
// until finish or the end of the test.
func startLoad(t *testing.T, users []*faultUser, nodes []*node) *load {
	l := &load{stop: make(chan struct{})}
	t.Cleanup(func() { l.finish() })
	for k, u := range users {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := range loadMaxRequests {
				l.record(u.get(nodes[(i+k)%len(nodes)]))
				select {
				case <-l.stop:
					return
				case <-time.After(loadPace):
				}
			}
		}()
	}
	return l
}

func (l *load) record(h hit) {
	l.mu.Lock()
	l.hits = append(l.hits, h)
	l.mu.Unlock()
}

// count is how many answers so far match pred.
func (l *load) count(pred func(hit) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, h := range l.hits {
		if pred(h) {
			n++
		}
	}
	return n
}

// waitAnswers waits until every user has had n answers (of any kind) from
// every node to requests sent after since.
func (l *load) waitAnswers(t *testing.T, what string, users []*faultUser, nodes []*node, since time.Time, n int) {
	t.Helper()
	pollUntil(t, what, 20*time.Millisecond, func() (bool, string) {
		for _, u := range users {
			for _, nd := range nodes {
				got := l.count(func(h hit) bool { return h.user == u.username && h.node == nd.name && !h.start.Before(since) })
				if got < n {
					return false, fmt.Sprintf("%s has %d answers from node %s", u.username, got, nd.name)
				}
			}
		}
		return true, ""
	})
}

// finish stops the clients and returns every answer they got.
func (l *load) finish() []hit {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hits)
}

// checkHits fails the test for every answer no fault excuses: a transport
// error, a 5xx other than 503, a 503 without Retry-After, a 200 for anyone
// but the card's holder, any status but 200, 403 and 503; and for every
// answer judge refuses (it returns why, or ""). It logs a tally of the
// answers per node and status.
func checkHits(t *testing.T, hits []hit, judge func(hit) string) {
	t.Helper()
	tally := map[string]int{}
	bad := 0
	for _, h := range hits {
		key := fmt.Sprintf("node %s %d", h.node, h.status)
		if h.err != nil {
			key = fmt.Sprintf("node %s error", h.node)
		}
		tally[key]++
		why := ""
		switch {
		case h.err != nil:
			why = "transport error"
		case h.status == http.StatusServiceUnavailable && h.retryAfter == "":
			why = "503 without Retry-After"
		case h.status == http.StatusOK && h.body != "user="+h.user+" node="+h.node:
			why = "admitted as someone else"
		case h.status != http.StatusOK && h.status != http.StatusForbidden && h.status != http.StatusServiceUnavailable:
			why = "unexpected status"
		default:
			why = judge(h)
		}
		if why != "" {
			if bad++; bad <= 20 {
				t.Errorf("load: %s: %s", why, h)
			}
		}
	}
	if bad > 20 {
		t.Errorf("load: %d bad answers in all", bad)
	}
	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " [%s: %d]", k, tally[k])
	}
	t.Logf("load: %d answers:%s", len(hits), b.String())
}

// ---- enrollment, one step at a time ----

// enrollee is one of the roster's namesakes (see clusterRoster) enrolling
// step by step: the page it holds is the form it will send next.
type enrollee struct {
	i    int
	card *testpki.Card
	br   *http.Client
	page string
}

// enrollee issues namesake i's card.
func (c *cluster) enrollee(t *testing.T, i int) *enrollee {
	t.Helper()
	card, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{
		Name: fmt.Sprintf("garcia%d", i), Family: "GARCIA", Given: "LUIS", Middle: "A", EDIPI: fmt.Sprint(1234568000 + i), Affiliation: "USAF",
	})
	if err != nil {
		t.Fatal(err)
	}
	return &enrollee{i: i, card: card, br: c.browser(t, card)}
}

func (e *enrollee) edipi() string       { return fmt.Sprint(1234568000 + e.i) }
func (e *enrollee) fingerprint() string { return fmt.Sprintf("%x", sha256.Sum256(e.card.Cert.Raw)) }

// Enrollment steps, by the form a page holds.
const (
	stepIdentity  = "/new"
	stepProfile   = "/profile"
	stepQuestions = "/questions"
)

// nextStep is the step whose form page holds, "" if none.
func nextStep(page string) string {
	switch {
	case strings.Contains(page, `name="question-1"`):
		return stepQuestions
	case strings.Contains(page, `name="password"`):
		return stepProfile
	case strings.Contains(page, `name="ssn"`):
		return stepIdentity
	}
	return ""
}

// begin takes the card to the identity form on node n: the banner, then
// the form. Its page is then the identity form.
func (e *enrollee) begin(t *testing.T, n *node) {
	t.Helper()
	resp, page := get(t, e.br, "https://"+n.site+"/", "text/html")
	if strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/consent") {
		resp, page = acceptBanner(t, e.br, n.site, "/")
	}
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/enroll") {
		t.Fatalf("namesake %d on node %s: HTTP %d, Location %q, want the way to enrollment\n%s", e.i, n.name, resp.StatusCode, resp.Header.Get("Location"), page)
	}
	e.restart(t, n)
}

// restart fetches a fresh identity form from node n.
func (e *enrollee) restart(t *testing.T, n *node) {
	t.Helper()
	resp, page := get(t, e.br, "https://"+n.site+"/.cacgate/enroll/new", "text/html")
	if resp.StatusCode != http.StatusOK || nextStep(page) != stepIdentity {
		t.Fatalf("namesake %d: identity form on node %s: HTTP %d\n%s", e.i, n.name, resp.StatusCode, page)
	}
	e.page = page
}

// fields is what namesake e types into the form of step.
func (e *enrollee) fields(step string) url.Values {
	switch step {
	case stepIdentity:
		return url.Values{"idtype": {"ssn"}, "ssn": {fmt.Sprintf("900-44-%04d", e.i+1)}, "dob": {"1990-01-01"}}
	case stepProfile:
		return url.Values{"email": {"person@example.mil"}, "organization": {"USN"}, "location": {"North America"},
			"password": {"Correct.Horse~Bat9"}, "confirm": {"Correct.Horse~Bat9"}}
	}
	qs := credential.Questions()
	form := url.Values{}
	for i := 1; i <= 3; i++ {
		k := fmt.Sprint(i)
		form.Set("question-"+k, qs[i].ID)
		form.Set("answer-"+k, "answer number "+k)
		form.Set("confirm-"+k, "answer number "+k)
	}
	return form
}

// stepAnswer is what a step's POST got.
type stepAnswer struct {
	status     int
	retryAfter string
	page       string
	err        error
}

// send posts the form e's page holds to node n, filled in; it does not
// change e.page (the caller decides what the answer means).
func (e *enrollee) send(n *node) stepAnswer {
	step := nextStep(e.page)
	form := url.Values{}
	for _, name := range []string{"csrf", "state"} {
		if m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(e.page); m != nil {
			form.Set(name, html.UnescapeString(m[1]))
		}
	}
	for k, v := range e.fields(step) {
		form[k] = v
	}
	req, err := http.NewRequest("POST", "https://"+n.site+"/.cacgate/enroll"+step, strings.NewReader(form.Encode()))
	if err != nil {
		return stepAnswer{err: err}
	}
	// As a browser sends it: an answer for people (a page, the form kept).
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := e.br.Do(req)
	if err != nil {
		return stepAnswer{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return stepAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), page: string(b)}
}

var garciaUsername = regexp.MustCompile(`luis\.a\.garcia[0-9]*`)

// completed is the username on a completion page, "" if a is none.
func (a stepAnswer) completed() string {
	if a.err != nil || a.status != http.StatusOK || !strings.Contains(a.page, "Account registration complete") {
		return ""
	}
	return garciaUsername.FindString(a.page)
}

func (a stepAnswer) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("HTTP %d (Retry-After %q)\n%s", a.status, a.retryAfter, lastLines(a.page, 30))
}

// formUsed: the "This form was already sent" refusal (its state was used).
func (a stepAnswer) formUsed() bool {
	return a.status == http.StatusConflict && strings.Contains(a.page, "already sent")
}

// accountExists: the "You already have an account" page.
func (a stepAnswer) accountExists() bool {
	return a.status == http.StatusConflict && strings.Contains(a.page, "You already have an account")
}

// advance sends e's form to node n and expects the next form (or, for the
// questions, the completion page), which becomes e's page.
func (e *enrollee) advance(t *testing.T, n *node) stepAnswer {
	t.Helper()
	step := nextStep(e.page)
	a := e.send(n)
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("namesake %d: %s on node %s: %s", e.i, step, n.name, a)
	}
	e.page = a.page
	return a
}

// finish drives e's enrollment to its end on node n from wherever it
// stands, as a person would after a node died under them: the form they
// hold is sent again; a form the dead node had already used gets "already
// sent", and the person starts again; "you already have an account" means
// the dead node created it. It returns the username of the completion
// page, or "" when the account already existed.
func (e *enrollee) finish(t *testing.T, n *node) string {
	t.Helper()
	for range 8 {
		if nextStep(e.page) == "" {
			e.restart(t, n)
		}
		step := nextStep(e.page)
		a := e.send(n)
		switch {
		case a.completed() != "":
			e.page = a.page
			return a.completed()
		case a.accountExists():
			return ""
		case a.formUsed():
			t.Logf("namesake %d: %s on node %s: form already used by the killed node; starting again", e.i, step, n.name)
			e.page = ""
		case a.err == nil && a.status == http.StatusOK && nextStep(a.page) != "" && nextStep(a.page) != step:
			e.page = a.page
		default:
			t.Fatalf("namesake %d: %s on node %s: %s", e.i, step, n.name, a)
		}
	}
	t.Fatalf("namesake %d: enrollment on node %s did not end", e.i, n.name)
	return ""
}

// ---- the database, seen directly ----

// dbAccount is an account row and what hangs off it.
type dbAccount struct {
	id                      int64
	username, edipi, status string
	hasPassword             bool
	cards                   []string // fingerprints
	answers                 int
}

// dbSnapshot is the accounts in the database when checkDatabase read it.
type dbSnapshot struct {
	byUsername, byEDIPI map[string]*dbAccount
	usedStates          int
}

// openDatabase opens the cluster's database for inspection.
func (c *cluster) openDatabase(t *testing.T) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", c.dsn
	if c.opts.sqlite {
		driver, dsn = "sqlite", "file:"+c.sqlitePath()+"?_pragma=busy_timeout(20000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// Rows of the account database that must not exist: each query names
// half-written or orphaned records. A constraint should already prevent
// most of them; the suite checks what was stored, not what should have.
var integrityQueries = map[string]string{
	"duplicate username": `SELECT username FROM accounts GROUP BY username HAVING COUNT(*) > 1`,
	"duplicate DoD ID":   `SELECT edipi FROM accounts GROUP BY edipi HAVING COUNT(*) > 1`,
	"card without account": `SELECT c.fingerprint FROM cards c LEFT JOIN accounts a ON a.id = c.account_id
		WHERE a.id IS NULL`,
	"cleared card without account": `SELECT c.fingerprint FROM cleared_cards c LEFT JOIN accounts a ON a.id = c.account_id
		WHERE a.id IS NULL`,
	"security answer without account": `SELECT CAST(s.account_id AS TEXT) FROM security_answers s LEFT JOIN accounts a ON a.id = s.account_id
		WHERE a.id IS NULL`,
	"password history without account": `SELECT CAST(p.account_id AS TEXT) FROM password_history p LEFT JOIN accounts a ON a.id = p.account_id
		WHERE a.id IS NULL`,
	"card row incomplete": `SELECT fingerprint FROM cards WHERE length(fingerprint) <> 64 OR not_after <= 0 OR created_at <= 0`,
	"account row incomplete": `SELECT username FROM accounts WHERE username = '' OR length(edipi) <> 10
		OR status NOT IN ('active', 'disabled', 'pending') OR created_at <= 0 OR updated_at < created_at`,
	"security answer incomplete": `SELECT CAST(account_id AS TEXT) FROM security_answers
		WHERE question_id = '' OR answer_hash = '' OR slot NOT IN (0, 1, 2)`,
}

// checkDatabase reads the account database directly, fails the test for
// every record that is half-written, orphaned or duplicated, and returns
// the accounts. A self-enrolled account (one with a password) is whole
// when it has its names, email and categories, a card, and three security
// answers; answers without a password are half of an enrollment.
func (c *cluster) checkDatabase(t *testing.T) *dbSnapshot {
	t.Helper()
	db := c.openDatabase(t)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
	defer cancel()
	for what, q := range integrityQueries {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			t.Errorf("database: %s: %s", what, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	if c.opts.sqlite {
		for _, pragma := range []string{"PRAGMA integrity_check", "PRAGMA foreign_key_check"} {
			rows, err := db.QueryContext(ctx, pragma)
			if err != nil {
				t.Fatalf("%s: %v", pragma, err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				if len(vals) == 1 && fmt.Sprint(vals[0]) == "ok" {
					continue
				}
				t.Errorf("database: %s: %v", pragma, vals)
			}
			rows.Close()
		}
	}

	snap := &dbSnapshot{byUsername: map[string]*dbAccount{}, byEDIPI: map[string]*dbAccount{}}
	byID := map[int64]*dbAccount{}
	rows, err := db.QueryContext(ctx, `SELECT id, username, edipi, status, given_name, family_name, email, categories, password_hash FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		a := &dbAccount{}
		var given, family, email, categories, hash string
		if err := rows.Scan(&a.id, &a.username, &a.edipi, &a.status, &given, &family, &email, &categories, &hash); err != nil {
			t.Fatal(err)
		}
		a.hasPassword = hash != ""
		if !store.ValidUsername(a.username) || !store.ValidEDIPI(a.edipi) {
			t.Errorf("database: account %q has an invalid username or DoD ID %q", a.username, a.edipi)
		}
		if a.hasPassword && (given == "" || family == "" || email == "" || categories == "[]" ||
			!(strings.HasPrefix(hash, "$argon2id$") || strings.HasPrefix(hash, "$pbkdf2"))) {
			t.Errorf("database: self-enrolled account %s lacks a name, email, categories or a well-formed password hash", a.username)
		}
		snap.byUsername[a.username], snap.byEDIPI[a.edipi], byID[a.id] = a, a, a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, q := range []struct {
		sql string
		add func(a *dbAccount, v string)
	}{
		{`SELECT account_id, fingerprint FROM cards`, func(a *dbAccount, v string) { a.cards = append(a.cards, v) }},
		{`SELECT account_id, question_id FROM security_answers`, func(a *dbAccount, _ string) { a.answers++ }},
	} {
		rows, err := db.QueryContext(ctx, q.sql)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			if a := byID[id]; a != nil {
				q.add(a, v)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	for _, a := range snap.byUsername {
		switch {
		case a.hasPassword && (a.answers != 3 || len(a.cards) == 0):
			t.Errorf("database: self-enrolled account %s is half-written: %d cards, %d security answers", a.username, len(a.cards), a.answers)
		case !a.hasPassword && a.answers != 0:
			t.Errorf("database: account %s has %d security answers but no password", a.username, a.answers)
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM used_states`).Scan(&snap.usedStates); err != nil {
		t.Fatal(err)
	}
	return snap
}

// enrolled fails the test unless the database holds the account a
// completion page named, whole, active, with namesake e's DoD ID and card.
func (s *dbSnapshot) enrolled(t *testing.T, e *enrollee, username string) {
	t.Helper()
	a := s.byUsername[username]
	switch {
	case a == nil:
		t.Errorf("database: no account %s, though namesake %d's enrollment got a completion page naming it (lost)", username, e.i)
	case a.edipi != e.edipi() || !slices.Contains(a.cards, e.fingerprint()) || !a.hasPassword || a.status != "active":
		t.Errorf("database: account %s is not namesake %d's enrollment: DoD ID %s, cards %v, password %v, status %s", username, e.i, a.edipi, a.cards, a.hasPassword, a.status)
	}
}

// wholeOrAbsent fails the test if namesake e has an account that is not a
// whole self-enrollment of e's card (checkDatabase judged its rows).
func (s *dbSnapshot) wholeOrAbsent(t *testing.T, e *enrollee) {
	t.Helper()
	if a := s.byEDIPI[e.edipi()]; a != nil && (!a.hasPassword || !slices.Contains(a.cards, e.fingerprint())) {
		t.Errorf("database: namesake %d's account %s is half an enrollment: cards %v, password %v", e.i, a.username, a.cards, a.hasPassword)
	}
}

// status fails the test unless username's account has the given status.
func (s *dbSnapshot) status(t *testing.T, username, want string) {
	t.Helper()
	if a := s.byUsername[username]; a == nil || a.status != want {
		t.Errorf("database: account %s: %+v, want status %s", username, a, want)
	}
}

// ---- small things ----

// jsonError is the "error" of a JSON error body, "" if it has none.
func jsonError(body string) string {
	var v struct{ Error string }
	if json.Unmarshal([]byte(body), &v) != nil {
		return ""
	}
	return v.Error
}

// auditLines are node n's audit entries that contain every one of subs.
func (c *cluster) auditLines(t *testing.T, n *node, subs ...string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "audit-"+n.name+".log"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for line := range bytes.Lines(data) {
		ok := true
		for _, s := range subs {
			ok = ok && bytes.Contains(line, []byte(s))
		}
		if ok {
			out = append(out, string(line))
		}
	}
	return out
}
