package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFaultReloadUnderLoad: both nodes have their configuration reloaded
// (forced, every other time with a changed site) again and again while
// four clients use them; during the reloads an account is disabled through
// the other node, fifty requests race to be the first use of one card on
// both nodes, and a person sends each enrollment form. No request fails,
// the disabled account is refused on the reloading node, a change made
// after the reloads reaches the other node through the change feed of the
// configuration it now runs (cache_ttl is an hour, so nothing else can
// bring it), the card is linked once, the enrollment completes, and the
// database holds nothing half-written.
func TestFaultReloadUnderLoad(t *testing.T) {
	c := startClusterWith(t, clusterOptions{cacheTTL: "1h", namesakes: 1})
	a, b := c.nodes[0], c.nodes[1]
	users := c.provision(t, a, 4)
	user0 := users[0]
	racer := c.createUser(t, b, 5) // its card's first uses race during a reload
	e := c.enrollee(t, 0)
	e.begin(t, a)

	l := startLoad(t, users, c.nodes)
	l.waitAnswers(t, "load before the reloads", users, c.nodes, time.Time{}, 3)

	const reloads = 8
	var (
		disable       *change
		enrollAnswers []stepAnswer
		raceHits      []hit
		username      string
	)
	for i := range reloads {
		n, other := c.nodes[i%2], c.nodes[(i+1)%2]
		site := ""
		if i%2 == 1 {
			site = fmt.Sprintf("contact \"Fault desk %d\"", i)
		}
		c.writeConfig(t, n, site)
		reloadStart := time.Now()
		var wg sync.WaitGroup
		var reloadErr error
		var reloadOut string
		wg.Add(1)
		go func() {
			defer wg.Done()
			reloadOut, reloadErr = c.reload(t, n)
		}()
		switch {
		case i == 1:
			// Disabled through the other node while this one reloads.
			disable = setStatus(t, user0, other, true)
		case i == 2:
			raceHits = raceFirstUses(racer, c.nodes, 50)
		case i >= 3 && i <= 5 && username == "":
			// An enrollment form sent to the reloading node.
			ans := e.send(n)
			enrollAnswers = append(enrollAnswers, ans)
			if u := ans.completed(); u != "" {
				username = u
			} else if ans.err == nil && ans.status == http.StatusOK && nextStep(ans.page) != "" {
				e.page = ans.page
			} else {
				t.Errorf("enrollment form sent to node %s during a reload: %s", n.name, ans)
			}
		}
		wg.Wait()
		if reloadErr != nil {
			t.Fatalf("reload %d of node %s: %v\n%s", i, n.name, reloadErr, reloadOut)
		}
		reloaded := time.Now()
		t.Logf("reload %d of node %s took %v", i, n.name, reloaded.Sub(reloadStart).Round(time.Millisecond))
		if i == 1 {
			disable.watch(t, l, n)
		}
		l.waitAnswers(t, fmt.Sprintf("load after reload %d of node %s", i, n.name), users, []*node{n}, reloaded, 3)
	}
	if username == "" {
		username = e.finish(t, a)
	}
	// The feed of the configuration now running on node a still works:
	// node a has user0's account cached (the load was just answered
	// there), so only its change feed can bring this.
	l.waitAnswers(t, "node a reads user0 again", []*faultUser{user0}, []*node{a}, time.Now(), 1)
	enable := setStatus(t, user0, b, false)
	enable.watch(t, l, a)
	// The database stays up: no reload is a reason for a 503.
	checkHits(t, l.finish(), allOf(statusJudge([]*change{disable, enable}), servedFromCache(users)))

	// The fifty racing first uses: every one passed the gate (and was sent
	// to the banner), and the card was linked exactly once.
	bad := 0
	for _, h := range raceHits {
		if h.err != nil || h.status != http.StatusSeeOther || !strings.HasPrefix(h.location, "/.cacgate/consent") {
			if bad++; bad <= 5 {
				t.Errorf("racing first use: %s", h)
			}
		}
	}
	linked := 0
	for _, n := range c.nodes {
		linked += len(c.auditLines(t, n, `"event":"card.linked"`, `"username":"`+racer.username+`"`))
	}
	if linked != 1 {
		t.Errorf("the racing card was linked %d times (audit card.linked), want once", linked)
	}
	t.Logf("%d racing first uses of one card on both nodes: %d not sent to the banner, %d card.linked entries", len(raceHits), bad, linked)

	// Each reload let go of the old configuration's change listener, and
	// the pools were reused (same database and pool settings): one
	// listener per node is left, and no more pooled sessions than one
	// pool per node may hold (max_conns, default 10).
	db := c.openDatabase(t)
	pollUntil(t, "one change listener per node after the reloads", 50*time.Millisecond, func() (bool, string) {
		var listeners, pooled int
		err := db.QueryRow(`SELECT COUNT(*) FILTER (WHERE application_name = 'cacgate-listener'),
			COUNT(*) FILTER (WHERE application_name = 'cacgate')
			FROM pg_stat_activity WHERE datname = current_database()`).Scan(&listeners, &pooled)
		if err != nil {
			t.Fatal(err)
		}
		return listeners == len(c.nodes) && pooled <= 10*len(c.nodes), fmt.Sprintf("%d listeners, %d pooled sessions", listeners, pooled)
	})

	snap := c.checkDatabase(t)
	if acct := snap.byUsername[racer.username]; acct == nil || len(acct.cards) != 1 || acct.cards[0] != racer.fingerprint() {
		t.Errorf("database: the racing card's account: %+v, want its one card", acct)
	}
	snap.status(t, user0.username, "active")
	snap.enrolled(t, e, username)
	if len(snap.byUsername) != len(users)+2 {
		t.Errorf("database: %d accounts, want %d", len(snap.byUsername), len(users)+2)
	}
	for _, ans := range enrollAnswers {
		t.Logf("enrollment form sent during a reload: HTTP %d, next %q", ans.status, nextStep(ans.page))
	}
}

// reload has node n load its Caddyfile again with `caddy reload --force`
// (even when it has not changed).
func (c *cluster) reload(t *testing.T, n *node) (string, error) {
	return caddy(t, c.dir, "reload", "--config", n.file, "--adapter", "caddyfile", "--address", n.admin, "--force")
}

// raceFirstUses sends count requests with u's card at once, spread over
// the nodes, and returns their answers (a request the reloading server
// closed unanswered sent again, as a browser would).
func raceFirstUses(u *faultUser, nodes []*node, count int) []hit {
	hits := make([]hit, count)
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range hits {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			// A reload closes connections the old server accepted but
			// did not answer (bare Caddy does the same: see the README's
			// Soak section), and a browser sends its GET again. So a
			// request that got no answer at all is sent again, at most
			// twice; any answer is judged as it came.
			for try := 0; try < 3; try++ {
				if hits[i] = u.get(nodes[i%len(nodes)]); hits[i].err == nil {
					break
				}
			}
		}()
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return hits
}
