package portal

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// The pages that take a username (password sign-in, "register this card",
// the password reset) must not tell whether it exists: an unknown username
// is answered exactly as a known one given a wrong secret, attempt after
// attempt, through the lock and past it. Only the audit log says which it
// was.

// oracleStart is the clock both runs of a comparison start at.
var oracleStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// oracleSteps are when each wrong attempt is made, after oracleStart: the
// first three a minute apart (the third locks), one while locked, one
// after the lock would have ended had it been counted from the first
// failure (30 minutes) but not from the third, one after the lock.
var oracleSteps = []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute, 31 * time.Minute, 33 * time.Minute}

// oracleAnswer is one response, normalised for comparison.
type oracleAnswer struct {
	status  int
	headers string
	body    string
}

var (
	// Per-request tokens: the CSRF token and the sealed state.
	oracleTokenRE = regexp.MustCompile(`(name="(?:csrf|state)" value=")[^"]*(")`)
	// A cookie's value.
	oracleCookieRE = regexp.MustCompile(`^([^=]*=)[^;]*`)
)

// normalise replaces the per-request tokens and the username as typed
// (which the page echoes) by placeholders.
func normalise(w *httptest.ResponseRecorder, username string) oracleAnswer {
	body := oracleTokenRE.ReplaceAllString(w.Body.String(), "${1}TOKEN${2}")
	body = strings.ReplaceAll(body, username, "USERNAME")
	var hs []string
	for k, vs := range w.Header() {
		for _, v := range vs {
			if k == "Set-Cookie" {
				v = oracleCookieRE.ReplaceAllString(v, "${1}VALUE")
			}
			hs = append(hs, k+": "+strings.ReplaceAll(v, username, "USERNAME"))
		}
	}
	sort.Strings(hs)
	return oracleAnswer{status: w.Code, headers: strings.Join(hs, "\n"), body: body}
}

// compareRuns fails t where the two runs' answers differ.
func compareRuns(t *testing.T, known, unknown []oracleAnswer) {
	t.Helper()
	for i := range known {
		k, u := known[i], unknown[i]
		if k.status != u.status {
			t.Errorf("attempt %d: HTTP %d for the known username, %d for the unknown one", i+1, k.status, u.status)
		}
		if k.headers != u.headers {
			t.Errorf("attempt %d: headers differ:\nknown:\n%s\nunknown:\n%s", i+1, k.headers, u.headers)
		}
		if k.body != u.body {
			t.Errorf("attempt %d: pages differ:\nknown:\n%s\nunknown:\n%s", i+1, k.body, u.body)
		}
	}
}

// oracleSealers are the sealing keys of the tests' sites, one per test, so
// that both runs of a comparison are one site's: the questions shown for
// an unknown username depend on the key, as they do on the username.
var oracleSealers sync.Map

// oracleHarness is a store harness whose clock starts at oracleStart,
// with the test's sealing key.
func oracleHarness(t *testing.T) *storeHarness {
	t.Helper()
	h := newStoreHarness(t, selfservice.Config{})
	sealer, _ := oracleSealers.LoadOrStore(t.Name(), newSealer(t))
	h.sealer = sealer.(*selfservice.Sealer)
	h.deps.Sealer = h.sealer
	h.rebuild()
	h.mu.Lock()
	h.now = oracleStart
	h.mu.Unlock()
	return h
}

// at sets the harness's clock to oracleStart+d.
func (s *storeHarness) at(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = oracleStart.Add(d)
}

// failureReasons are the reasons of the audited failures of event.
func (s *storeHarness) failureReasons(event string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var reasons []string
	for _, a := range s.audits {
		if a.Event == event && a.Outcome == "failure" {
			reasons = append(reasons, a.Fields["reason"])
		}
	}
	return reasons
}

// wantReasons checks the audited failures' reasons, and that an unknown
// username as typed is never recorded.
func (s *storeHarness) wantReasons(t *testing.T, event string, want ...string) {
	t.Helper()
	got := s.failureReasons(event)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s failures audited with reasons %v, want %v", event, got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.audits {
		if a.Fields["reason"] == "unknown_username" && a.Fields["username"] != "" {
			t.Errorf("unknown username recorded: %+v", a)
		}
	}
}

const oracleKnown, oracleUnknown = "john.q.doe", "jane.x.roe" // of one length, as the pages echo them

