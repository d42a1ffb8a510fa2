package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cacgate/cacgate/internal/pgtest"
)

// Tests of what only PostgreSQL does, or what is at stake only when gateway
// nodes share a server database. The behavioural tests run on PostgreSQL
// too (forEachBackend).

func TestRebindDollar(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT ? , ?`, `SELECT $1 , $2`},
		{`WHERE a = ? AND b IN (?, ?)`, `WHERE a = $1 AND b IN ($2, $3)`},
		{`SELECT '?', ?`, `SELECT '?', $1`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT '\', ?`, `SELECT '\', $1`}, // standard strings: no backslash escapes
		{`SELECT E'\' ?', ?`, `SELECT E'\' ?', $1`},
		{`SELECT "odd?col", ?`, `SELECT "odd?col", $1`},
		{"-- why?\nSELECT ?", "-- why?\nSELECT $1"},
		{"SELECT ? -- what?", "SELECT $1 -- what?"},
		{`/* a /* nested? */ comment? */ SELECT ?`, `/* a /* nested? */ comment? */ SELECT $1`},
		{`SELECT $$ a ? $$, ?`, `SELECT $$ a ? $$, $1`},
		{`SELECT $tag$ a ? $ b $tag$, ?`, `SELECT $tag$ a ? $ b $tag$, $1`},
		{`SELECT $1, ?`, `SELECT $1, $1`}, // already numbered: left as it is
		{`SELECT a$b, ?`, `SELECT a$b, $1`},
		{`SELECT ?, 'unterminated ?`, `SELECT $1, 'unterminated ?`},
		{"-- a comment\n-- with a $argon2id$v=19$ hash?\nSELECT ?", "-- a comment\n-- with a $argon2id$v=19$ hash?\nSELECT $1"},
	}
	for _, tt := range tests {
		if got := rebindDollar(tt.in); got != tt.want {
			t.Errorf("rebindDollar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every constraint the store explains has an index the dialect maps to it.
func TestPostgresUniqueIndexesCoverErrors(t *testing.T) {
	s := postgresBackend.openStore(t)
	columns, err := uniqueIndexColumns(context.Background(), s.writer)
	if err != nil {
		t.Fatal(err)
	}
	mapped := slices.Collect(maps.Values(columns))
	for key := range errorForUnique {
		if !slices.Contains(mapped, key) {
			t.Errorf("no unique index covers %q; the schema maps %v", key, mapped)
		}
	}
}

func TestPostgresOptionsDefaults(t *testing.T) {
	got, err := PostgresOptions{}.withDefaults()
	want := PostgresOptions{
		MaxOpenConns:    DefaultPostgresMaxOpenConns,
		MaxIdleConns:    DefaultPostgresMaxOpenConns,
		ConnMaxLifetime: DefaultPostgresConnMaxLifetime,
		ConnMaxIdleTime: DefaultPostgresConnMaxIdleTime,
		ConnectTimeout:  DefaultPostgresConnectTimeout,
	}
	if err != nil || got != want {
		t.Errorf("defaults = %+v, %v; want %+v", got, err, want)
	}
	got, err = PostgresOptions{MaxOpenConns: 4, MaxIdleConns: 9}.withDefaults()
	if err != nil || got.MaxIdleConns != 4 {
		t.Errorf("idle connections above the maximum: %+v, %v; want them capped at 4", got, err)
	}
	for _, o := range []PostgresOptions{{MaxOpenConns: -1}, {MaxIdleConns: -1}, {ConnMaxLifetime: -1}, {ConnMaxIdleTime: -1}, {ConnectTimeout: -1}} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// A DSN usually holds a password: no error may repeat it, however the DSN
// is broken.
func TestOpenPostgresErrorsHideThePassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	closed := closedPort(t)
	for _, dsn := range []string{
		"",
		"postgres://cacgate:" + secret + "@127.0.0.1:" + closed + "/cacgate?sslmode=disable",
		"postgres://cacgate:" + secret + "/x@127.0.0.1/cacgate",        // an unescaped '/' in the password
		"postgres://cacgate:" + secret + "@127.0.0.1:notaport/cacgate", // unparseable
		"host=127.0.0.1 port=" + closed + " password = " + secret + " sslmode=disable",
		"host=127.0.0.1 port=" + closed + " password=" + secret + " sslmode=bogus",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		s, err := OpenPostgres(ctx, dsn, PostgresOptions{ConnectTimeout: 2 * time.Second})
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:6]) {
			t.Errorf("OpenPostgres(%q) error quotes the password: %v", dsn, err)
		}
	}
}

// closedPort is a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

// A server that accepts connections and then says nothing must not hang
// the gateway's start.
func TestOpenPostgresConnectTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	// The server never answers, so OpenPostgres returning at all is the
	// connect timeout's doing; a minute is a hang, whatever the load. (Not
	// timed more closely: on a busy machine a 500ms wait can take seconds.)
	began := time.Now()
	type opened struct {
		s   *SQLStore
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := OpenPostgres(context.Background(), "postgres://cacgate@"+l.Addr().String()+"/cacgate?sslmode=disable",
			PostgresOptions{ConnectTimeout: 500 * time.Millisecond})
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		if o.err == nil {
			o.s.Close()
			t.Fatal("OpenPostgres succeeded against a silent server")
		}
	case <-time.After(time.Minute):
		t.Fatal("OpenPostgres still waits for a silent server after a minute")
	}
	if took := time.Since(began); took < 500*time.Millisecond {
		t.Errorf("OpenPostgres gave up after %v, before its 500ms connect timeout", took)
	}
}

