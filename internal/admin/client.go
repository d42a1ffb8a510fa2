package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Client is the Backend of a running server's admin API: each operation
// is one request to the routes the admin API serves under /cacgate/.
type Client struct {
	// Address is the admin API's address, for errors.
	Address string
	// Send makes one request to the admin API (uri is its path and query)
	// and returns the answer. An error status is an error: an *Error with
	// the status and the answer's message (as "HTTP <status>: <message>")
	// or, if the request failed, an error saying so. Send takes no context;
	// the Client stops waiting for it when the operation's context ends.
	Send func(method, uri string, header http.Header, body io.Reader) (*http.Response, error)
}

// maxAnswer bounds an admin API answer the Client reads into memory.
const maxAnswer = 64 << 20

// do makes one admin API request; a JSON body is marshalled from body
// unless it is an io.Reader, sent as is with contentType. The caller
// closes the answer's body.
func (c *Client) do(ctx context.Context, method, uri string, body any, contentType string) (*http.Response, error) {
	var reader io.Reader
	hdr := http.Header{}
	switch b := body.(type) {
	case nil:
	case io.Reader:
		reader = b
		hdr.Set("Content-Type", contentType)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(data)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	// Send takes no context: run it aside so ctx bounds the wait.
	done := make(chan result, 1)
	go func() {
		resp, err := c.Send(method, uri, hdr, reader)
		done <- result{resp, err}
	}()
	select {
	case res := <-done:
		return res.resp, res.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.resp != nil {
				r.resp.Body.Close()
			}
		}()
		return nil, fmt.Errorf("admin API at %s: %w", c.Address, ctx.Err())
	}
}

// call is do with the answer decoded into out (if non-nil).
func (c *Client) call(ctx context.Context, method, uri string, body any, contentType string, out any) error {
	resp, err := c.do(ctx, method, uri, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	return nil
}

func userPath(username string) string { return "/cacgate/accounts/" + url.PathEscape(username) }

// Search implements Backend.
func (c *Client) Search(ctx context.Context, s AccountSearch) (AccountPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"q": s.Text, "username": s.Username, "edipi": s.EDIPI, "status": s.Status, "group": s.Group} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if s.Offset != 0 {
		q.Set("offset", strconv.Itoa(s.Offset))
	}
	if s.Limit != 0 {
		q.Set("limit", strconv.Itoa(s.Limit))
	}
	uri := "/cacgate/accounts"
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	var page AccountPage
	err := c.call(ctx, http.MethodGet, uri, nil, "", &page)
	return page, err
}

// Show implements Backend.
func (c *Client) Show(ctx context.Context, username string) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodGet, userPath(username), nil, "", &acct)
	return acct, err
}

// Groups implements Backend.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var groups []Group
	err := c.call(ctx, http.MethodGet, "/cacgate/groups", nil, "", &groups)
	return groups, err
}

// Create implements Backend.
func (c *Client) Create(ctx context.Context, _ Actor, req NewAccountRequest) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, "/cacgate/accounts", req, "", &acct)
	return acct, err
}

// action is a change to one account that takes no body.
func (c *Client) action(ctx context.Context, action, username string) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, userPath(username)+"/"+action, nil, "", &acct)
	return acct, err
}

// Approve implements Backend.
func (c *Client) Approve(ctx context.Context, _ Actor, username string) (Account, error) {
	return c.action(ctx, "approve", username)
}

// Disable implements Backend.
func (c *Client) Disable(ctx context.Context, _ Actor, username string) (Account, error) {
	return c.action(ctx, "disable", username)
}

// Enable implements Backend.
func (c *Client) Enable(ctx context.Context, _ Actor, username string) (Account, error) {
	return c.action(ctx, "enable", username)
}

// Unlock implements Backend.
func (c *Client) Unlock(ctx context.Context, _ Actor, username string) (Account, error) {
	return c.action(ctx, "unlock", username)
}

func (c *Client) editGroups(ctx context.Context, method, username string, groups []string) (Account, error) {
	var acct Account
	err := c.call(ctx, method, userPath(username)+"/groups", GroupsRequest{Groups: groups}, "", &acct)
	return acct, err
}