// The audited reasons of the known username's run: three wrong secrets,
// the third locking, then refusals while locked, then a wrong one again.
var (
	knownPasswordReasons = []string{"bad_password", "bad_password", "locked", "locked", "locked", "bad_password"}
	unknownReasons       = []string{"unknown_username", "unknown_username", "unknown_username", "unknown_username", "unknown_username", "unknown_username"}
)

// TestUsernameOracleSignIn: /.cacgate/login answers an unknown username as
// a known one with a wrong password.
func TestUsernameOracleSignIn(t *testing.T) {
	run := func(t *testing.T, username string) ([]oracleAnswer, *storeHarness) {
		h := oracleHarness(t)
		h.addAccount(oracleKnown, "1234567890", testPassword)
		f := newPortal(t, h.flow, true)
		get := f.serve(t, httptest.NewRequest("GET", PathLogin, nil), Visitor{})
		cookies := get.Result().Cookies()
		csrf := oracleTokenRE.FindStringSubmatch(get.Body.String())
		if get.Code != http.StatusOK || len(cookies) != 1 || csrf == nil {
			t.Fatalf("sign-in page: HTTP %d, cookies %v", get.Code, cookies)
		}
		token := regexp.MustCompile(`name="csrf" value="([^"]*)"`).FindStringSubmatch(get.Body.String())[1]
		var answers []oracleAnswer
		for _, d := range oracleSteps {
			h.at(d)
			form := url.Values{"csrf": {token}, "next": {"/app"}, "username": {username}, "password": {testWrongPassword}}
			r := httptest.NewRequest("POST", PathLogin, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Accept", "text/html")
			r.AddCookie(cookies[0])
			w := f.serve(t, r, Visitor{})
			h.bodies = append(h.bodies, w.Body.String())
			answers = append(answers, normalise(w, username))
		}
		return answers, h
	}
	known, hk := run(t, oracleKnown)
	unknown, hu := run(t, oracleUnknown)
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusForbidden, http.StatusForbidden, http.StatusForbidden, http.StatusUnauthorized} {
		if known[i].status != want {
			t.Fatalf("known username, attempt %d: HTTP %d, want %d\n%s", i+1, known[i].status, want, known[i].body)
		}
	}
	if !strings.Contains(known[0].body, "2 tries remaining") || !strings.Contains(known[2].body, "locked until 2026-03-02 09:32 UTC") {
		t.Errorf("known username's pages:\n%s\n%s", known[0].body, known[2].body)
	}
	compareRuns(t, known, unknown)
	hk.wantReasons(t, "signin.password", knownPasswordReasons...)
	hu.wantReasons(t, "signin.password", unknownReasons...)
}

// TestUsernameOracleLink: "register this card" answers an unknown username
// as a known one with a wrong password.
func TestUsernameOracleLink(t *testing.T) {
	run := func(t *testing.T, username string) ([]oracleAnswer, *storeHarness) {
		h := oracleHarness(t)
		h.addAccount(oracleKnown, "1234567890", testPassword)
		var answers []oracleAnswer
		for _, d := range oracleSteps {
			h.at(d)
			answers = append(answers, normalise(h.post(PathLink, linkForm(username, testWrongPassword)), username))
		}
		return answers, h
	}
	known, hk := run(t, oracleKnown)
	unknown, hu := run(t, oracleUnknown)
	for i, want := range []int{http.StatusUnprocessableEntity, http.StatusUnprocessableEntity, http.StatusForbidden, http.StatusForbidden, http.StatusForbidden, http.StatusUnprocessableEntity} {
		if known[i].status != want {
			t.Fatalf("known username, attempt %d: HTTP %d, want %d\n%s", i+1, known[i].status, want, known[i].body)
		}
	}
	if !strings.Contains(known[1].body, "1 try remaining") || !strings.Contains(known[3].body, "2026-03-02 09:32 UTC") {
		t.Errorf("known username's pages:\n%s\n%s", known[1].body, known[3].body)
	}
	compareRuns(t, known, unknown)
	hk.wantReasons(t, "card.linked", knownPasswordReasons...)
	hu.wantReasons(t, "card.linked", unknownReasons...)
}

