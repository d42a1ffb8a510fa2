package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/console"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/history"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// The glue of the help-desk console (issue 15): the site options that
// turn it on (admin_group, admin_read_group) and the structured contact
// block; the app's security-event history (event_history) and its
// announcements, read from the account database and kept in memory for
// the pages; and the page chrome that shows both on every page.

// EventHistoryConfig bounds the security-event history kept in the account
// database (global option event_history).
type EventHistoryConfig struct {
	// Off keeps no history: the console then shows no events.
	Off bool `json:"off,omitempty"`
	// MaxAge: older events are pruned (default 90 days).
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// MaxEvents: all but the newest are pruned (default 1,000,000).
	MaxEvents int `json:"max_events,omitempty"`
}

// unmarshalEventHistory parses
//
//	event_history off | {
//		max_age    <duration>
//		max_events <n>
//	}
func unmarshalEventHistory(d *caddyfile.Dispenser) (*EventHistoryConfig, error) {
	cfg := new(EventHistoryConfig)
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return nil, d.Errf("event_history takes off or a block")
		}
		cfg.Off = true
		return cfg, nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("event_history: %s specified more than once", sub)
		}
		seen[sub] = true
		switch sub {
		case "max_age":
			if err := durationArg(d, &cfg.MaxAge); err != nil {
				return nil, err
			}
		case "max_events":
			n, err := intArg(d)
			if err != nil {
				return nil, err
			}
			cfg.MaxEvents = n
		default:
			return nil, d.Errf("unrecognized event_history option %q", sub)
		}
	}
	return cfg, nil
}

func (c *EventHistoryConfig) validate() error {
	if c == nil || c.Off {
		return nil
	}
	if c.MaxAge != 0 && (c.MaxAge < caddy.Duration(time.Hour) || c.MaxAge > caddy.Duration(10*366*24*time.Hour)) {
		return fmt.Errorf("event_history max_age must be between 1h and 10 years, got %s", time.Duration(c.MaxAge))
	}
	if c.MaxEvents < 0 || c.MaxEvents > 100_000_000 {
		return fmt.Errorf("event_history max_events must be between 1 and 100000000, got %d", c.MaxEvents)
	}
	return nil
}

// provisionHistory starts copying audit entries into the account
// database, unless event_history is off.
func (a *App) provisionHistory(ctx caddy.Context) {
	if a.EventHistory != nil && a.EventHistory.Off {
		return
	}
	cfg := history.Config{Store: a.store, Logger: a.logger.Named("history"), Dropped: a.metrics.HistoryDroppedOne}
	if a.EventHistory != nil {
		cfg.MaxAge, cfg.MaxEvents = time.Duration(a.EventHistory.MaxAge), a.EventHistory.MaxEvents
	}
	a.history = history.New(cfg)
	a.audit.Tap = a.history.Tap
	go a.history.Run(ctx)
}

// How often each node reads the announcements again without being told
// (a change made on another node over SQLite, or a missed notice), and
// how long ended ones are kept.
const (
	announcementsRefresh = 30 * time.Second
	announcementsKeep    = 30 * 24 * time.Hour
)

// provisionAnnouncements starts the loop that keeps the announcements in
// memory: pages read them from there, without I/O. It reads them when it
// starts, every announcementsRefresh, and at once when told of a change
// (a local one through the admin service, another node's through the
// change feed).
func (a *App) provisionAnnouncements(ctx caddy.Context) {
	a.announceKick = make(chan struct{}, 1)
	a.adminService.AnnouncementsChanged = a.announcementsChanged
	go a.followAnnouncements(ctx)
}

func (a *App) announcementsChanged() {
	if a.announceKick == nil {
		return
	}
	select {
	case a.announceKick <- struct{}{}:
	default:
	}
}

func (a *App) followAnnouncements(ctx context.Context) {
	t := time.NewTicker(announcementsRefresh)
	defer t.Stop()
	failing := false
	lastPrune := time.Time{}
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		now := time.Now()
		list, err := a.store.OpenAnnouncements(rctx, now)
		if err == nil && now.Sub(lastPrune) > time.Hour {
			lastPrune = now
			_, _ = a.store.PruneAnnouncements(rctx, now.Add(-announcementsKeep))
		}
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			a.logger.Warn("reading the announcements failed; the pages show the ones read before", zap.String("cause", store.Cause(err)), zap.Error(err))
		case err == nil:
			failing = false
			shown := make([]ui.Announcement, 0, len(list))
			for _, an := range list {
				shown = append(shown, ui.Announcement{Severity: an.Severity, Message: an.Message, Start: an.Start, End: an.End})
			}
			a.announcements.Store(&shown)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.announceKick:
		}
	}
}

// currentAnnouncements are the announcements last read (current and
// scheduled; the chrome shows those in force).
func (a *App) currentAnnouncements() []ui.Announcement {
	if p := a.announcements.Load(); p != nil {
		return *p
	}
	return nil
}

// withChrome makes every page written to w show the announcements and
// the site's help desk.
func (h *Handler) withChrome(w http.ResponseWriter) http.ResponseWriter {
	return ui.WithChrome(w, func() ui.Chrome {
		return ui.Chrome{Announcements: h.app.currentAnnouncements(), HelpDesk: h.HelpDesk, Now: time.Now()}
	})
}