// Many nodes starting together on a fresh database all succeed, and each
// migration is applied once.
func TestPostgresManyNodesMigrateAtOnce(t *testing.T) {
	const nodes = 8
	db := postgresBackend.newDatabase(t)
	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		stores = make([]*SQLStore, nodes)
		errs   = make([]error, nodes)
	)
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = db.connect()
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Cleanup(func() { stores[i].Close() })
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	for _, s := range stores {
		assertFullyMigrated(t, s)
	}
	// Each node's own write is visible to every other.
	for i, s := range stores {
		mustCreate(t, s, newAccount(fmt.Sprint("node", i), fmt.Sprintf("%010d", i)))
	}
	if got, err := stores[0].ListAccounts(context.Background(), 0, 0); err != nil || len(got) != nodes {
		t.Errorf("%d accounts, %v; want %d", len(got), err, nodes)
	}
}

// Requests for the same people landing on different nodes at once: every
// person ends up with exactly one account, one card, and a username of
// their own.
func TestPostgresEnrollSamePeopleOnThreeNodes(t *testing.T) {
	const (
		people   = 8
		attempts = 3 // per person, one on each node
	)
	db := postgresBackend.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t), db.open(t)}

	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		got   = make([]*Account, people*attempts)
		errs  = make([]error, people*attempts)
	)
	for i := range people * attempts {
		person := i % people
		wg.Go(func() {
			e := newEnrollment("john.b.smith", fmt.Sprintf("%010d", person), fmt.Sprint("card", person))
			<-start
			got[i], errs[i] = nodes[i%len(nodes)].Enroll(context.Background(), e)
		})
	}
	close(start)
	wg.Wait()

	enrolled := map[string]string{} // EDIPI -> username
	usernames := map[string]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
			a := got[i]
			if prev, ok := enrolled[a.EDIPI]; ok {
				t.Errorf("DoD ID %s enrolled twice, as %s and %s", a.EDIPI, prev, a.Username)
			}
			if usernames[a.Username] {
				t.Errorf("username %s given twice", a.Username)
			}
			enrolled[a.EDIPI], usernames[a.Username] = a.Username, true
		case !errors.Is(err, ErrEDIPITaken) && !errors.Is(err, ErrCardTaken):
			t.Errorf("attempt %d: %v, want success, ErrEDIPITaken or ErrCardTaken", i, err)
		}
	}
	if len(enrolled) != people {
		t.Errorf("%d people enrolled, want %d", len(enrolled), people)
	}
	for table, want := range map[string]int{"accounts": people, "cards": people, "security_answers": 3 * people} {
		if n := countRows(t, nodes[0], table); n != want {
			t.Errorf("%s holds %d rows, want %d", table, n, want)
		}
	}
}

