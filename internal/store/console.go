package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The help-desk console's part of the account database: a password reset
// an administrator requires, the bounded history of security events, and
// the announcements every page shows.

const requirePasswordResetSQL = `UPDATE accounts SET password_reset_required_at = ? WHERE username = ? AND password_hash <> ''`

// ErrNoPassword: the account has no password to reset.
var ErrNoPassword = errors.New("account has no password")

// RequirePasswordReset makes the account's password sign in no more until
// it is changed (on the account page with the card) or reset with the
// security answers. It returns ErrNotFound for no such account and
// ErrNoPassword for one without a password.
func (s *SQLStore) RequirePasswordReset(ctx context.Context, username string, at time.Time) (*Account, error) {
	var acct *Account
	err := s.inWriteTx(ctx, func(ex executor) error {
		res, err := ex.exec(ctx, requirePasswordResetSQL, at.Unix(), username)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		accounts, err := s.accountsWith(ctx, ex, accountByUsernameSQL, username)
		if err != nil {
			return err
		}
		if len(accounts) == 0 {
			return ErrNotFound
		}
		if n == 0 {
			return ErrNoPassword
		}
		acct = accounts[0]
		// Other nodes drop the account's cached entries: its password
		// sessions' change time is read again.
		return s.announce(ctx, ex, changeOf(acct))
	})
	if err != nil {
		return nil, fmt.Errorf("store: require password reset: %w", s.dialect.translate(err))
	}
	return acct, nil
}

// accountsWith runs an account query through ex (inside a transaction).
func (s *SQLStore) accountsWith(ctx context.Context, ex executor, query string, args ...any) ([]*Account, error) {
	rows, err := ex.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return scanAccounts(rows)
}

// SecurityEvent is one audit entry kept in the account database's
// security-event history.
type SecurityEvent struct {
	ID       int64
	At       time.Time
	Event    string
	Outcome  string
	Username string // the account concerned, "" if none
	EDIPI    string // the DoD ID concerned, "" if none
	SourceIP string
	Node     string
	// Fields is the whole entry as the audit logger wrote it: a JSON
	// object.
	Fields string
}

// Bounds of a security event's columns; the table's CHECKs enforce them.
const (
	MaxEventName   = 64
	MaxEventFields = 16 << 10
	maxEventIP     = 64
	maxEventNode   = 256
	maxOutcome     = 16
)

const insertSecurityEventSQL = `
INSERT INTO security_events (at, event, outcome, username, edipi, source_ip, node, fields)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// RecordSecurityEvents appends events to the history in one transaction.
// Columns that do not fit their bounds are cut rather than refused (the
// audit log keeps the entry whole); an identifier that is not valid
// (username, DoD ID) is left out of its column, so the history is never
// searched by a value a client made up.
func (s *SQLStore) RecordSecurityEvents(ctx context.Context, events []SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	err := s.inWriteTx(ctx, func(ex executor) error {
		for _, e := range events {
			if e.Event == "" {
				continue
			}
			username, edipi := e.Username, e.EDIPI
			if !ValidUsername(username) {
				username = ""
			}
			if !ValidEDIPI(edipi) {
				edipi = ""
			}
			if _, err := ex.exec(ctx, insertSecurityEventSQL, e.At.UnixNano(), cut(e.Event, MaxEventName), cut(e.Outcome, maxOutcome),
				username, edipi, cut(e.SourceIP, maxEventIP), cut(e.Node, maxEventNode), cutFields(e.Fields)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record security events: %w", s.dialect.translate(err))
	}
	return nil
}

// cut shortens s to at most n bytes at a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// cutFields keeps an entry's JSON whole or, past the bound, says so: half
// a JSON object would be unreadable.
func cutFields(fields string) string {
	if fields == "" {
		return "{}"
	}
	if len(fields) > MaxEventFields {
		return `{"truncated":true}`
	}
	return fields
}

// MaxEventsListed bounds one listing of security events.
const MaxEventsListed = 500

const (
	selectSecurityEvents = `SELECT id, at, event, outcome, username, edipi, source_ip, node, fields FROM security_events `
	// An account's events name it by username or, before it had one
	// (a card refused, an enrollment begun), by its DoD ID.
	accountEventsSQL = selectSecurityEvents + `
WHERE id IN (SELECT id FROM security_events WHERE username = ? AND username <> ''
             UNION SELECT id FROM security_events WHERE edipi = ? AND edipi <> '')
ORDER BY at DESC, id DESC LIMIT ?`
	accountEventsOfSQL = selectSecurityEvents + `
WHERE event IN (%s)
  AND id IN (SELECT id FROM security_events WHERE username = ? AND username <> ''
             UNION SELECT id FROM security_events WHERE edipi = ? AND edipi <> '')
