package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// The operations the help-desk console added: a reason given with a
// disable or enable, requiring a new password, an account's security
// events, the console's overview counts, and announcements. The admin
// API and the CLI offer them too.

// Audit events of these operations.
const (
	EventPasswordResetRequired = "admin.password.reset_required"
	EventAnnouncementCreated   = "admin.announcement.created"
	EventAnnouncementDeleted   = "admin.announcement.deleted"
)

// MaxReason bounds the reason an administrator gives for a change.
const MaxReason = 200

// checkReason validates the reason given with a change: printable text of
// at most MaxReason characters, or none.
func checkReason(reason string) error {
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > MaxReason {
		return BadRequest(fmt.Errorf("reason must be text of at most %d characters", MaxReason))
	}
	for _, r := range reason {
		if !unicode.IsPrint(r) {
			return BadRequest(errors.New("reason contains a control or non-printable character"))
		}
	}
	return nil
}

// reasonField is the audit field of a change's reason, if one was given.
func reasonField(reason string) []zap.Field {
	if reason = strings.TrimSpace(reason); reason == "" {
		return nil
	}
	// "reason" is the failure code of refused changes; this is why the
	// administrator made the change.
	return []zap.Field{zap.String("comment", reason)}
}

// StatusRequest is the optional body of .../disable and .../enable: why.
type StatusRequest struct {
	Reason string `json:"reason,omitempty"`
}

// DisableBecause is Disable with the administrator's reason, which the
// audit entry records (as "comment").
func (s *Service) DisableBecause(ctx context.Context, who Actor, username, reason string) (Account, error) {
	if err := checkReason(reason); err != nil {
		return Account{}, s.Refused(who, EventAccountDisabled, err, username)
	}
	return s.disable(ctx, who, username, reasonField(reason))
}

// EnableBecause is Enable with the administrator's reason.
func (s *Service) EnableBecause(ctx context.Context, who Actor, username, reason string) (Account, error) {
	if err := checkReason(reason); err != nil {
		return Account{}, s.Refused(who, EventAccountEnabled, err, username)
	}
	return s.enable(ctx, who, username, reasonField(reason))
}

// RequirePasswordReset makes an account's password stop signing in until
// its holder chooses a new one (on the account page with the card, or by
// resetting it with the security answers).
func (s *Service) RequirePasswordReset(ctx context.Context, who Actor, username string) (Account, error) {
	const event = EventPasswordResetRequired
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	acct, err := s.Store.RequirePasswordReset(ctx, username, time.Now())
	if errors.Is(err, store.ErrNoPassword) {
		return Account{}, s.fail(who, event, conflict("account %q has no password to reset", username), zap.String("username", username))
	}
	if err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), zap.String("username", username))
	}
	s.changed()
	s.record(who, event, audit.Success, zap.String("username", username), zap.String("edipi", acct.EDIPI))
	return accountOf(acct), nil
}

// Event is one entry of the security-event history.
type Event struct {
	Time     time.Time      `json:"time"`
	Event    string         `json:"event"`
	Outcome  string         `json:"outcome"`
	Username string         `json:"username,omitempty"`
	EDIPI    string         `json:"edipi,omitempty"`
	SourceIP string         `json:"source_ip,omitempty"`
	Node     string         `json:"node,omitempty"`
	Fields   map[string]any `json:"fields"`
}

// DefaultEventLimit is how many events a listing shows unless asked.
const DefaultEventLimit = 50

// Events lists an account's recent security events, newest first: those
// naming its username, or its DoD ID (a card refused before the account
// existed). Only those of the given event names when names is not empty.
func (s *Service) Events(ctx context.Context, username string, limit int, names ...string) ([]Event, error) {
	if err := checkUsername(username); err != nil {
		return nil, err
	}
	if limit < 0 || limit > store.MaxEventsListed {
		return nil, BadRequest(fmt.Errorf("limit must be between 1 and %d", store.MaxEventsListed))
	}
	if limit == 0 {
		limit = DefaultEventLimit
	}
	acct, err := s.Store.AccountByUsername(ctx, username)
	if err != nil {
		return nil, s.storeError(err, username)
	}
	rows, err := s.Store.SecurityEvents(ctx, store.EventQuery{Username: username, EDIPI: acct.EDIPI, Events: names, Limit: limit})
	if err != nil {
		return nil, s.storeError(err, username)
	}
	return eventsOf(rows), nil
}

