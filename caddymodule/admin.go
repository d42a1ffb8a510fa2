package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is the admin.api.cacgate module: account administration through
// Caddy's admin endpoint (by default localhost:2019), so ops can provision,
// approve, disable and migrate accounts, effective at once on this node.
//
//	GET    /cacgate/accounts[?q=&username=&edipi=&status=&group=&offset=&limit=]
//	POST   /cacgate/accounts                         {"edipi","username",...}
//	POST   /cacgate/accounts/import[?on_conflict=fail|skip]   (text/csv)
//	GET    /cacgate/accounts/export                  (text/csv)
//	GET    /cacgate/accounts/{username}
//	POST   /cacgate/accounts/{username}/approve      (pending -> active only)
//	POST   /cacgate/accounts/{username}/disable
//	POST   /cacgate/accounts/{username}/enable       (disabled -> active)
//	POST   /cacgate/accounts/{username}/unlock       (password lockout)
//	POST   /cacgate/accounts/{username}/groups       {"groups":[...]} (PUT too: add)
//	DELETE /cacgate/accounts/{username}/groups       {"groups":[...]}
//	POST   /cacgate/accounts/{username}/cards        {"certificate":"<PEM>"}
//	DELETE /cacgate/accounts/{username}/cards/{sha256}
//	GET    /cacgate/groups
//	GET    /cacgate/revocation                       (CRL and OCSP cache state)
//
// Every change is audited with the admin's identity: the client
// certificate's subject when the admin endpoint is Caddy's remote admin
// (mTLS), else "local" and the client's address.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.cacgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// adminHandler serves one admin route with the running app's operations
// and the request's admin identity.
type adminHandler func(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error

// Timeouts of admin requests' database work: the admin endpoint sets none.
const (
	adminTimeout     = 30 * time.Second
	adminBulkTimeout = 10 * time.Minute // import, export
)

// Routes returns the admin routes, and under /cacgate/ a catch-all that
// answers a wrong method or an unknown path in the admin API's JSON error
// shape, as Go's mux would in plain text.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return append(adminRoutes(), caddy.AdminRoute{Pattern: adminPrefix, Handler: caddy.AdminHandlerFunc(adminNoRoute)})
}

// adminPrefix is the subtree of the admin endpoint this module serves.
const adminPrefix = "/cacgate/"

// adminRoutes returns the routes proper, each with its method.
func adminRoutes() []caddy.AdminRoute {
	route := func(pattern string, timeout time.Duration, fn adminHandler) caddy.AdminRoute {
		return caddy.AdminRoute{Pattern: pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method == http.MethodHead {
				// A GET pattern matches HEAD too, which would run an
				// export (and audit it) to send no body.
				return adminMethodNotAllowed(w, r)
			}
			app, err := runningApp()
			if err != nil {
				return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			return fn(app.adminOps(), apiActor(r), w, r.WithContext(ctx))
		})}
	}
	revocation := func(pattern string) caddy.AdminRoute {
		return caddy.AdminRoute{Pattern: pattern, Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method == http.MethodHead {
				return adminMethodNotAllowed(w, r)
			}
			app, err := runningApp()
			if err != nil {
				return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
			}
			return adminRevocationStats(app, w, r)
		})}
	}
	return []caddy.AdminRoute{
		route("GET /cacgate/accounts", adminTimeout, adminSearchAccounts),
		route("POST /cacgate/accounts", adminTimeout, adminCreateAccount),
		route("POST /cacgate/accounts/import", adminBulkTimeout, adminImportAccounts),
		route("GET /cacgate/accounts/export", adminBulkTimeout, adminExportAccounts),
		route("GET /cacgate/accounts/{username}", adminTimeout, adminShowAccount),
		route("POST /cacgate/accounts/{username}/approve", adminTimeout, adminAccountAction((*adminOps).Approve)),
		route("POST /cacgate/accounts/{username}/disable", adminTimeout, adminAccountAction((*adminOps).Disable)),
		route("POST /cacgate/accounts/{username}/enable", adminTimeout, adminAccountAction((*adminOps).Enable)),
		route("POST /cacgate/accounts/{username}/unlock", adminTimeout, adminAccountAction((*adminOps).Unlock)),
		route("POST /cacgate/accounts/{username}/groups", adminTimeout, adminEditGroups(eventGroupsAdded, (*adminOps).AddGroups)),
		route("PUT /cacgate/accounts/{username}/groups", adminTimeout, adminEditGroups(eventGroupsAdded, (*adminOps).AddGroups)),
		route("DELETE /cacgate/accounts/{username}/groups", adminTimeout, adminEditGroups(eventGroupsRemoved, (*adminOps).RemoveGroups)),
		route("POST /cacgate/accounts/{username}/cards", adminTimeout, adminLinkCard),
		route("DELETE /cacgate/accounts/{username}/cards/{fingerprint}", adminTimeout, adminUnlinkCard),
		route("GET /cacgate/groups", adminTimeout, adminListGroups),
		revocation("GET /cacgate/revocation"),
	}
}

