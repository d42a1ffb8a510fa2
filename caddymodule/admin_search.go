package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// Paging of account listings.
const (
	defaultPageLimit = 100
	maxPageLimit     = store.MaxListLimit
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

// parseSearch reads GET /cacgate/accounts's query strictly: an unknown or
// repeated parameter is an error rather than a filter silently ignored.
func parseSearch(q url.Values) (AccountSearch, error) {
	for k, v := range q {
		if !searchParams[k] {
			return AccountSearch{}, badRequest(fmt.Errorf("unknown query parameter %q (use q, username, edipi, status, group, offset, limit)", clip(k, 40)))
		}
		if len(v) > 1 {
			return AccountSearch{}, badRequest(fmt.Errorf("query parameter %q is given more than once", k))
		}
	}
	s := AccountSearch{Text: q.Get("q"), Username: q.Get("username"), EDIPI: q.Get("edipi"), Status: q.Get("status"), Group: q.Get("group")}
	var err error
	if v := q.Get("offset"); v != "" {
		if s.Offset, err = strconv.Atoi(v); err != nil || s.Offset < 0 {
			return AccountSearch{}, badRequest(errors.New("offset must be a non-negative number"))
		}
	}
	if v := q.Get("limit"); v != "" {
		if s.Limit, err = strconv.Atoi(v); err != nil || s.Limit < 1 || s.Limit > maxPageLimit {
			return AccountSearch{}, badRequest(fmt.Errorf("limit must be between 1 and %d", maxPageLimit))
		}
	}
	return s, nil
}

// validate checks a search before it reaches the store.
func (s *AccountSearch) validate() error {
	if err := checkText("q", s.Text, maxSearchText); err != nil {
		return err
	}
	if s.Username != "" && !store.ValidUsername(s.Username) {
		return errors.New("username must be a whole username: lowercase letters, digits, '.', '_' or '-', starting with a letter")
	}
	if s.EDIPI != "" && !store.ValidEDIPI(s.EDIPI) {
		return errors.New("edipi must be the 10-digit DoD ID number (use q to search by its first digits)")
	}
	switch store.Status(s.Status) {
	case "", store.StatusActive, store.StatusDisabled, store.StatusPending:
	default:
		return errors.New(`status must be "active", "disabled" or "pending"`)
	}
	if s.Group != "" && !store.ValidGroupName(s.Group) {
		return errors.New("group must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if s.Offset < 0 {
		return errors.New("offset must be a non-negative number")
	}
	if s.Limit < 0 || s.Limit > maxPageLimit {
		return fmt.Errorf("limit must be between 1 and %d", maxPageLimit)
	}
	if s.Limit == 0 {
		s.Limit = defaultPageLimit
	}
	return nil
}

// Search lists one page of the accounts that match s.
func (o *adminOps) Search(ctx context.Context, s AccountSearch) (AccountPageJSON, error) {
	if err := s.validate(); err != nil {
		return AccountPageJSON{}, badRequest(err)
	}
	page, err := o.store.SearchAccounts(ctx, store.AccountQuery{
		Text: s.Text, Username: s.Username, EDIPI: s.EDIPI, Status: store.Status(s.Status), Group: s.Group,
		Offset: s.Offset, Limit: s.Limit,
	})
	if errors.Is(err, store.ErrInvalidQuery) {
		return AccountPageJSON{}, badRequest(err)
	}
	if err != nil {
		return AccountPageJSON{}, o.storeError(err, "")
	}
	out := AccountPageJSON{Accounts: make([]AccountJSON, 0, len(page.Accounts)), Total: page.Total, Offset: s.Offset, Limit: s.Limit}
	for _, a := range page.Accounts {
		out.Accounts = append(out.Accounts, accountJSON(a))
	}
	return out, nil
}

// Groups lists every group in use and how many accounts are in it.
func (o *adminOps) Groups(ctx context.Context) ([]GroupJSON, error) {
	groups, err := o.store.ListGroups(ctx)
	if err != nil {
		return nil, o.storeError(err, "")
	}
	out := make([]GroupJSON, 0, len(groups))
	for _, g := range groups {
		out = append(out, GroupJSON{Name: g.Name, Accounts: g.Accounts})
	}
	return out, nil
}

// Audit events of group changes.
const (
	eventGroupsAdded   = "admin.groups.added"
	eventGroupsRemoved = "admin.groups.removed"
)

// AddGroups puts an account in groups; groups it is in already are kept.
func (o *adminOps) AddGroups(ctx context.Context, who adminActor, username string, groups []string) (AccountJSON, error) {
	return o.editGroups(ctx, who, eventGroupsAdded, username, groups, o.store.AddGroups)
}

// RemoveGroups takes an account out of groups; groups it is not in are
// ignored.
func (o *adminOps) RemoveGroups(ctx context.Context, who adminActor, username string, groups []string) (AccountJSON, error) {
	return o.editGroups(ctx, who, eventGroupsRemoved, username, groups, o.store.RemoveGroups)
}

func (o *adminOps) editGroups(ctx context.Context, who adminActor, event, username string, groups []string,
	edit func(context.Context, string, ...string) (*store.Account, error)) (AccountJSON, error) {
	if err := checkUsername(username); err != nil {
		return AccountJSON{}, o.fail(who, event, err)
	}
	fields := []zap.Field{zap.String("username", username)}
	if len(groups) == 0 {
		return AccountJSON{}, o.fail(who, event, badRequest(errors.New("name at least one group")), fields...)
	}
	if err := checkGroups(groups); err != nil {
		return AccountJSON{}, o.fail(who, event, badRequest(err), fields...)
	}
	fields = append(fields, zap.Strings("groups", groups))
	acct, err := edit(ctx, username, groups...)
	if errors.Is(err, store.ErrInvalidGroup) {
		// The only rule checkGroups leaves to the store: the bound on an
		// account's groups.
		return AccountJSON{}, o.fail(who, event, unprocessable(err), fields...)
	}
	if err != nil {
		return AccountJSON{}, o.fail(who, event, o.storeError(err, username), fields...)
	}
	o.changed()
	o.record(who, event, audit.Success, append(fields, zap.String("edipi", acct.EDIPI), zap.Strings("account_groups", acct.Groups))...)
	return accountJSON(acct), nil
}

func adminSearchAccounts(ops *adminOps, _ adminActor, w http.ResponseWriter, r *http.Request) error {
	s, err := parseSearch(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := ops.Search(r.Context(), s)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, page)
}

func adminListGroups(ops *adminOps, _ adminActor, w http.ResponseWriter, r *http.Request) error {
	groups, err := ops.Groups(r.Context())
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, groups)
}

// adminEditGroups serves adding or removing groups: {"groups":[...]}.
func adminEditGroups(event string, op func(*adminOps, context.Context, adminActor, string, []string) (AccountJSON, error)) adminHandler {
	return func(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
		var req GroupsRequest
		if err := decodeBody(w, r, &req); err != nil {
			return ops.fail(who, event, err, usernameField(r.PathValue("username")))
		}
		acct, err := op(ops, r.Context(), who, r.PathValue("username"), req.Groups)
		if err != nil {
			return err
		}
		return writeAdminJSON(w, http.StatusOK, acct)
	}
}
