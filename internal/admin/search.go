package admin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// Paging of account listings.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = store.MaxListLimit
	maxSearchText    = 100 // characters of free text
)

// AccountSearch selects accounts for a listing: every field set must
// match, and an empty one matches all.
type AccountSearch struct {
	// Text matches the start of a username or DoD ID, or part of a given
	// name, family name or email, ignoring case.
	Text string
	// Username and EDIPI match exactly.
	Username, EDIPI string
	Status          string
	Group           string
	// Offset skips that many matches; Limit (1-1000, default 100) bounds
	// the page.
	Offset, Limit int
}

// searchParams are the query parameters of GET /cacgate/accounts.
var searchParams = map[string]bool{"q": true, "username": true, "edipi": true, "status": true, "group": true, "offset": true, "limit": true}

// ParseSearch reads GET /cacgate/accounts's query strictly: an unknown or
// repeated parameter is an error rather than a filter silently ignored.
func ParseSearch(q url.Values) (AccountSearch, error) {
	for k, v := range q {
		if !searchParams[k] {
			return AccountSearch{}, BadRequest(fmt.Errorf("unknown query parameter %q (use q, username, edipi, status, group, offset, limit)", Clip(k, 40)))
		}
		if len(v) > 1 {
			return AccountSearch{}, BadRequest(fmt.Errorf("query parameter %q is given more than once", k))
		}
	}
	s := AccountSearch{Text: q.Get("q"), Username: q.Get("username"), EDIPI: q.Get("edipi"), Status: q.Get("status"), Group: q.Get("group")}
	var err error
	if v := q.Get("offset"); v != "" {
		if s.Offset, err = strconv.Atoi(v); err != nil || s.Offset < 0 {
			return AccountSearch{}, BadRequest(errors.New("offset must be a non-negative number"))
		}
	}
	if v := q.Get("limit"); v != "" {
		if s.Limit, err = strconv.Atoi(v); err != nil || s.Limit < 1 || s.Limit > MaxPageLimit {
			return AccountSearch{}, BadRequest(fmt.Errorf("limit must be between 1 and %d", MaxPageLimit))
		}
	}
	return s, nil
}

// validate checks a search before it reaches the store.
func (q *AccountSearch) validate() error {
	if err := checkText("q", q.Text, maxSearchText); err != nil {
		return err
	}
	if q.Username != "" && !store.ValidUsername(q.Username) {
		return errors.New("username must be a whole username: lowercase letters, digits, '.', '_' or '-', starting with a letter")
	}
	if q.EDIPI != "" && !store.ValidEDIPI(q.EDIPI) {
		return errors.New("edipi must be the 10-digit DoD ID number (use q to search by its first digits)")
	}
	switch store.Status(q.Status) {
	case "", store.StatusActive, store.StatusDisabled, store.StatusPending:
	default:
		return errors.New(`status must be "active", "disabled" or "pending"`)
	}
	if q.Group != "" && !store.ValidGroupName(q.Group) {
		return errors.New("group must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if q.Offset < 0 {
		return errors.New("offset must be a non-negative number")
	}
	if q.Limit < 0 || q.Limit > MaxPageLimit {
		return fmt.Errorf("limit must be between 1 and %d", MaxPageLimit)
	}
	if q.Limit == 0 {
		q.Limit = DefaultPageLimit
	}
	return nil
}

// Search lists one page of the accounts that match q.
func (s *Service) Search(ctx context.Context, q AccountSearch) (AccountPage, error) {
	if err := q.validate(); err != nil {
		return AccountPage{}, BadRequest(err)
	}
	page, err := s.Store.SearchAccounts(ctx, store.AccountQuery{
		Text: q.Text, Username: q.Username, EDIPI: q.EDIPI, Status: store.Status(q.Status), Group: q.Group,
		Offset: q.Offset, Limit: q.Limit,
	})
	if errors.Is(err, store.ErrInvalidQuery) {
		return AccountPage{}, BadRequest(err)
	}
	if err != nil {
		return AccountPage{}, s.storeError(err, "")
	}
	out := AccountPage{Accounts: make([]Account, 0, len(page.Accounts)), Total: page.Total, Offset: q.Offset, Limit: q.Limit}
	for _, a := range page.Accounts {
		out.Accounts = append(out.Accounts, accountOf(a))
	}
	return out, nil
}

// Groups lists every group in use and how many accounts are in it.
func (s *Service) Groups(ctx context.Context) ([]Group, error) {
	groups, err := s.Store.ListGroups(ctx)
	if err != nil {
		return nil, s.storeError(err, "")
	}
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		out = append(out, Group{Name: g.Name, Accounts: g.Accounts})
	}
	return out, nil
}

// AddGroups puts an account in groups; groups it is in already are kept.
func (s *Service) AddGroups(ctx context.Context, who Actor, username string, groups []string) (Account, error) {
	return s.editGroups(ctx, who, EventGroupsAdded, username, groups, s.Store.AddGroups)
}

// RemoveGroups takes an account out of groups; groups it is not in are
// ignored.
func (s *Service) RemoveGroups(ctx context.Context, who Actor, username string, groups []string) (Account, error) {
	return s.editGroups(ctx, who, EventGroupsRemoved, username, groups, s.Store.RemoveGroups)
}

func (s *Service) editGroups(ctx context.Context, who Actor, event, username string, groups []string,
	edit func(context.Context, string, ...string) (*store.Account, error)) (Account, error) {
	if err := checkUsername(username); err != nil {
		return Account{}, s.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username)}
	if len(groups) == 0 {
		return Account{}, s.fail(who, event, BadRequest(errors.New("name at least one group")), fields...)
	}
	if err := checkGroups(groups); err != nil {
		return Account{}, s.fail(who, event, BadRequest(err), fields...)
	}
	fields = append(fields, zap.Strings("groups", groups))
	acct, err := edit(ctx, username, groups...)
	if errors.Is(err, store.ErrInvalidGroup) {
		// The only rule checkGroups leaves to the store: the bound on an
		// account's groups.
		return Account{}, s.fail(who, event, unprocessable(err), fields...)
	}
	if err != nil {
		return Account{}, s.fail(who, event, s.storeError(err, username), fields...)
	}
	s.changed()
	s.record(who, event, audit.Success, append(fields, zap.String("edipi", acct.EDIPI), zap.Strings("account_groups", acct.Groups))...)
	return accountOf(acct), nil
}