// adminMethods are the methods the routes use, in the order Allow lists them.
var adminMethods = []string{http.MethodDelete, http.MethodGet, http.MethodPost, http.MethodPut}

// adminRouteMux holds the routes' patterns, to find which methods a path
// has: Caddy's mux, which serves them, offers no such lookup.
func adminRouteMux() *http.ServeMux {
	routeMux.once.Do(func() {
		routeMux.mux = http.NewServeMux()
		for _, rt := range adminRoutes() {
			routeMux.mux.Handle(rt.Pattern, http.NotFoundHandler())
		}
	})
	return routeMux.mux
}

var routeMux struct {
	once sync.Once
	mux  *http.ServeMux
}

// allowedMethods returns the methods that have a route for r's path.
func allowedMethods(r *http.Request) []string {
	var allowed []string
	for _, m := range adminMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := adminRouteMux().Handler(probe); pattern != "" {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

// adminMethodNotAllowed answers 405 with Allow, in the admin API's JSON error
// shape; or 404 if r's path has no route at all.
func adminMethodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	allowed := allowedMethods(r)
	if len(allowed) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no admin API route %s", clip(r.URL.Path, 100))}
	}
	allow := strings.Join(allowed, ", ")
	w.Header().Set("Allow", allow)
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed,
		Err: fmt.Errorf("method %s is not allowed on %s (allowed: %s)", clip(r.Method, 20), clip(r.URL.Path, 100), allow)}
}

// adminNoRoute serves what no route matched under adminPrefix: a path
// whose routes take other methods, or none.
func adminNoRoute(w http.ResponseWriter, r *http.Request) error {
	return adminMethodNotAllowed(w, r)
}

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 64 << 10

// decodeBody reads a small JSON body strictly: unknown fields, trailing
// data and oversized bodies are errors, so a typo in a field name is not
// silently ignored.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		if err == nil {
			return badRequest(errors.New("request body: more than one JSON value"))
		}
		return bodyError(err)
	}
	return nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return caddy.APIError{HTTPStatus: http.StatusRequestEntityTooLarge, Err: fmt.Errorf("request body is larger than %d bytes", tooBig.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest(errors.New("request body is empty; a JSON object is expected"))
	}
	return badRequest(fmt.Errorf("request body: %w", err))
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func adminCreateAccount(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
	var req NewAccountRequest
	if err := decodeBody(w, r, &req); err != nil {
		return ops.fail(who, "admin.account.created", err)
	}
	acct, err := ops.Create(r.Context(), who, req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, acct)
}

func adminShowAccount(ops *adminOps, _ adminActor, w http.ResponseWriter, r *http.Request) error {
	acct, err := ops.Show(r.Context(), r.PathValue("username"))
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, acct)
}

// adminAccountAction serves a change to one account that takes no body.
func adminAccountAction(op func(*adminOps, context.Context, adminActor, string) (AccountJSON, error)) adminHandler {
	return func(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
		acct, err := op(ops, r.Context(), who, r.PathValue("username"))
		if err != nil {
			return err
		}
		return writeAdminJSON(w, http.StatusOK, acct)
	}
}

// LinkCardRequest is the body of POST /cacgate/accounts/{username}/cards.
type LinkCardRequest struct {
	Certificate string `json:"certificate"` // PEM
}

func adminLinkCard(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
	var req LinkCardRequest
	if err := decodeBody(w, r, &req); err != nil {
		return ops.fail(who, "admin.card.linked", err, usernameField(r.PathValue("username")))
	}
	acct, err := ops.LinkCard(r.Context(), who, r.PathValue("username"), req.Certificate)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, acct)
}

func adminUnlinkCard(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
	if err := ops.UnlinkCard(r.Context(), who, r.PathValue("username"), r.PathValue("fingerprint")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = AdminAPI{}
)
