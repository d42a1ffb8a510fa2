package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestFaultNodeKilledMidEnrollment: a node is killed with SIGKILL at every
// step of a person's enrollment — before the first form, while each form
// is being handled (the password or the answers being hashed, the account
// just written), and between forms — and the person finishes on the other
// node with the page they hold, starting again only where the dead node
// had used up their form. Each ends with exactly one account, whole, that
// both nodes admit; the database holds nothing half-written.
func TestFaultNodeKilledMidEnrollment(t *testing.T) {
	type killPoint struct {
		name string
		// done is the steps the person completes on the victim before
		// the kill.
		done int
		// during: the kill comes while the next step's form is being
		// handled, once waitFor holds (nil: as soon as it is sent).
		during  bool
		waitFor func(t *testing.T, db *sql.DB, e *enrollee, before int) (bool, string)
	}
	stateUsed := func(t *testing.T, db *sql.DB, _ *enrollee, before int) (bool, string) {
		n := countRows(t, db, "used_states")
		return n > before, fmt.Sprintf("%d used states", n)
	}
	accountWritten := func(t *testing.T, db *sql.DB, e *enrollee, _ int) (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
		defer cancel()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE edipi = $1`, e.edipi()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0, fmt.Sprintf("%d accounts", n)
	}
	points := []killPoint{
		{name: "after the banner", done: 0},
		{name: "while the identity form is checked", done: 0, during: true},
		{name: "after the identity step", done: 1},
		{name: "while the password is hashed", done: 1, during: true, waitFor: stateUsed},
		{name: "after the profile step", done: 2},
		{name: "while the answers are hashed", done: 2, during: true, waitFor: stateUsed},
		{name: "once the account is committed", done: 2, during: true, waitFor: accountWritten},
	}
	c := startClusterWith(t, clusterOptions{namesakes: len(points), site: "enroll {\n\t\t\tattempts_per_ip 1000\n\t\t}"})
	db := c.openDatabase(t)
	people := make([]*enrollee, len(points))
	usernames := make([]string, len(points))
	for i, kp := range points {
		victim, survivor := c.nodes[i%2], c.nodes[(i+1)%2]
		e := c.enrollee(t, i)
		people[i] = e
		e.begin(t, victim)
		for range kp.done {
			e.advance(t, victim)
		}
		var answer stepAnswer
		if kp.during {
			before := countRows(t, db, "used_states")
			done := make(chan stepAnswer, 1)
			go func() { done <- e.send(victim) }()
			if kp.waitFor != nil {
				pollUntil(t, fmt.Sprintf("node %s %s", victim.name, kp.name), time.Millisecond, func() (bool, string) {
					select {
					case answer = <-done:
						return true, "answered"
					default:
					}
					return kp.waitFor(t, db, e, before)
				})
			}
			victim.proc.Kill()
			if answer.status == 0 && answer.err == nil {
				answer = <-done
			}
		} else {
			victim.proc.Kill()
		}
		snap := c.checkDatabase(t)
		snap.wholeOrAbsent(t, e)
		acct := snap.byEDIPI[e.edipi()]
		t.Logf("node %s killed %s (namesake %d): the request got %s; the database then held %d used states and %s",
			victim.name, kp.name, i, answerSummary(answer, kp.during), snap.usedStates, describeAccount(acct))

		// The person carries on on the survivor with what they hold.
		if u := answer.completed(); u != "" {
			usernames[i] = u
		} else {
			keepForm(e, answer)
			usernames[i] = e.finish(t, survivor)
		}
		if usernames[i] == "" {
			// "You already have an account": the victim created it;
			// the person learns the username by signing in.
			if acct == nil {
				t.Errorf("namesake %d was told the account exists, but it did not when the node was killed", i)
			}
		}
		resp, body := get(t, e.br, "https://"+survivor.site+"/", "text/html")
		if resp.StatusCode != http.StatusOK || !garciaUsername.MatchString(body) {
			t.Fatalf("namesake %d on node %s after the enrollment: HTTP %d %q", i, survivor.name, resp.StatusCode, body)
		}
		if usernames[i] == "" {
			usernames[i] = garciaUsername.FindString(body)
		} else if body != "user="+usernames[i]+" node="+survivor.name {
			t.Errorf("namesake %d on node %s: %q, but the completion page said %s", i, survivor.name, body, usernames[i])
		}
		c.restartNode(t, i%2)
	}

	// Everyone gets in through both nodes, the restarted ones included.
	for i, e := range people {
		for _, n := range c.nodes {
			if resp, body := get(t, e.br, "https://"+n.site+"/", "text/html"); resp.StatusCode != http.StatusOK || body != "user="+usernames[i]+" node="+n.name {
				t.Errorf("namesake %d on node %s at the end: HTTP %d %q, want %s", i, n.name, resp.StatusCode, body, usernames[i])
			}
		}
	}
	snap := c.checkDatabase(t)
	if len(snap.byUsername) != len(people) {
		t.Errorf("database: %d accounts for %d people", len(snap.byUsername), len(people))
	}
	for i, e := range people {
		snap.enrolled(t, e, usernames[i])
	}
}

func answerSummary(a stepAnswer, sent bool) string {
	switch {
	case !sent:
		return "nothing (no request in flight)"
	case a.err != nil:
		return "no answer (" + a.err.Error() + ")"
	case a.completed() != "":
		return "the completion page"
	}
	return fmt.Sprintf("HTTP %d", a.status)
}

func describeAccount(a *dbAccount) string {
	if a == nil {
		return "no account"
	}
	return fmt.Sprintf("account %s (%d cards, %d answers)", a.username, len(a.cards), a.answers)
}
