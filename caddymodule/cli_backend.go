package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// accountsBackend is what the accounts commands run against: the account
// database directly (directBackend), or a running server's admin API
// (apiBackend). Both give the same answers, so the commands and their
// output do not care which.
type accountsBackend interface {
	Search(ctx context.Context, s AccountSearch) (AccountPageJSON, error)
	Show(ctx context.Context, username string) (AccountJSON, error)
	Create(ctx context.Context, req NewAccountRequest) (AccountJSON, error)
	// Action is "approve", "disable", "enable" or "unlock".
	Action(ctx context.Context, action, username string) (AccountJSON, error)
	EditGroups(ctx context.Context, add bool, username string, groups []string) (AccountJSON, error)
	Groups(ctx context.Context) ([]GroupJSON, error)
	LinkCard(ctx context.Context, username, certPEM string) (AccountJSON, error)
	UnlinkCard(ctx context.Context, username, fingerprint string) error
	Import(ctx context.Context, csv io.Reader, onConflict string) (ImportReportJSON, error)
	// Export writes every account as CSV to w and returns how many.
	Export(ctx context.Context, w io.Writer) (int, error)
	Close() error
}

// directBackend runs the admin operations on the store itself, as the CLI's
// OS user.
type directBackend struct {
	ops     *adminOps
	who     adminActor
	closeFn func() error
	source  string // the import's file name, for the audit trail
	// announces: the store tells running servers of changes (PostgreSQL);
	// otherwise they see them within cache_ttl.
	announces bool
}

func (d *directBackend) Search(ctx context.Context, s AccountSearch) (AccountPageJSON, error) {
	return d.ops.Search(ctx, s)
}

func (d *directBackend) Show(ctx context.Context, username string) (AccountJSON, error) {
	return d.ops.Show(ctx, username)
}

func (d *directBackend) Create(ctx context.Context, req NewAccountRequest) (AccountJSON, error) {
	return d.ops.Create(ctx, d.who, req)
}

func (d *directBackend) Action(ctx context.Context, action, username string) (AccountJSON, error) {
	op, ok := accountActions[action]
	if !ok {
		return AccountJSON{}, fmt.Errorf("unknown action %q", action)
	}
	return op(d.ops, ctx, d.who, username)
}

// accountActions are the changes to one account that take no input.
var accountActions = map[string]func(*adminOps, context.Context, adminActor, string) (AccountJSON, error){
	"approve": (*adminOps).Approve,
	"disable": (*adminOps).Disable,
	"enable":  (*adminOps).Enable,
	"unlock":  (*adminOps).Unlock,
}

func (d *directBackend) EditGroups(ctx context.Context, add bool, username string, groups []string) (AccountJSON, error) {
	if add {
		return d.ops.AddGroups(ctx, d.who, username, groups)
	}
	return d.ops.RemoveGroups(ctx, d.who, username, groups)
}

func (d *directBackend) Groups(ctx context.Context) ([]GroupJSON, error) { return d.ops.Groups(ctx) }

func (d *directBackend) LinkCard(ctx context.Context, username, certPEM string) (AccountJSON, error) {
	return d.ops.LinkCard(ctx, d.who, username, certPEM)
}

func (d *directBackend) UnlinkCard(ctx context.Context, username, fingerprint string) error {
	return d.ops.UnlinkCard(ctx, d.who, username, fingerprint)
}

func (d *directBackend) Import(ctx context.Context, csv io.Reader, onConflict string) (ImportReportJSON, error) {
	return d.ops.Import(ctx, d.who, csv, onConflict, d.source)
}

func (d *directBackend) Export(ctx context.Context, w io.Writer) (int, error) {
	return d.ops.Export(ctx, d.who, w)
}

func (d *directBackend) Close() error { return d.closeFn() }

// apiBackend talks to a running server's admin API, which audits the
// changes with its own view of the caller ("local" and the address).
type apiBackend struct {
	address string
}

// maxAPIAnswer bounds an admin API answer the CLI reads into memory.
const maxAPIAnswer = 64 << 20

// do makes one admin API request; a JSON body is marshalled from body
// unless it is an io.Reader, sent as is with contentType. The caller
// closes the answer's body.
func (a *apiBackend) do(ctx context.Context, method, uri string, body any, contentType string) (*http.Response, error) {
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
	// AdminAPIRequest takes no context: run it aside so ctx bounds the wait.
	done := make(chan result, 1)
	go func() {
		resp, err := caddycmd.AdminAPIRequest(a.address, method, uri, hdr, reader)
		done <- result{resp, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, apiCallError(a.address, res.err)
		}
		return res.resp, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.resp != nil {
				r.resp.Body.Close()
			}
		}()
		return nil, fmt.Errorf("admin API at %s: %w", a.address, ctx.Err())
	}
}