// RecentEvents lists the most recent security events of all.
func (s *Service) RecentEvents(ctx context.Context, limit int) ([]Event, error) {
	if limit < 1 || limit > store.MaxEventsListed {
		limit = DefaultEventLimit
	}
	rows, err := s.Store.SecurityEvents(ctx, store.EventQuery{Limit: limit})
	if err != nil {
		return nil, s.storeError(err, "")
	}
	return eventsOf(rows), nil
}

func eventsOf(rows []store.SecurityEvent) []Event {
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		e := Event{Time: r.At, Event: r.Event, Outcome: r.Outcome, Username: r.Username, EDIPI: r.EDIPI, SourceIP: r.SourceIP, Node: r.Node}
		if err := json.Unmarshal([]byte(r.Fields), &e.Fields); err != nil || e.Fields == nil {
			e.Fields = map[string]any{}
		}
		out = append(out, e)
	}
	return out
}

// SignInEvents are the events that record a sign-in: a card's first grant
// (once per cache entry, the start of a session) and a password sign-in.
var SignInEvents = []string{"access.granted", "signin.password"}

// Overview is what the console's first page counts.
type Overview struct {
	Accounts int `json:"accounts"`
	Active   int `json:"active"`
	Pending  int `json:"pending"`
	Disabled int `json:"disabled"`
}

// Overview counts the accounts by status.
func (s *Service) Overview(ctx context.Context) (Overview, error) {
	var o Overview
	for _, c := range []struct {
		status store.Status
		n      *int
	}{{"", &o.Accounts}, {store.StatusActive, &o.Active}, {store.StatusPending, &o.Pending}, {store.StatusDisabled, &o.Disabled}} {
		page, err := s.Store.SearchAccounts(ctx, store.AccountQuery{Status: c.status, Limit: 1})
		if err != nil {
			return Overview{}, s.storeError(err, "")
		}
		*c.n = page.Total
	}
	return o, nil
}