// A rolled-back write announces nothing; a committed one announces once.
func TestPostgresNotifyOnlyOnCommit(t *testing.T) {
	db := postgresBackend.newDatabase(t)
	watcher, writer := db.open(t), db.open(t)
	changes := watchChanges(t, watcher)
	waitChange(t, changes, Change{Resync: true, Listening: true})

	a := mustEnroll(t, writer, newEnrollment("john.b.smith", "1111111111", "card"))
	waitChange(t, changes, Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI, Fingerprints: []string{fingerprint("card")}})

	// These fail after announcing, inside their transactions.
	if _, err := writer.Enroll(context.Background(), newEnrollment("jane.q.public", "2222222222", "card")); !errors.Is(err, ErrCardTaken) {
		t.Fatalf("enrolling a taken card: %v", err)
	}
	if err := writer.CreateAccount(context.Background(), newAccount("other", "3333333333", "new", "card")); !errors.Is(err, ErrCardTaken) {
		t.Fatalf("creating an account with a taken card: %v", err)
	}
	marker := mustCreate(t, writer, newAccount("marker", "4444444444"))
	if c := nextChange(t, changes); c.Username != marker.Username {
		t.Errorf("next change = %+v, want the marker's: a rolled-back write was announced", c)
	}
}

// A watcher hears its own store's changes too, marked Own, so a node can
// tell them from other nodes' (it applied them when it made them).
func TestPostgresWatchMarksOwnChanges(t *testing.T) {
	db := postgresBackend.newDatabase(t)
	watcher, other := db.open(t), db.open(t)
	changes := watchChanges(t, watcher)
	waitChange(t, changes, Change{Resync: true, Listening: true})

	mine := mustCreate(t, watcher, newAccount("mine", "1111111111"))
	waitChange(t, changes, Change{AccountID: mine.ID, Username: mine.Username, EDIPI: mine.EDIPI, Own: true})
	theirs := mustCreate(t, other, newAccount("theirs", "2222222222"))
	waitChange(t, changes, Change{AccountID: theirs.ID, Username: theirs.Username, EDIPI: theirs.EDIPI})
	if watcher.dialect.origin == "" || watcher.dialect.origin == other.dialect.origin {
		t.Errorf("origins %q and %q: want two different names", watcher.dialect.origin, other.dialect.origin)
	}
}

// A watcher is told of what other nodes change: the changes that make a
// cached card mapping wrong.
func TestPostgresWatchSeesOtherNodesChanges(t *testing.T) {
	ctx := context.Background()
	db := postgresBackend.newDatabase(t)
	watcher, writer := db.open(t), db.open(t)
	changes := watchChanges(t, watcher)
	waitChange(t, changes, Change{Resync: true, Listening: true})

	a := mustEnroll(t, writer, newEnrollment("john.b.smith", "1111111111", "card"))
	card := fingerprint("card")
	waitChange(t, changes, Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI, Fingerprints: []string{card}})

	if _, err := writer.SetStatus(ctx, a.Username, StatusDisabled); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI, Fingerprints: []string{card}})

	if _, err := writer.TransitionStatus(ctx, a.Username, StatusDisabled, StatusActive); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI, Fingerprints: []string{card}})

	second := newCard("second")
	if err := writer.LinkCard(ctx, a.ID, second); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, Change{AccountID: a.ID, Fingerprints: []string{second.Fingerprint}})

	if err := writer.UnlinkCard(ctx, a.Username, card); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, Change{AccountID: a.ID, Username: a.Username, Fingerprints: []string{card}})

	if err := writer.AutoLinkCard(ctx, a.ID, newCard("third")); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changes, Change{AccountID: a.ID, Fingerprints: []string{fingerprint("third")}})

	// The watcher's own writes come back too; its cache is already right,
	// and dropping an entry twice is harmless.
	if _, err := watcher.SetStatus(ctx, a.Username, StatusPending); err != nil {
		t.Fatal(err)
	}
	if c := nextChange(t, changes); c.AccountID != a.ID {
		t.Errorf("change of the watcher's own write = %+v", c)
	}
}