// unmarshalContact parses
//
//	contact <text>
//	contact [<text>] {
//		name  <text>
//		phone <text>
//		email <address>
//		hours <text>
//		url   <https address>
//	}
func (h *Handler) unmarshalContact(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		h.Contact = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	nesting := d.Nesting()
	if !d.NextBlock(nesting) {
		if h.Contact == "" {
			return d.ArgErr()
		}
		return nil
	}
	hd := new(ui.HelpDesk)
	seen := map[string]bool{}
	for ok := true; ok; ok = d.NextBlock(nesting) {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("contact: %s specified more than once", sub)
		}
		seen[sub] = true
		var dst *string
		switch sub {
		case "name":
			dst = &hd.Name
		case "phone":
			dst = &hd.Phone
		case "email":
			dst = &hd.Email
		case "hours":
			dst = &hd.Hours
		case "url":
			dst = &hd.URL
		default:
			return d.Errf("unrecognized contact option %q (name, phone, email, hours, url)", sub)
		}
		if err := stringArg(d, dst); err != nil {
			return err
		}
	}
	h.HelpDesk = hd
	return nil
}

// validateHelpDesk checks the contact block: short printable text, a plain
// e-mail address, an absolute http(s) URL.
func validateHelpDesk(hd *ui.HelpDesk) error {
	if hd == nil {
		return nil
	}
	for name, v := range map[string]string{"name": hd.Name, "phone": hd.Phone, "hours": hd.Hours} {
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > 100 {
			return fmt.Errorf("contact %s must be text of at most 100 characters", name)
		}
		for _, r := range v {
			if !unicode.IsPrint(r) {
				return fmt.Errorf("contact %s contains a control character", name)
			}
		}
	}
	if hd.Email != "" {
		addr, err := mail.ParseAddress(hd.Email)
		if err != nil || addr.Address != hd.Email || len(hd.Email) > 254 {
			return fmt.Errorf("contact email must be a plain address like help@example.mil, got %q", admin.Clip(hd.Email, 60))
		}
	}
	if hd.URL != "" {
		u, err := url.Parse(hd.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(hd.URL) > 500 {
			return fmt.Errorf("contact url must be an absolute http(s) address, got %q", admin.Clip(hd.URL, 60))
		}
	}
	if hd.Empty() {
		return errors.New("contact block is empty: give at least one of name, phone, email, hours, url")
	}
	return nil
}

// contactText is the site's contact in one line, for refusal pages and
// JSON answers: the contact text, else the help desk's summary.
func (h *Handler) contactText() string {
	if h.Contact != "" {
		return h.Contact
	}
	return h.HelpDesk.Summary()
}

// validateConsole checks admin_group and admin_read_group.
func (h *Handler) validateConsole() error {
	for name, g := range map[string]string{"admin_group": h.AdminGroup, "admin_read_group": h.AdminReadGroup} {
		if g != "" && !store.ValidGroupName(g) {
			return fmt.Errorf("%s %q is not a group name: 1-64 characters, lowercase letters, digits, '.', '_' or '-'", name, admin.Clip(g, 70))
		}
	}
	if h.AdminGroup != "" && h.AdminGroup == h.AdminReadGroup {
		return errors.New("admin_group and admin_read_group must be different groups")
	}
	return validateHelpDesk(h.HelpDesk)
}

// provisionConsole builds the site's help-desk console, if it is on.
func (h *Handler) provisionConsole() (*console.Console, error) {
	if h.AdminGroup == "" && h.AdminReadGroup == "" {
		return nil, nil
	}
	return console.New(console.Config{
		Service:    h.app.adminService,
		Audit:      h.app.audit,
		Logger:     h.logger.Named("console"),
		AdminGroup: h.AdminGroup,
		ReadGroup:  h.AdminReadGroup,
		Status:     h.app.consoleStatus,
		Contact:    h.contactText(),
	})
}

// consoleStatus is what the console's status page shows of the running
// app.
func (a *App) consoleStatus() console.Status {
	st := console.Status{Revocation: a.revocationStats()}
	entries, capacity := a.core.CacheStats()
	st.Health = append(st.Health,
		console.HealthLine{Name: "Cards cached", Value: fmt.Sprintf("%d of %d (each trusted for %s)", entries, capacity, time.Duration(a.CacheTTL))},
		console.HealthLine{Name: "Change feed", Value: a.core.FeedState()},
	)
	if a.hasher != nil {
		st.Health = append(st.Health, console.HealthLine{Name: "Password hashing", Value: fmt.Sprintf("%d running, %d waiting", a.hasher.InFlight(), a.hasher.Waiting(credential.Interactive)+a.hasher.Waiting(credential.Enrollment))})
	}
	if a.history != nil {
		st.Health = append(st.Health, console.HealthLine{Name: "Security events not kept in the history (since start)", Value: strconv.FormatInt(a.history.Dropped(), 10)})
	} else {
		st.Health = append(st.Health, console.HealthLine{Name: "Security-event history", Value: "off"})
	}
	st.Health = append(st.Health, console.HealthLine{Name: "Announcements current or scheduled", Value: strconv.Itoa(len(a.currentAnnouncements()))})
	return st
}
