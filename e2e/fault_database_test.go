package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cacgate/cacgate/internal/pgtest"
)

// TestFaultDatabaseRestart: the cluster's PostgreSQL server is stopped
// (an administrator's fast shutdown) and later crashed (an immediate
// shutdown, as a power cut looks to its clients) while four clients use
// both nodes. While it is down, cached cards are served and everything
// else is refused with 503 and Retry-After: admin changes, enrollment
// steps, a card never seen. Once it is back, the nodes recover on their
// own, a change made through one node just after the restart reaches the
// other through the change feed (cache_ttl is an hour, so nothing else can
// deliver it), the forms sent during the outage can be sent again, and
// the database holds every enrollment a person was told succeeded, whole,
// and nothing half-written.
func TestFaultDatabaseRestart(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn, err := srv.CreateDatabase("fault")
	if err != nil {
		t.Fatal(err)
	}
	makeDurable(t, srv.DSN("postgres"), "fault")
	c := startClusterWith(t, clusterOptions{dsn: dsn, cacheTTL: "1h", namesakes: 4})
	a, b := c.nodes[0], c.nodes[1]
	users := c.provision(t, a, 4)
	user0, user1, user2 := users[0], users[1], users[2]
	newcomer := c.createUser(t, a, 4) // its card is first used during the outage

	l := startLoad(t, users, c.nodes)
	l.waitAnswers(t, "load before the faults", users, c.nodes, time.Time{}, 3)

	// Namesakes 0 and 3 have the questions form in hand, namesake 1 the
	// identity form, when the database goes.
	p, q, w := c.enrollee(t, 0), c.enrollee(t, 1), c.enrollee(t, 3)
	for _, e := range []*enrollee{p, w} {
		e.begin(t, a)
		e.advance(t, a)
		e.advance(t, a)
	}
	q.begin(t, b)

	// ---- outage 1: stopped ----
	// Namesake 3's account is being written when the database stops: the
	// test holds a lock that makes the insert into accounts wait (reads
	// and the other tables go on), so that the write of the account is
	// what the outage breaks, after the form was taken and its answers
	// hashed.
	wAnswer := writeWhenStopped(t, srv, c, w, b)
	down := time.Now()
	expectRetryLater(t, "namesake 3's security questions, whose account was being written when the database stopped", wAnswer)
	keepForm(w, wAnswer)
	l.waitAnswers(t, "load while the database is stopped", users, c.nodes, down, 3)
	refusedWhileDown(t, c, newcomer)
	pAnswer := p.send(b)
	expectRetryLater(t, "namesake 0's security questions, sent to node b while the database is stopped", pAnswer)
	keepForm(p, pAnswer)
	qAnswer := q.send(a)
	expectRetryLater(t, "namesake 1's identity form, sent to node a while the database is stopped", qAnswer)
	keepForm(q, qAnswer)
	stayDown(down)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	// Disabled through node A as soon as the database is back: refused
	// on node B as soon as the change feed brings the news.
	ch1 := setStatus(t, user0, a, true)
	t.Logf("the database was stopped for %v; %s disabled through node a %v after it accepted connections again",
		up.Sub(down).Round(time.Millisecond), user0.username, ch1.committed.Sub(up).Round(time.Millisecond))
	ch1.watch(t, l, b)

	// The forms sent during the outage go through now.
	pUser := sendAgain(t, p, b)
	wUser := sendAgain(t, w, b)
	qUser := sendAgain(t, q, a) // the identity form: then profile and questions
	// The newcomer's card gets past the gate (linked to its account) and
	// is sent to the banner.
	pollUntil(t, "node a takes the newcomer's card", 50*time.Millisecond, func() (bool, string) {
		h := newcomer.get(a)
		return h.status == http.StatusSeeOther, h.String()
	})
	if resp, body := acceptBanner(t, newcomer.br, a.site, "/"); resp.StatusCode != http.StatusOK || body != "user=fault.user4 node=a" {
		t.Errorf("the newcomer after the outage: HTTP %d %q", resp.StatusCode, body)
	}

	// ---- outage 2: crashed, with an enrollment in flight ----
	r := c.enrollee(t, 2)
	r.begin(t, b)
	r.advance(t, b)
	r.advance(t, b)
	db := c.openDatabase(t)
	before := countRows(t, db, "used_states")
	done := make(chan stepAnswer, 1)
	go func() { done <- r.send(b) }()
	// Crash while node B hashes the answers: it has recorded the form as
	// used and will write the account next.
	var rAnswer stepAnswer
	pollUntil(t, "node b takes namesake 2's security questions", 2*time.Millisecond, func() (bool, string) {
		select {
		case rAnswer = <-done:
			return true, "answered"
		default:
		}
		n := countRows(t, db, "used_states")
		return n > before, fmt.Sprintf("%d used states", n)
	})
	db.Close()
	if err := srv.Crash(); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	if rAnswer.status == 0 && rAnswer.err == nil {
		rAnswer = <-done
	}
	rUser := rAnswer.completed()
	if rUser == "" {
		expectRetryLater(t, "namesake 2's security questions, in flight when the database crashed", rAnswer)
		keepForm(r, rAnswer)
	} else {
		t.Logf("namesake 2's enrollment completed before the crash: %s", rUser)
	}
	l.waitAnswers(t, "load while the database is down after the crash", users, c.nodes, crashed, 3)
	stayDown(crashed)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	up = time.Now()
	// Both ways this time: user0 enabled through node B, then user2
	// disabled through node A. One after the other: a change made through
	// a node makes that node read every card afresh (its cache's epoch),
	// which would bring it the other change without the change feed.
	ch2 := setStatus(t, user0, b, false)
	t.Logf("the database was down for %v after the crash; %s enabled through node b %v after it accepted connections again",
		up.Sub(crashed).Round(time.Millisecond), user0.username, ch2.committed.Sub(up).Round(time.Millisecond))
	ch2.watch(t, l, a)
	// Node B has read user2's account again since its own change.
	l.waitAnswers(t, "node b reads user2 again", []*faultUser{user2}, []*node{b}, ch2.committed, 1)
	ch3 := setStatus(t, user2, a, true)
	t.Logf("%s disabled through node a %v after the database accepted connections again", user2.username, ch3.committed.Sub(up).Round(time.Millisecond))
	ch3.watch(t, l, b)
	// Crash recovery kept what was committed and nothing that was not.
	c.checkDatabase(t).wholeOrAbsent(t, r)
	if rUser == "" {
		rUser = sendAgain(t, r, b)
	}
	l.waitAnswers(t, "load after the faults", users, c.nodes, time.Now(), 3)
	checkHits(t, l.finish(), statusJudge([]*change{ch1, ch2, ch3}))
	for _, n := range c.nodes {
		m := scrapeNode(t, n)
		t.Logf("node %s: cache invalidations remote %v, resync %v", n.name,
			m[`cacgate_cache_invalidations_total{origin="remote"}`], m[`cacgate_cache_invalidations_total{origin="resync"}`])
	}

	snap := c.checkDatabase(t)
	snap.status(t, user0.username, "active")
	snap.status(t, user1.username, "active") // its disable was refused during the outage
	snap.status(t, user2.username, "disabled")
	if acct := snap.byUsername[newcomer.username]; acct == nil || len(acct.cards) != 1 || acct.cards[0] != newcomer.fingerprint() {
		t.Errorf("database: the newcomer's account should hold its card, linked on first use after the outage: %+v", acct)
	}
	if _, ok := snap.byUsername["fault.user9"]; ok {
		t.Errorf("database: fault.user9 exists, though its creation was refused during the outage")
	}
	for _, e := range []struct {
		who      *enrollee
		username string
	}{{p, pUser}, {q, qUser}, {r, rUser}, {w, wUser}} {
		if e.username == "" {
			t.Errorf("namesake %d never got a completion page", e.who.i)
			continue
		}
		snap.enrolled(t, e.who, e.username)
	}
}