// When the listener's connection is cut, the watcher reconnects and says
// that changes may have been missed.
func TestPostgresWatchResyncsAfterLosingConnection(t *testing.T) {
	db := postgresBackend.newDatabase(t)
	watcher, writer := db.open(t), db.open(t)
	feed := watcher.dialect.changes.(*pgChangeFeed)
	feed.minBackoff, feed.maxBackoff = 10*time.Millisecond, 100*time.Millisecond
	var (
		mu     sync.Mutex
		failed []error
	)
	changes := watchChangesReporting(t, watcher, func(err error) {
		mu.Lock()
		failed = append(failed, err)
		mu.Unlock()
	})
	waitChange(t, changes, Change{Resync: true, Listening: true})

	for round := range 2 {
		var n int
		err := writer.writes().queryRow(context.Background(), `
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = ?`, defaultApplicationName+"-listener").Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("round %d: terminated %d listeners, %v; want 1", round, n, err)
		}
		waitChange(t, changes, Change{Resync: true, Listening: true})

		// Listening again: a change made now arrives.
		a := mustCreate(t, writer, newAccount(fmt.Sprint("after", round), fmt.Sprintf("%010d", round)))
		waitChange(t, changes, Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 2 {
		t.Errorf("onError called %d times (%v), want once per lost connection", len(failed), failed)
	}
}

// A connection that goes silent without closing (a partition, a host that
// vanished) is found by the idle check and replaced.
func TestPostgresWatchDetectsSilentConnection(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	writer := testDatabase{connect: func() (*SQLStore, error) {
		return OpenPostgres(context.Background(), dsn, PostgresOptions{})
	}}.open(t)
	proxy := newFreezingProxy(t, dsn)
	watcher, err := OpenPostgres(context.Background(), proxy.dsn, PostgresOptions{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { watcher.Close() })
	feed := watcher.dialect.changes.(*pgChangeFeed)
	feed.idlePing, feed.minBackoff, feed.maxBackoff = 200*time.Millisecond, 10*time.Millisecond, 100*time.Millisecond

	changes := watchChanges(t, watcher)
	waitChange(t, changes, Change{Resync: true, Listening: true})
	proxy.freeze() // every connection open now stops carrying data
	waitChange(t, changes, Change{Resync: true, Listening: true})
	// Listening again (through a new connection: every one open at the
	// freeze is silent), a change made now arrives. On a busy machine a
	// health check (1s here) can also time out on a healthy connection:
	// the watcher then reconnects, a notice sent meanwhile is lost, and the
	// Resync it announces says so; the test then makes another change.
	created := map[int64]*Account{}
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			t.Fatal("no change arrived across 10 reconnections")
		}
		a := mustCreate(t, writer, newAccount(fmt.Sprint("after", attempt), fmt.Sprint(1111111111+attempt)))
		created[a.ID] = a
		c := nextChange(t, changes)
		if c.Resync {
			continue
		}
		a, ok := created[c.AccountID]
		if !ok || !changeEqual(c, Change{AccountID: a.ID, Username: a.Username, EDIPI: a.EDIPI}) {
			t.Fatalf("change = %+v, want one of the accounts created after the freeze", c)
		}
		break
	}
}