// AddGroups implements Backend.
func (c *Client) AddGroups(ctx context.Context, _ Actor, username string, groups []string) (Account, error) {
	return c.editGroups(ctx, http.MethodPost, username, groups)
}

// RemoveGroups implements Backend.
func (c *Client) RemoveGroups(ctx context.Context, _ Actor, username string, groups []string) (Account, error) {
	return c.editGroups(ctx, http.MethodDelete, username, groups)
}

// LinkCard implements Backend.
func (c *Client) LinkCard(ctx context.Context, _ Actor, username, certPEM string) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, userPath(username)+"/cards", LinkCardRequest{Certificate: certPEM}, "", &acct)
	return acct, err
}

// UnlinkCard implements Backend.
func (c *Client) UnlinkCard(ctx context.Context, _ Actor, username, fingerprint string) error {
	return c.call(ctx, http.MethodDelete, userPath(username)+"/cards/"+url.PathEscape(fingerprint), nil, "", nil)
}

// Import implements Backend; the server audits the import's source as
// "admin API".
func (c *Client) Import(ctx context.Context, _ Actor, csv io.Reader, onConflict, _ string) (ImportReport, error) {
	var report ImportReport
	uri := "/cacgate/accounts/import?on_conflict=" + url.QueryEscape(onConflict)
	err := c.call(ctx, http.MethodPost, uri, csv, "text/csv", &report)
	return report, err
}

// Export implements Backend.
func (c *Client) Export(ctx context.Context, _ Actor, w io.Writer) (int, error) {
	resp, err := c.do(ctx, http.MethodGet, "/cacgate/accounts/export", nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, fmt.Errorf("export: %w (the server stopped mid-way; see its log)", err)
	}
	// The count comes last, as a trailer: only a complete export has it.
	n, err := strconv.Atoi(resp.Trailer.Get(ExportCountTrailer))
	if err != nil {
		return 0, errors.New("export: the answer ended without its account count: it may be incomplete")
	}
	return n, nil
}

// RevocationStats returns the server's revocation checker state (there is
// none without a running server, so it is not part of Backend).
func (c *Client) RevocationStats(ctx context.Context) (RevocationStats, error) {
	var st RevocationStats
	err := c.call(ctx, http.MethodGet, "/cacgate/revocation", nil, "", &st)
	return st, err
}

// DisableBecause implements Backend.
func (c *Client) DisableBecause(ctx context.Context, _ Actor, username, reason string) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, userPath(username)+"/disable", StatusRequest{Reason: reason}, "", &acct)
	return acct, err
}

// EnableBecause implements Backend.
func (c *Client) EnableBecause(ctx context.Context, _ Actor, username, reason string) (Account, error) {
	var acct Account
	err := c.call(ctx, http.MethodPost, userPath(username)+"/enable", StatusRequest{Reason: reason}, "", &acct)
	return acct, err
}

// RequirePasswordReset implements Backend.
func (c *Client) RequirePasswordReset(ctx context.Context, _ Actor, username string) (Account, error) {
	return c.action(ctx, "require-password-reset", username)
}

// Events implements Backend (all events of the account; names are not
// sent: the admin API lists every kind).
func (c *Client) Events(ctx context.Context, username string, limit int, _ ...string) ([]Event, error) {
	uri := userPath(username) + "/events"
	if limit > 0 {
		uri += "?limit=" + strconv.Itoa(limit)
	}
	var events []Event
	err := c.call(ctx, http.MethodGet, uri, nil, "", &events)
	return events, err
}

// Announcements implements Backend.
func (c *Client) Announcements(ctx context.Context) ([]Announcement, error) {
	var list []Announcement
	err := c.call(ctx, http.MethodGet, "/cacgate/announcements", nil, "", &list)
	return list, err
}

// CreateAnnouncement implements Backend.
func (c *Client) CreateAnnouncement(ctx context.Context, _ Actor, req NewAnnouncementRequest) (Announcement, error) {
	var a Announcement
	err := c.call(ctx, http.MethodPost, "/cacgate/announcements", req, "", &a)
	return a, err
}

// DeleteAnnouncement implements Backend.
func (c *Client) DeleteAnnouncement(ctx context.Context, _ Actor, id int64) error {
	return c.call(ctx, http.MethodDelete, "/cacgate/announcements/"+strconv.FormatInt(id, 10), nil, "", nil)
}