// outage is how long the database stays down at least: as long as a
// restart takes in production, and long enough for the nodes' change
// listeners to have failed to reconnect several times, each waiting longer
// than the last (a short blip would find them retrying at once).
const outage = 5 * time.Second

// stayDown returns once the database has been down for outage since down.
// This is the fault's length, not a wait for a condition.
func stayDown(down time.Time) {
	time.Sleep(time.Until(down.Add(outage)))
}

// writeWhenStopped sends e's questions form to node n and stops the
// database while the node waits to insert the account: the test holds a
// lock on accounts (EXCLUSIVE: reads go on, writes wait) until the node's
// insert is seen waiting for it. It returns the node's answer.
func writeWhenStopped(t *testing.T, srv *pgtest.Server, c *cluster, e *enrollee, n *node) stepAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
	defer cancel()
	lock, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(context.Background())
	if _, err := lock.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, "LOCK TABLE accounts IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan stepAnswer, 1)
	go func() { done <- e.send(n) }()
	db := c.openDatabase(t)
	defer db.Close()
	var early stepAnswer
	pollUntil(t, fmt.Sprintf("node %s waits to write namesake %d's account", n.name, e.i), 5*time.Millisecond, func() (bool, string) {
		select {
		case early = <-done:
			return true, ""
		default:
		}
		var waiting int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO accounts%'`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		return waiting > 0, fmt.Sprintf("%d inserts waiting", waiting)
	})
	if early.status != 0 || early.err != nil {
		t.Fatalf("namesake %d's questions were answered before the account could be written: %s", e.i, early)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	return <-done
}