// After the server drops the pool's connections (a restart, a failover),
// the store carries on with new ones: a connection idle for more than a
// second is checked before it is used again.
func TestPostgresPoolReplacesLostConnections(t *testing.T) {
	ctx := context.Background()
	db := postgresBackend.newDatabase(t)
	s, admin := db.open(t), db.open(t)
	a := mustCreate(t, s, newAccount("jdoe", "1111111111", "card"))

	var n int
	err := admin.writes().queryRow(ctx, `
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = ? AND pid <> pg_backend_pid()`, defaultApplicationName).Scan(&n)
	if err != nil || n < 1 {
		t.Fatalf("terminated %d connections, %v; want the store's", n, err)
	}
	time.Sleep(1100 * time.Millisecond)
	for range 3 {
		if _, err := s.AccountByFingerprint(ctx, fingerprint("card")); err != nil {
			t.Fatalf("read after losing the pool's connections: %v", err)
		}
		if _, err := s.SetStatus(ctx, a.Username, StatusActive); err != nil {
			t.Fatalf("write after losing the pool's connections: %v", err)
		}
	}
}

// Anyone who can connect can NOTIFY on the channel: what is not a Change
// is skipped, and the watcher carries on.
func TestPostgresWatchSkipsMalformedNotices(t *testing.T) {
	db := postgresBackend.newDatabase(t)
	watcher, writer := db.open(t), db.open(t)
	changes := watchChanges(t, watcher)
	waitChange(t, changes, Change{Resync: true, Listening: true})

	for _, payload := range append(malformedPayloads(), strings.Repeat("[", 7000)) {
		if _, err := writer.writes().exec(context.Background(), `SELECT pg_notify(?, ?)`, ChangeChannel, payload); err != nil {
			t.Fatalf("notify %q: %v", payload, err)
		}
	}
	valid := Change{AccountID: 7, Username: "x"}
	if _, err := writer.writes().exec(context.Background(), `SELECT pg_notify(?, ?)`, ChangeChannel, `{"account_id":7,"username":"x","future_field":[1]}`); err != nil {
		t.Fatal(err)
	}
	if c := nextChange(t, changes); !changeEqual(c, valid) {
		t.Errorf("first change after the malformed ones = %+v, want %+v", c, valid)
	}
}

func TestWatchStopsWithContext(t *testing.T) {
	s := postgresBackend.openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, func(c Change) {
			select {
			case started <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-started:
	case <-time.After(changeWait):
		t.Fatal("Watch never started listening")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v, want nil when its context ends", err)
		}
	case <-time.After(changeWait):
		t.Fatal("Watch did not return after its context ended")
	}
}

// Without a server to listen to, Watch keeps trying, says why, and still
// stops with its context.
func TestWatchRetriesUnreachableServer(t *testing.T) {
	s := postgresBackend.openStore(t)
	feed := s.dialect.changes.(*pgChangeFeed)
	config := feed.config.Copy()
	closed := closedPort(t)
	var port uint16
	fmt.Sscan(closed, &port)
	config.Port = port
	config.Fallbacks = nil
	feed.config, feed.minBackoff, feed.maxBackoff = config, 10*time.Millisecond, 40*time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	failures := make(chan error, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.WatchWithErrors(ctx, func(c Change) { t.Errorf("change %+v without a connection", c) },
			func(err error) {
				select {
				case failures <- err:
				default:
				}
			})
	}()
	for range 3 {
		select {
		case err := <-failures:
			if err == nil || !strings.Contains(err.Error(), "connect") {
				t.Errorf("failure reported as %v", err)
			}
		case <-time.After(changeWait):
			t.Fatal("Watch did not retry")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v", err)
		}
	case <-time.After(changeWait):
		t.Fatal("Watch did not return after its context ended")
	}
}

