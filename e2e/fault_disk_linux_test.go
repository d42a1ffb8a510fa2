//go:build linux

package e2e

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFaultSQLiteDiskFull: a node on SQLite runs out of disk space under
// load, and gets it back, without a restart. The disk is "full" for the
// node alone: its file-size limit (RLIMIT_FSIZE, lowered on the running
// process) makes every write to its files fail as a full disk would
// (EFBIG: Go ignores SIGXFSZ), without root and without touching anyone
// else's disk. While full, cached cards are served; what must write is
// refused and says so (an admin change names the full disk, the last
// enrollment form gets 503 with Retry-After, a card never seen is not
// linked: 503), and nothing of it reaches the database. Once the limit is
// raised again, the same process takes the admin change, the enrollment
// form and the new card, and the database is whole.
func TestFaultSQLiteDiskFull(t *testing.T) {
	c := startClusterWith(t, clusterOptions{sqlite: true, nodes: 1, cacheTTL: "1h", namesakes: 1})
	n := c.nodes[0]
	users := c.provision(t, n, 3)
	user1 := users[1]
	newcomer := c.createUser(t, n, 3) // its card is first used while the disk is full
	p := c.enrollee(t, 0)
	p.begin(t, n)
	p.advance(t, n)
	p.advance(t, n) // the questions form in hand

	l := startLoad(t, users, c.nodes)
	l.waitAnswers(t, "load before the disk fills", users, c.nodes, time.Time{}, 3)

	restore := fillDisk(t, n.proc.Pid())
	full := time.Now()
	l.waitAnswers(t, "load while the disk is full", users, c.nodes, full, 10)
	status, body, err := adminRequest(n, "POST", "/cacgate/accounts/"+user1.username+"/disable", "")
	if err != nil || status/100 == 2 || !diskFullMessage.MatchString(jsonError(body)) {
		t.Errorf("admin disable while the disk is full: HTTP %d %v %s; want a refusal that names the full disk", status, err, body)
	} else {
		t.Logf("admin disable while the disk is full: HTTP %d %s", status, body)
	}
	pAnswer := p.send(n)
	expectRetryLater(t, "namesake 0's security questions, sent while the disk is full", pAnswer)
	keepForm(p, pAnswer)
	if h := newcomer.get(n); h.status != http.StatusServiceUnavailable || h.retryAfter == "" {
		t.Errorf("a card never seen, while the disk is full: %s; want 503 with Retry-After", h)
	}
	snap := c.checkDatabase(t)
	snap.status(t, user1.username, "active")
	if acct := snap.byEDIPI[p.edipi()]; acct != nil {
		t.Errorf("database: namesake 0 has account %s while the disk is full", acct.username)
	}
	if acct := snap.byUsername[newcomer.username]; acct == nil || len(acct.cards) != 0 {
		t.Errorf("database: the newcomer's card was linked while the disk is full: %+v", acct)
	}

	restore()
	recovered := time.Now()
	t.Logf("the disk was full for %v", recovered.Sub(full).Round(time.Millisecond))
	disable := setStatus(t, user1, n, true)
	disable.watch(t, l, n)
	pUser := sendAgain(t, p, n)
	pollUntil(t, "the newcomer's card after the disk recovered", 50*time.Millisecond, func() (bool, string) {
		h := newcomer.get(n)
		return h.status == http.StatusSeeOther, h.String()
	})
	if resp, body := acceptBanner(t, newcomer.br, n.site, "/"); resp.StatusCode != http.StatusOK || body != "user="+newcomer.username+" node=a" {
		t.Errorf("the newcomer after the disk recovered: HTTP %d %q", resp.StatusCode, body)
	}
	l.waitAnswers(t, "load after the disk recovered", users, c.nodes, disable.committed, 3)
	checkHits(t, l.finish(), allOf(statusJudge([]*change{disable}), servedFromCache(users)))
	// The audit log, on the same full disk, records again once it has room.
	if lines := c.auditLines(t, n, `"event":"admin.account.disabled"`, `"outcome":"success"`, `"username":"`+user1.username+`"`); len(lines) != 1 {
		t.Errorf("audit log: %d successful disables of %s, want the one made after the disk recovered", len(lines), user1.username)
	}

	snap = c.checkDatabase(t)
	snap.status(t, user1.username, "disabled")
	snap.enrolled(t, p, pUser)
	if acct := snap.byUsername[newcomer.username]; acct == nil || len(acct.cards) != 1 || acct.cards[0] != newcomer.fingerprint() {
		t.Errorf("database: the newcomer's account should hold its card, linked after the disk recovered: %+v", acct)
	}
}

// diskFullMessage is what an error caused by a full disk must say.
var diskFullMessage = regexp.MustCompile(`(?i)disk|\bfull\b|no space`)

// fillDisk makes the disk full for process pid alone: it lowers the
// process's file-size limit so that no write to a file can go past its
// first byte, which fails every write of the database, its journal and
// the logs. It returns the function that gives the room back.
//
// The write fails with EFBIG, not ENOSPC, so SQLite reports
// SQLITE_IOERR_WRITE ("disk I/O error", 778) where a real full disk gives
// SQLITE_FULL ("database or disk is full", 13): the gateway must name the
// disk for both.
func fillDisk(t *testing.T, pid int) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		t.Fatal(err)
	}
	// Only the soft limit: a process may raise its soft limit back up to
	// its hard one, so no privilege is needed to undo this.
	full := unix.Rlimit{Cur: 1, Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &full, nil); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore = func() {
		if restored {
			return
		}
		restored = true
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	return restore
}