// call is do with the answer decoded into out (if non-nil).
func (a *apiBackend) call(ctx context.Context, method, uri string, body any, contentType string, out any) error {
	resp, err := a.do(ctx, method, uri, body, contentType)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer))
	if err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	return nil
}

// apiErrorText is how caddycmd.AdminAPIRequest reports an error status.
var apiErrorText = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d{3}): (.*)$`)

// apiCallError turns the admin API's error answer, {"error": "..."}, into
// "HTTP <status>: <message>".
func apiCallError(address string, err error) error {
	m := apiErrorText.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("admin API at %s: %w (is the server running? without --address the CLI works on the database directly)", address, err)
	}
	status, _ := strconv.Atoi(m[1])
	var body caddy.APIError
	msg := strings.TrimSpace(m[2])
	if json.Unmarshal([]byte(msg), &body) == nil && body.Message != "" {
		msg = body.Message
	}
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf("HTTP %d: %s", status, msg)}
}

func userPath(username string) string { return "/cacgate/accounts/" + url.PathEscape(username) }

func (a *apiBackend) Search(ctx context.Context, s AccountSearch) (AccountPageJSON, error) {
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
	var page AccountPageJSON
	err := a.call(ctx, http.MethodGet, uri, nil, "", &page)
	return page, err
}

func (a *apiBackend) Show(ctx context.Context, username string) (AccountJSON, error) {
	var acct AccountJSON
	err := a.call(ctx, http.MethodGet, userPath(username), nil, "", &acct)
	return acct, err
}

func (a *apiBackend) Create(ctx context.Context, req NewAccountRequest) (AccountJSON, error) {
	var acct AccountJSON
	err := a.call(ctx, http.MethodPost, "/cacgate/accounts", req, "", &acct)
	return acct, err
}

func (a *apiBackend) Action(ctx context.Context, action, username string) (AccountJSON, error) {
	if _, ok := accountActions[action]; !ok {
		return AccountJSON{}, fmt.Errorf("unknown action %q", action)
	}
	var acct AccountJSON
	err := a.call(ctx, http.MethodPost, userPath(username)+"/"+action, nil, "", &acct)
	return acct, err
}

func (a *apiBackend) EditGroups(ctx context.Context, add bool, username string, groups []string) (AccountJSON, error) {
	method := http.MethodPost
	if !add {
		method = http.MethodDelete
	}
	var acct AccountJSON
	err := a.call(ctx, method, userPath(username)+"/groups", GroupsRequest{Groups: groups}, "", &acct)
	return acct, err
}

func (a *apiBackend) Groups(ctx context.Context) ([]GroupJSON, error) {
	var groups []GroupJSON
	err := a.call(ctx, http.MethodGet, "/cacgate/groups", nil, "", &groups)
	return groups, err
}

func (a *apiBackend) LinkCard(ctx context.Context, username, certPEM string) (AccountJSON, error) {
	var acct AccountJSON
	err := a.call(ctx, http.MethodPost, userPath(username)+"/cards", LinkCardRequest{Certificate: certPEM}, "", &acct)
	return acct, err
}

func (a *apiBackend) UnlinkCard(ctx context.Context, username, fingerprint string) error {
	return a.call(ctx, http.MethodDelete, userPath(username)+"/cards/"+url.PathEscape(fingerprint), nil, "", nil)
}

func (a *apiBackend) Import(ctx context.Context, csv io.Reader, onConflict string) (ImportReportJSON, error) {
	var report ImportReportJSON
	uri := "/cacgate/accounts/import?on_conflict=" + url.QueryEscape(onConflict)
	err := a.call(ctx, http.MethodPost, uri, csv, "text/csv", &report)
	return report, err
}

func (a *apiBackend) Export(ctx context.Context, w io.Writer) (int, error) {
	resp, err := a.do(ctx, http.MethodGet, "/cacgate/accounts/export", nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, fmt.Errorf("export: %w (the server stopped mid-way; see its log)", err)
	}
	// The count comes last, as a trailer: only a complete export has it.
	n, err := strconv.Atoi(resp.Trailer.Get(exportCountTrailer))
	if err != nil {
		return 0, errors.New("export: the answer ended without its account count: it may be incomplete")
	}
	return n, nil
}

func (a *apiBackend) Close() error { return nil }