func TestWatchUnsupportedOnSQLite(t *testing.T) {
	s := openTestStore(t)
	if s.CanWatch() {
		t.Error("CanWatch on SQLite")
	}
	err := s.Watch(context.Background(), func(Change) { t.Error("change on SQLite") })
	assertErrorIs(t, err, ErrWatchUnsupported)
	if !postgresBackend.openStore(t).CanWatch() {
		t.Error("cannot watch PostgreSQL")
	}
}

func malformedPayloads() []string {
	return []string{
		"", "not json", "{", "[]", "null", "{}", "0", `"resync"`,
		`{"account_id":-1}`, `{"account_id":"7"}`, `{"account_id":1e400}`,
		`{"account_id":7}garbage`, `{"fingerprints":[1]}`, `{"resync":"yes"}`,
		`{"username":""}`, `{"fingerprints":[]}`,
		`{"ended_session":""}`, `{"ended_session":"` + strings.Repeat("x", MaxSessionIDLen+1) + `"}`,
		`{"ended_session":"a\u0000b"}`, `{"ended_session":7}`,
	}
}

func TestDecodeChange(t *testing.T) {
	for _, payload := range malformedPayloads() {
		if c, ok := decodeChange(notice(payload), ""); ok {
			t.Errorf("decodeChange(%q) = %+v, want it skipped", payload, c)
		}
	}
	for payload, want := range map[string]Change{
		`{"account_id":7}`:                                                 {AccountID: 7},
		`{"username":"jdoe","edipi":"1"}`:                                  {Username: "jdoe", EDIPI: "1"},
		`{"fingerprints":["ab"],"unknown":{}}`:                             {Fingerprints: []string{"ab"}},
		`{"resync":true}`:                                                  {Resync: true},
		`{"resync":true,"account_id":7}`:                                   {Resync: true},
		`{"account_id":7,"username":"\u00e9\n"}`:                           {AccountID: 7, Username: "é\n"},
		`{"ended_session":"s1","ended_session_expires":99}`:                {EndedSession: "s1", EndedSessionExpires: 99},
		`{"ended_session":"s1","ended_session_expires":99,"account_id":7}`: {EndedSession: "s1", EndedSessionExpires: 99},
	} {
		c, ok := decodeChange(notice(payload), "")
		if !ok || !changeEqual(c, want) {
			t.Errorf("decodeChange(%q) = %+v, %v; want %+v", payload, c, ok, want)
		}
	}
	if c, ok := decodeChange(noticeOn("other", `{"account_id":7}`), ""); ok {
		t.Errorf("notice on another channel decoded: %+v", c)
	}
	// The origin marks a store's own notices; no notice claims Listening.
	for payload, want := range map[string]Change{
		`{"account_id":7,"origin":"me"}`:               {AccountID: 7, Own: true},
		`{"account_id":7,"origin":"you"}`:              {AccountID: 7},
		`{"account_id":7}`:                             {AccountID: 7},
		`{"resync":true,"origin":"me"}`:                {Resync: true, Own: true},
		`{"ended_session":"s1","origin":"me"}`:         {EndedSession: "s1", Own: true},
		`{"account_id":7,"Listening":true,"Own":true}`: {AccountID: 7},
		`{"account_id":7,"listening":true,"own":true}`: {AccountID: 7},
	} {
		c, ok := decodeChange(notice(payload), "me")
		if !ok || !changeEqual(c, want) {
			t.Errorf("decodeChange(%q) by origin me = %+v, %v; want %+v", payload, c, ok, want)
		}
	}
	if c, _ := decodeChange(notice(`{"account_id":7,"origin":""}`), ""); c.Own {
		t.Error("a store without an origin took an unnamed notice as its own")
	}
}

func FuzzDecodeChange(f *testing.F) {
	for _, p := range malformedPayloads() {
		f.Add(p)
	}
	f.Add(`{"account_id":7,"username":"x","edipi":"1","fingerprints":["a","b"]}`)
	f.Add(`{"resync":true}`)
	f.Fuzz(func(t *testing.T, payload string) {
		c, ok := decodeChange(notice(payload), "")
		if ok && !c.Resync && c.EndedSession == "" && c.AccountID <= 0 && c.Username == "" && c.EDIPI == "" && len(c.Fingerprints) == 0 {
			t.Errorf("decodeChange(%q) accepted a change naming nothing: %+v", payload, c)
		}
		if ok && c.Resync && !changeEqual(c, Change{Resync: true}) {
			t.Errorf("decodeChange(%q) = %+v: a resync carries nothing else", payload, c)
		}
	})
}