ORDER BY at DESC, id DESC LIMIT ?`
	recentEventsSQL = selectSecurityEvents + `ORDER BY at DESC, id DESC LIMIT ?`
)

// EventQuery selects security events: those naming Username or EDIPI
// (either may be empty), of the given Events if any, newest first, at most
// Limit (1 to MaxEventsListed).
type EventQuery struct {
	Username, EDIPI string
	Events          []string
	Limit           int
}

// SecurityEvents lists events newest first: an account's when the query
// names one, else the most recent of all.
func (s *SQLStore) SecurityEvents(ctx context.Context, q EventQuery) ([]SecurityEvent, error) {
	if q.Limit < 1 || q.Limit > MaxEventsListed {
		q.Limit = MaxEventsListed
	}
	if len(q.Events) > 32 {
		return nil, fmt.Errorf("store: security events: %w: at most 32 event names", ErrInvalidQuery)
	}
	var (
		query string
		args  []any
	)
	switch {
	case q.Username == "" && q.EDIPI == "":
		query, args = recentEventsSQL, []any{q.Limit}
	case len(q.Events) > 0:
		query = fmt.Sprintf(accountEventsOfSQL, strings.TrimSuffix(strings.Repeat("?,", len(q.Events)), ","))
		for _, e := range q.Events {
			args = append(args, e)
		}
		args = append(args, q.Username, q.EDIPI, q.Limit)
	default:
		query, args = accountEventsSQL, []any{q.Username, q.EDIPI, q.Limit}
	}
	rows, err := s.reads().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: security events: %w", s.dialect.translate(err))
	}
	defer rows.Close()
	var out []SecurityEvent
	for rows.Next() {
		var e SecurityEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Event, &e.Outcome, &e.Username, &e.EDIPI, &e.SourceIP, &e.Node, &e.Fields); err != nil {
			return nil, fmt.Errorf("store: security events: %w", s.dialect.translate(err))
		}
		e.At = time.Unix(0, at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: security events: %w", s.dialect.translate(err))
	}
	return out, nil
}

const (
	pruneEventsByAgeSQL = `DELETE FROM security_events WHERE at < ?`
	// The newest keep events stay: the cut is the id of the keep-th
	// newest (ids grow with insertion on every node's shared database).
	pruneEventsByCountSQL = `
DELETE FROM security_events
WHERE id <= (SELECT id FROM security_events ORDER BY id DESC LIMIT 1 OFFSET ?)`
)

// PruneSecurityEvents deletes the events older than before, then all but
// the newest keep, and returns how many it deleted.
func (s *SQLStore) PruneSecurityEvents(ctx context.Context, before time.Time, keep int) (int64, error) {
	var total int64
	res, err := s.writes().exec(ctx, pruneEventsByAgeSQL, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store: prune security events: %w", s.dialect.translate(err))
	}
	if n, err := res.RowsAffected(); err == nil {
		total += n
	}
	if keep > 0 {
		res, err := s.writes().exec(ctx, pruneEventsByCountSQL, keep)
		if err != nil {
			return total, fmt.Errorf("store: prune security events: %w", s.dialect.translate(err))
		}
		if n, err := res.RowsAffected(); err == nil {
			total += n
		}
	}
	return total, nil
}

// Severities of announcements.
const (
	SeverityInfo   = "info"
	SeverityOutage = "outage"
)

// Announcement is a notice shown on the gateway's pages between Start and
// End.
type Announcement struct {
	ID        int64
	Severity  string // SeverityInfo or SeverityOutage
	Message   string // plain text
	Start     time.Time
	End       time.Time
	CreatedAt time.Time
	CreatedBy string
}

// Bounds of announcements.
const (
	MaxAnnouncementText = 2000
	// MaxAnnouncements bounds the announcements not yet ended: each is
	// shown on every page.
	MaxAnnouncements = 20
)

// ErrInvalidAnnouncement: an announcement breaks a rule (severity,
// message length, end before start).
var ErrInvalidAnnouncement = errors.New("invalid announcement")

// ErrTooManyAnnouncements: MaxAnnouncements have not ended yet.
var ErrTooManyAnnouncements = fmt.Errorf("at most %d announcements may be current or scheduled at once", MaxAnnouncements)

const (
	insertAnnouncementSQL = `
