package main

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// soakKind is a kind of soak traffic. Every request the soak sends is
// counted under one.
type soakKind string

const (
	// kindCached: an enrolled card with a valid consent cookie asks for
	// an application page (the hot path, and a cache miss once per card
	// per cache_ttl or config reload).
	kindCached soakKind = "cached"
	// kindConsent: the banner page and its "I Accept" post.
	kindConsent soakKind = "consent"
	// kindSignout: a card holder's sign-out (page, post) and the banner
	// redirect that must follow it.
	kindSignout soakKind = "signout"
	// kindEnroll: a first-time card's pages from its first request to its
	// first admitted one.
	kindEnroll soakKind = "enroll"
	// kindPassword: a password sign-in without a card, the session's
	// requests, its sign-out, and the ended session's refusal.
	kindPassword soakKind = "password"
	// kindRevoked: the card the CRL refresh revokes, before and after.
	kindRevoked soakKind = "revoked"
	// kindReload: a config reload through the admin API.
	kindReload soakKind = "reload"
)

var soakKinds = []soakKind{kindCached, kindConsent, kindSignout, kindEnroll, kindPassword, kindRevoked, kindReload}

// outcome is how a response compares with what its scenario expects.
type outcome int

const (
	// outcomeOK: the answer the scenario expects.
	outcomeOK outcome = iota
	// outcomeRefused: an expected refusal (a revoked card's 403, the
	// banner after a sign-out, an ended session's 401).
	outcomeRefused
	// outcomeUnexpected: a transport error, a 5xx, or any other answer
	// the scenario did not expect.
	outcomeUnexpected
)

// kindStats counts one kind of traffic over an interval or the whole run.
type kindStats struct {
	Requests   int64 `json:"requests"`
	Refused    int64 `json:"expected_refusals"`
	Unexpected int64 `json:"unexpected"`
	lat        hist
}

// soakProblem is one unexpected answer, kept for the report.
type soakProblem struct {
	At     time.Duration `json:"at_ns"` // since the traffic started
	Kind   soakKind      `json:"kind"`
	Node   string        `json:"node"`
	Detail string        `json:"detail"`
}

// maxProblems bounds the unexpected answers kept with their detail; all
// are counted.
const maxProblems = 20

// soakStats is the soak's tally: per kind for the current interval and for
// the whole run, and the first unexpected answers.
type soakStats struct {
	start time.Time

	mu       sync.Mutex
	interval map[soakKind]*kindStats
	total    map[soakKind]*kindStats
	problems []soakProblem
	// causes counts the unexpected answers by kind and cause.
	causes map[string]int64
}

func newSoakStats() *soakStats {
	s := &soakStats{total: map[soakKind]*kindStats{}, causes: map[string]int64{}}
	s.interval = map[soakKind]*kindStats{}
	for _, k := range soakKinds {
		s.total[k] = &kindStats{}
		s.interval[k] = &kindStats{}
	}
	return s
}

// record counts one answer. took is its latency; cause (what went wrong,
// in a few words that many answers share) and detail (this answer's
// particulars) explain an unexpected one.
func (s *soakStats) record(kind soakKind, node string, took time.Duration, o outcome, cause, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ks := range []*kindStats{s.interval[kind], s.total[kind]} {
		ks.Requests++
		ks.lat.add(took)
		switch o {
		case outcomeRefused:
			ks.Refused++
		case outcomeUnexpected:
			ks.Unexpected++
		}
	}
	if o == outcomeUnexpected {
		s.causes[string(kind)+": "+cause]++
		at := time.Since(s.start)
		logf("UNEXPECTED +%s %s node %s: %s", at.Round(time.Millisecond), kind, node, detail)
		if len(s.problems) < maxProblems {
			s.problems = append(s.problems, soakProblem{At: at, Kind: kind, Node: node, Detail: detail})
		}
	}
}

// takeInterval returns the current interval's counts and starts a new
// interval.
func (s *soakStats) takeInterval() map[soakKind]*kindStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.interval
	s.interval = map[soakKind]*kindStats{}
	for _, k := range soakKinds {
		s.interval[k] = &kindStats{}
	}
	return out
}

// totals returns a copy of the whole run's counts, the problems kept and
// the unexpected answers' causes.
func (s *soakStats) totals() (map[soakKind]*kindStats, []soakProblem, map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[soakKind]*kindStats{}
	for k, v := range s.total {
		c := *v
		out[k] = &c
	}
	causes := make(map[string]int64, len(s.causes))
	for k, v := range s.causes {
		causes[k] = v
	}
	return out, append([]soakProblem(nil), s.problems...), causes
}

// causeOf names what went wrong with an answer in a few words: a
// transport error, or its status.
func causeOf(status int, err error) string {
	if err != nil {
		return "transport error"
	}
	return fmt.Sprintf("HTTP %d", status)
}

// reloadGrace is how long after a reload a request that failed is still
// put down to it, as the reload's new sockets and goroutines settle.
const reloadGrace = 2 * time.Second

// reloadWindow is when a node's configuration was being reloaded, the
// last few times.
type reloadWindow struct {
	mu   sync.Mutex
	past [][2]time.Time // start, end (zero while in progress); the last few
}

// reloadsKept bounds past: a request lasts at most its client's timeout,
// far less than a few reload intervals.
const reloadsKept = 4

func (w *reloadWindow) begin() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.past = append(w.past, [2]time.Time{time.Now()})
	if len(w.past) > reloadsKept {
		w.past = w.past[1:]
	}
}

func (w *reloadWindow) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.past[len(w.past)-1][1] = time.Now()
}

// overlaps reports whether a request sent at sent and answered (or
// failed) at done was in flight during a reload, or within reloadGrace
// after one.
func (w *reloadWindow) overlaps(sent, done time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.past {
		if !done.Before(r[0]) && (r[1].IsZero() || !sent.After(r[1].Add(reloadGrace))) {
			return true
		}
	}
	return false
}

var titleRE = regexp.MustCompile(`(?is)<title>(.*?)</title>`)

// gist is what a response body says, short: an HTML page's title, or the
// start of anything else.
func gist(body string) string {
	if m := titleRE.FindStringSubmatch(body); m != nil {
		return strings.TrimSpace(m[1])
	}
	body = strings.TrimSpace(body)
	if len(body) > 160 {
		body = body[:160] + "…"
	}
	return body
}

// describe is the detail of an unexpected answer.
func describe(method, path string, status int, location, body string, err error) string {
	if err != nil {
		return fmt.Sprintf("%s %s: %v", method, path, err)
	}
	d := fmt.Sprintf("%s %s: HTTP %d", method, path, status)
	if location != "" {
		d += " Location " + location
	}
	if g := gist(body); g != "" {
		d += fmt.Sprintf(" %q", g)
	}
	return d
}

// pathOnly is a request path without its query, so that causes group.
func pathOnly(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}