// changeWait bounds every wait for a notice or for Watch to return; they
// normally take milliseconds, but a busy machine can leave the listener's
// goroutine (or the PostgreSQL server) without a CPU for seconds, and only
// a failing test waits this long.
const changeWait = time.Minute

// watchChanges runs s.Watch until the test ends and returns the changes it
// reports.
func watchChanges(t *testing.T, s *SQLStore) <-chan Change {
	return watchChangesReporting(t, s, nil)
}

func watchChangesReporting(t *testing.T, s *SQLStore, onError func(error)) <-chan Change {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan Change, 1000)
	done := make(chan error, 1)
	go func() {
		done <- s.WatchWithErrors(ctx, func(c Change) {
			select {
			case changes <- c:
			default:
				// The test stopped reading; it has failed already.
			}
		}, onError)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch: %v", err)
			}
		case <-time.After(changeWait):
			t.Error("Watch did not return after its context ended")
		}
	})
	return changes
}

// nextChange returns the next change, failing the test if none comes.
func nextChange(t *testing.T, changes <-chan Change) Change {
	t.Helper()
	select {
	case c := <-changes:
		return c
	case <-time.After(changeWait):
		t.Fatal("no change announced")
		return Change{}
	}
}

// waitChange fails the test unless the next change is want.
func waitChange(t *testing.T, changes <-chan Change, want Change) {
	t.Helper()
	if got := nextChange(t, changes); !changeEqual(got, want) {
		t.Fatalf("change = %+v, want %+v", got, want)
	}
}

func changeEqual(a, b Change) bool {
	return a.AccountID == b.AccountID && a.Username == b.Username && a.EDIPI == b.EDIPI &&
		a.Resync == b.Resync && a.Listening == b.Listening && a.Own == b.Own && slices.Equal(a.Fingerprints, b.Fingerprints) &&
		a.EndedSession == b.EndedSession && a.EndedSessionExpires == b.EndedSessionExpires
}

// freezingProxy forwards TCP connections to a PostgreSQL server until
// frozen: then the connections it carries stop passing data, without
// closing, as across a network partition. Connections made after the
// freeze work.
type freezingProxy struct {
	dsn string
	mu  sync.Mutex
	// frozen is closed by freeze, for the connections open at the time.
	frozen chan struct{}
}

func newFreezingProxy(t *testing.T, dsn string) *freezingProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = l.Addr().String()
	p := &freezingProxy{dsn: u.String(), frozen: make(chan struct{})}
	var wg sync.WaitGroup
	var conns []net.Conn
	var connsMu sync.Mutex
	t.Cleanup(func() {
		l.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, client, server)
			connsMu.Unlock()
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{client, server}, {server, client}} {
				wg.Go(func() { pipeUntil(pair[0], pair[1], frozen) })
			}
		}
	})
	return p
}

// freeze stops the connections open now from carrying data.
func (p *freezingProxy) freeze() {
	p.mu.Lock()
	close(p.frozen)
	p.frozen = make(chan struct{})
	p.mu.Unlock()
}

// pipeUntil copies from src to dst until either fails or frozen is
// closed; from then on it reads and drops what arrives.
func pipeUntil(src, dst net.Conn, frozen <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-frozen:
			continue
		default:
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func notice(payload string) *pgconn.Notification { return noticeOn(ChangeChannel, payload) }

func noticeOn(channel, payload string) *pgconn.Notification {
	return &pgconn.Notification{PID: 1, Channel: channel, Payload: payload}
}