// TestUsernameOracleReset: the password reset answers an unknown username
// as a known one (whose questions happen to be the ones shown for it)
// with wrong answers, from the questions page on.
func TestUsernameOracleReset(t *testing.T) {
	run := func(t *testing.T, username string) ([]oracleAnswer, *storeHarness) {
		h := oracleHarness(t)
		a := h.addAccount(oracleKnown, "1234567890", testPassword)
		h.setAnswers(a, oracleUnknown)
		var answers []oracleAnswer
		for _, d := range oracleSteps {
			h.at(d)
			// Step 1 each time: the state expires 30 minutes after it.
			w := h.post(PathReset, url.Values{"username": {username}})
			answers = append(answers, normalise(w, username))
			w = h.post(PathReset, resetForm(stateOf(t, w), "wrong one", "wrong two", "wrong three", testNewPassword, testNewPassword))
			answers = append(answers, normalise(w, username))
		}
		return answers, h
	}
	known, hk := run(t, oracleKnown)
	unknown, hu := run(t, oracleUnknown)
	for i, want := range []int{http.StatusUnprocessableEntity, http.StatusUnprocessableEntity, http.StatusForbidden, http.StatusForbidden, http.StatusForbidden, http.StatusUnprocessableEntity} {
		if known[2*i].status != http.StatusOK || known[2*i+1].status != want {
			t.Fatalf("known username, attempt %d: HTTP %d then %d, want 200 then %d\n%s", i+1, known[2*i].status, known[2*i+1].status, want, known[2*i+1].body)
		}
	}
	compareRuns(t, known, unknown)
	hk.wantReasons(t, "password.reset", "bad_answers", "bad_answers", "locked", "locked", "locked", "bad_answers")
	hu.wantReasons(t, "password.reset", unknownReasons...)
}

// TestUsernameOracleAcrossPages: an unknown username's lock, like an
// account's, holds on every page and for every card: locked by wrong
// passwords at the sign-in page, it is locked on the reset page too.
func TestUsernameOracleAcrossPages(t *testing.T) {
	run := func(t *testing.T, username string) oracleAnswer {
		h := oracleHarness(t)
		a := h.addAccount(oracleKnown, "1234567890", testPassword)
		h.setAnswers(a, oracleUnknown)
		for range loginMaxFailures {
			if res, err := h.flow.Service().SignIn(context.Background(), selfservice.SignInInput{Username: username,
				Password: testWrongPassword, Address: "192.0.2.9"}); err != nil || (res.Status != selfservice.Wrong && res.Status != selfservice.Locked) {
				t.Fatalf("sign-in: %+v %v", res.Outcome, err)
			}
		}
		state := stateOf(t, h.post(PathReset, url.Values{"username": {username}}))
		return normalise(h.post(PathReset, resetForm(state, "a b c d", "e f g h", "i j k l", testNewPassword, testNewPassword)), username)
	}
	known, unknown := run(t, oracleKnown), run(t, oracleUnknown)
	if known.status != http.StatusForbidden || !strings.Contains(known.body, "Account locked") {
		t.Fatalf("known username: HTTP %d\n%s", known.status, known.body)
	}
	compareRuns(t, []oracleAnswer{known}, []oracleAnswer{unknown})
}

// setAnswers gives a the security questions the reset shows for the
// unknown username like (read from its questions page), with answers
// nobody types in these tests.
func (s *storeHarness) setAnswers(a *store.Account, like string) {
	s.t.Helper()
	ctx := context.Background()
	ids := s.questionsShown(like)
	var answers [credential.QuestionsRequired]store.Answer
	for i, id := range ids {
		hash, err := s.deps.Hasher.HashAnswer(ctx, "right answer "+string(rune('a'+i)))
		if err != nil {
			s.t.Fatal(err)
		}
		answers[i] = store.Answer{QuestionID: id, Hash: hash}
	}
	if err := s.db.SetAnswers(ctx, a.ID, answers); err != nil {
		s.t.Fatal(err)
	}
}

var questionLabelRE = regexp.MustCompile(`<label for="answer-\d">\d\. ([^<]*)</label>`)

// questionsShown returns the IDs of the questions the reset's second step
// asks for username.
func (s *storeHarness) questionsShown(username string) [credential.QuestionsRequired]string {
	s.t.Helper()
	w := s.post(PathReset, url.Values{"username": {username}})
	m := questionLabelRE.FindAllStringSubmatch(w.Body.String(), -1)
	var ids [credential.QuestionsRequired]string
	if w.Code != http.StatusOK || len(m) != len(ids) {
		s.t.Fatalf("questions page: HTTP %d\n%s", w.Code, w.Body)
	}
	for i := range ids {
		for _, q := range credential.Questions() {
			if html.UnescapeString(m[i][1]) == q.Text {
				ids[i] = q.ID
			}
		}
		if ids[i] == "" {
			s.t.Fatalf("no question %q", m[i][1])
		}
	}
	return ids
}