INSERT INTO announcements (severity, message, starts_at, ends_at, created_at, created_by)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id`
	countOpenAnnouncementsSQL = `SELECT COUNT(*) FROM announcements WHERE ends_at > ?`
	selectAnnouncements       = `SELECT id, severity, message, starts_at, ends_at, created_at, created_by FROM announcements `
	openAnnouncementsSQL      = selectAnnouncements + `WHERE ends_at > ? ORDER BY starts_at, id LIMIT ?`
	deleteAnnouncementSQL     = `DELETE FROM announcements WHERE id = ?`
	announcementSQL           = selectAnnouncements + `WHERE id = ?`
	pruneAnnouncementsSQL     = `DELETE FROM announcements WHERE ends_at < ?`
)

// validAnnouncement checks an announcement before it is stored; the
// caller (the admin service) words the errors for people.
func validAnnouncement(a *Announcement) error {
	switch {
	case a.Severity != SeverityInfo && a.Severity != SeverityOutage:
		return errors.New("severity must be info or outage")
	case a.Message == "" || !utf8.ValidString(a.Message) || utf8.RuneCountInString(a.Message) > MaxAnnouncementText:
		return fmt.Errorf("message must be 1 to %d characters of text", MaxAnnouncementText)
	case !a.End.After(a.Start):
		return errors.New("the end must be after the start")
	case len(a.CreatedBy) > 512:
		return errors.New("created_by is too long")
	}
	return nil
}

// CreateAnnouncement stores a, setting its ID and CreatedAt. At most
// MaxAnnouncements may be open (not ended) at once: the count and the
// insert are one transaction (on PostgreSQL two racing creations may
// still both pass the count; the bound is a courtesy to readers, not a
// security limit, and only administrators create announcements).
func (s *SQLStore) CreateAnnouncement(ctx context.Context, a *Announcement, now time.Time) error {
	if err := validAnnouncement(a); err != nil {
		return fmt.Errorf("store: create announcement: %w: %w", ErrInvalidAnnouncement, err)
	}
	created := now.UTC().Truncate(time.Second)
	err := s.inWriteTx(ctx, func(ex executor) error {
		var open int
		if err := ex.queryRow(ctx, countOpenAnnouncementsSQL, now.Unix()).Scan(&open); err != nil {
			return err
		}
		if open >= MaxAnnouncements {
			return ErrTooManyAnnouncements
		}
		if err := ex.queryRow(ctx, insertAnnouncementSQL, a.Severity, a.Message, a.Start.Unix(), a.End.Unix(), created.Unix(), a.CreatedBy).Scan(&a.ID); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{Announcements: true})
	})
	if err != nil {
		if errors.Is(err, ErrTooManyAnnouncements) {
			return fmt.Errorf("store: create announcement: %w", err)
		}
		return fmt.Errorf("store: create announcement: %w", s.dialect.translate(err))
	}
	a.CreatedAt = created
	a.Start, a.End = fromUnix(a.Start.Unix()), fromUnix(a.End.Unix())
	return nil
}

// OpenAnnouncements lists the announcements that have not ended at now
// (current and scheduled), in the order they start.
func (s *SQLStore) OpenAnnouncements(ctx context.Context, now time.Time) ([]Announcement, error) {
	rows, err := s.reads().query(ctx, openAnnouncementsSQL, now.Unix(), MaxAnnouncements*2)
	if err != nil {
		return nil, fmt.Errorf("store: announcements: %w", s.dialect.translate(err))
	}
	defer rows.Close()
	var out []Announcement
	for rows.Next() {
		a, err := scanAnnouncement(rows)
		if err != nil {
			return nil, fmt.Errorf("store: announcements: %w", s.dialect.translate(err))
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: announcements: %w", s.dialect.translate(err))
	}
	return out, nil
}

func scanAnnouncement(row rowScanner) (Announcement, error) {
	var a Announcement
	var start, end, created int64
	if err := row.Scan(&a.ID, &a.Severity, &a.Message, &start, &end, &created, &a.CreatedBy); err != nil {
		return a, err
	}
	a.Start, a.End, a.CreatedAt = fromUnix(start), fromUnix(end), fromUnix(created)
	return a, nil
}

// DeleteAnnouncement removes an announcement and returns it as it was;
// ErrNotFound if there is none with that ID.
func (s *SQLStore) DeleteAnnouncement(ctx context.Context, id int64) (Announcement, error) {
	var a Announcement
	err := s.inWriteTx(ctx, func(ex executor) error {
		var err error
		if a, err = scanAnnouncement(ex.queryRow(ctx, announcementSQL, id)); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if err := ex.execOne(ctx, deleteAnnouncementSQL, id); err != nil {
			return err
		}
		return s.announce(ctx, ex, Change{Announcements: true})
	})
	if err != nil {
		return Announcement{}, fmt.Errorf("store: delete announcement: %w", s.dialect.translate(err))
	}
	return a, nil
}

// PruneAnnouncements deletes the announcements that ended before before.
func (s *SQLStore) PruneAnnouncements(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.writes().exec(ctx, pruneAnnouncementsSQL, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: prune announcements: %w", s.dialect.translate(err))
	}
	return res.RowsAffected()
}

// LoginFailures is an account's failed password sign-ins as stored: how
// many count in the current window, when the first of them was, and when
// its latest lockout ends or ended (zero times: none).
type LoginFailures struct {
	Failed      int
	FirstFailed time.Time
	LockedUntil time.Time
}

const loginFailuresSQL = `SELECT failed_logins, first_failed_at, locked_until FROM accounts WHERE username = ?`

// LoginFailuresOf reads an account's failed sign-ins, for the console.
func (s *SQLStore) LoginFailuresOf(ctx context.Context, username string) (LoginFailures, error) {
	var (
		lf                       LoginFailures
		firstFailed, lockedUntil sql.NullInt64
	)
	err := s.reads().queryRow(ctx, loginFailuresSQL, username).Scan(&lf.Failed, &firstFailed, &lockedUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return lf, fmt.Errorf("store: login failures: %w", ErrNotFound)
	}
	if err != nil {
		return lf, fmt.Errorf("store: login failures: %w", s.dialect.translate(err))
	}
	lf.FirstFailed, lf.LockedUntil = fromUnixOrNull(firstFailed), fromUnixOrNull(lockedUntil)
	return lf, nil
}