// makeDurable makes commits on database name survive a crash of the
// server. The test server's defaults trade that away for speed
// (synchronous_commit off): a crash could take back an enrollment whose
// completion page was already shown, which no production server
// configured for durability does. A database-level setting overrides the
// server's command line for every session opened afterwards.
func makeDurable(t *testing.T, adminDSN, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET synchronous_commit = on"); err != nil {
		t.Fatal(err)
	}
}

// refusedWhileDown checks what must be refused, and how, while the
// database is unreachable: the admin API's changes (503 with a JSON error,
// nothing done), and a card the nodes have never seen (503 with
// Retry-After: failing closed).
func refusedWhileDown(t *testing.T, c *cluster, newcomer *faultUser) {
	t.Helper()
	a, b := c.nodes[0], c.nodes[1]
	for _, call := range []struct {
		n          *node
		path, body string
	}{
		{a, "/cacgate/accounts/fault.user1/disable", ""},
		{b, "/cacgate/accounts", `{"edipi":"1234569009","username":"fault.user9"}`},
	} {
		status, body, err := adminRequest(call.n, "POST", call.path, call.body)
		if err != nil || status != http.StatusServiceUnavailable || jsonError(body) == "" {
			t.Errorf("node %s admin POST %s while the database is down: HTTP %d %v %s; want 503 with a JSON error", call.n.name, call.path, status, err, body)
		}
	}
	if h := newcomer.get(a); h.status != http.StatusServiceUnavailable || h.retryAfter == "" {
		t.Errorf("a card never seen, while the database is down: %s; want 503 with Retry-After", h)
	}
}

// expectRetryLater fails the test unless an enrollment step sent during a
// fault was answered 503 with Retry-After.
func expectRetryLater(t *testing.T, what string, a stepAnswer) {
	t.Helper()
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Errorf("%s: %s\nwant 503 with Retry-After and the form kept", what, a)
		return
	}
	t.Logf("%s: HTTP %d, Retry-After %s, form kept: %v", what, a.status, a.retryAfter, nextStep(a.page) != "")
}

// keepForm: when the answer to a step re-shows its form (the form kept,
// with a state to send again), the person sends that one next; otherwise
// they send the one they hold again.
func keepForm(e *enrollee, a stepAnswer) {
	if a.err == nil && nextStep(a.page) != "" {
		e.page = a.page
	}
}

// sendAgain sends the form e holds, which could not be taken during an
// outage, to node n now that the database is back (again while the node
// answers 503: its pool may still be reconnecting). The enrollment must
// complete; a form the outage used up is reported lost, then the
// enrollment finished from the start so that the test can go on. It
// returns the username of the completion page.
func sendAgain(t *testing.T, e *enrollee, n *node) string {
	t.Helper()
	var a stepAnswer
	pollUntil(t, fmt.Sprintf("node %s takes namesake %d's form again", n.name, e.i), 50*time.Millisecond, func() (bool, string) {
		a = e.send(n)
		if a.err == nil && a.status == http.StatusServiceUnavailable {
			keepForm(e, a)
			return false, a.String()
		}
		return true, ""
	})
	step := nextStep(e.page)
	switch {
	case a.completed() != "":
		e.page = a.page
		return a.completed()
	case a.formUsed():
		t.Errorf("namesake %d's form, sent during the outage, cannot be sent again: %s", e.i, a)
		e.page = ""
	case a.err == nil && a.status == http.StatusOK && nextStep(a.page) != "" && nextStep(a.page) != step:
		e.page = a.page // on to the next step
	default:
		t.Errorf("namesake %d's form sent again after the outage: %s", e.i, a)
		keepForm(e, a)
	}
	return e.finish(t, n)
}

// countRows counts a table's rows.
func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