// Announcement is a notice shown on the gateway's pages, as the admin API
// shows it.
type Announcement struct {
	ID        int64     `json:"id"`
	Severity  string    `json:"severity"`
	Message   string    `json:"message"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Current: shown now (started, not ended).
	Current bool `json:"current"`
}

// AnnouncementOf is a stored announcement as the admin API shows it at now.
func AnnouncementOf(a store.Announcement, now time.Time) Announcement {
	return Announcement{ID: a.ID, Severity: a.Severity, Message: a.Message, Start: a.Start.UTC(), End: a.End.UTC(),
		CreatedAt: a.CreatedAt.UTC(), CreatedBy: a.CreatedBy, Current: !now.Before(a.Start) && now.Before(a.End)}
}

// NewAnnouncementRequest is the body of POST /cacgate/announcements.
// Start defaults to now; End is required.
type NewAnnouncementRequest struct {
	Severity string     `json:"severity"`
	Message  string     `json:"message"`
	Start    *time.Time `json:"start,omitempty"`
	End      time.Time  `json:"end"`
}

// MaxAnnouncementDuration bounds how long one announcement is shown.
const MaxAnnouncementDuration = 366 * 24 * time.Hour

func (req *NewAnnouncementRequest) validate(now time.Time) (store.Announcement, error) {
	a := store.Announcement{Severity: req.Severity, Message: strings.TrimSpace(req.Message), Start: now, End: req.End}
	if req.Start != nil {
		a.Start = *req.Start
	}
	switch {
	case a.Severity != store.SeverityInfo && a.Severity != store.SeverityOutage:
		return a, errors.New(`severity must be "info" or "outage"`)
	case a.Message == "":
		return a, errors.New("message is empty")
	case !utf8.ValidString(a.Message) || utf8.RuneCountInString(a.Message) > store.MaxAnnouncementText:
		return a, fmt.Errorf("message must be text of at most %d characters", store.MaxAnnouncementText)
	case a.End.IsZero():
		return a, errors.New("end is required: announcements end by themselves")
	case !a.End.After(a.Start):
		return a, errors.New("end must be after start")
	case !a.End.After(now):
		return a, errors.New("end is in the past")
	case a.End.Sub(a.Start) > MaxAnnouncementDuration:
		return a, errors.New("an announcement may last at most 366 days")
	}
	for _, r := range a.Message {
		if !unicode.IsPrint(r) && r != '\n' {
			return a, errors.New("message contains a control or non-printable character")
		}
	}
	return a, nil
}

// Announcements lists the announcements not yet ended, current and
// scheduled, in the order they start.
func (s *Service) Announcements(ctx context.Context) ([]Announcement, error) {
	now := time.Now()
	rows, err := s.Store.OpenAnnouncements(ctx, now)
	if err != nil {
		return nil, s.storeError(err, "")
	}
	out := make([]Announcement, 0, len(rows))
	for _, a := range rows {
		out = append(out, AnnouncementOf(a, now))
	}
	return out, nil
}

// CreateAnnouncement stores a new announcement; every node shows it from
// its start to its end.
func (s *Service) CreateAnnouncement(ctx context.Context, who Actor, req NewAnnouncementRequest) (Announcement, error) {
	const event = EventAnnouncementCreated
	now := time.Now()
	a, err := req.validate(now)
	if err != nil {
		return Announcement{}, s.fail(who, event, BadRequest(err))
	}
	a.CreatedBy = Clip(who.Identity, 500)
	if err := s.Store.CreateAnnouncement(ctx, &a, now); err != nil {
		if errors.Is(err, store.ErrTooManyAnnouncements) {
			return Announcement{}, s.fail(who, event, conflict("%s: delete one first", store.ErrTooManyAnnouncements))
		}
		return Announcement{}, s.fail(who, event, s.storeError(err, ""))
	}
	s.announcementsChanged()
	s.record(who, event, audit.Success, announcementFields(a)...)
	return AnnouncementOf(a, now), nil
}

// DeleteAnnouncement removes an announcement at once, on every node.
func (s *Service) DeleteAnnouncement(ctx context.Context, who Actor, id int64) error {
	const event = EventAnnouncementDeleted
	if id <= 0 {
		return s.fail(who, event, BadRequest(errors.New("announcement id must be a positive number")))
	}
	a, err := s.Store.DeleteAnnouncement(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return s.fail(who, event, notFound("no announcement %d", id), zap.Int64("announcement_id", id))
	}
	if err != nil {
		return s.fail(who, event, s.storeError(err, ""), zap.Int64("announcement_id", id))
	}
	s.announcementsChanged()
	s.record(who, event, audit.Success, announcementFields(a)...)
	return nil
}

func announcementFields(a store.Announcement) []zap.Field {
	return []zap.Field{zap.Int64("announcement_id", a.ID), zap.String("severity", a.Severity),
		audit.Text("message", a.Message), zap.Time("start", a.Start.UTC()), zap.Time("end", a.End.UTC())}
}

func (s *Service) announcementsChanged() {
	if s.AnnouncementsChanged != nil {
		s.AnnouncementsChanged()
	}
}

// statusForError is the HTTP status of an operation's error, for pages
// that show it.
func statusForError(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return http.StatusInternalServerError
}

// StatusOf is the HTTP status of an admin operation's error: its *Error's,
// or 500.
func StatusOf(err error) int { return statusForError(err) }

// LoginAttempts is an account's failed password sign-ins and lockout.
type LoginAttempts struct {
	Failed      int        `json:"failed"`
	FirstFailed *time.Time `json:"first_failed,omitempty"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	Locked      bool       `json:"locked"`
}

// Attempts reads an account's failed sign-ins and lockout state.
func (s *Service) Attempts(ctx context.Context, username string) (LoginAttempts, error) {
	if err := checkUsername(username); err != nil {
		return LoginAttempts{}, err
	}
	lf, err := s.Store.LoginFailuresOf(ctx, username)
	if err != nil {
		return LoginAttempts{}, s.storeError(err, username)
	}
	return LoginAttempts{Failed: lf.Failed, FirstFailed: optTime(lf.FirstFailed), LockedUntil: optTime(lf.LockedUntil),
		Locked: time.Now().Before(lf.LockedUntil)}, nil
}
