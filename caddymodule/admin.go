package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/ui"
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
//	POST   /cacgate/accounts/{username}/disable      [{"reason":"..."}]
//	POST   /cacgate/accounts/{username}/enable       [{"reason":"..."}] (disabled -> active)
//	POST   /cacgate/accounts/{username}/require-password-reset
//	GET    /cacgate/accounts/{username}/events[?limit=]   (security-event history)
//	POST   /cacgate/accounts/{username}/unlock       (password lockout)
//	POST   /cacgate/accounts/{username}/groups       {"groups":[...]} (PUT too: add)
//	DELETE /cacgate/accounts/{username}/groups       {"groups":[...]}
//	POST   /cacgate/accounts/{username}/cards        {"certificate":"<PEM>"}
//	DELETE /cacgate/accounts/{username}/cards/{sha256}
//	GET    /cacgate/groups
//	POST   /cacgate/utility                          {"username","name","sponsor","expires_at",...}
//	POST   /cacgate/accounts/{username}/renew        {"expires_at"[,"sponsor"]} (utility accounts)
//	GET    /cacgate/accounts/{username}/npe          (non-person certificates registered)
//	POST   /cacgate/accounts/{username}/npe          {"certificate":"<PEM>","match":"fingerprint|subject"}
//	DELETE /cacgate/accounts/{username}/npe          {"certificate":"<PEM>","match":"fingerprint|subject"}
//	POST   /cacgate/mail/test                        {"to":"<address>"} (sends at once, not through the outbox)
//	GET    /cacgate/revocation                       (CRL and OCSP cache state)
//	GET    /cacgate/oidc/clients                     (registered relying parties)
//	PUT    /cacgate/oidc/clients/{client_id}         {client JSON, "generate_secret":true}
//	DELETE /cacgate/oidc/clients/{client_id}
//	GET    /cacgate/announcements
//	POST   /cacgate/announcements                    {"severity","message","start","end"}
//	DELETE /cacgate/announcements/{id}
//
// Every change is audited with the admin's identity: the client
// certificate's subject when the admin endpoint is Caddy's remote admin
// (mTLS), else "local" and the client's address. The operations are the
// running app's admin.Service; this module only routes, decodes and
// answers.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.cacgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// adminHandler serves one admin route with the running app's admin
// service and the request's admin identity.
type adminHandler func(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error

// Timeouts of admin requests' database work: the admin endpoint sets none.
const (
	adminTimeout     = 30 * time.Second
	adminBulkTimeout = 10 * time.Minute // import, export
)

// Routes returns the admin routes, and under /cacgate/ a catch-all that
// answers a wrong method or an unknown path in the admin API's JSON error
// shape, as Go's mux would in plain text.
func (AdminAPI) Routes() []caddy.AdminRoute {
	return append(adminRoutes(), caddy.AdminRoute{Pattern: adminPrefix, Handler: caddy.AdminHandlerFunc(adminMethodNotAllowed)})
}

// adminPrefix is the subtree of the admin endpoint this module serves.
const adminPrefix = "/cacgate/"

// adminRoutes returns the routes proper, each with its method.
func adminRoutes() []caddy.AdminRoute {
	serve := func(fn func(app *App, w http.ResponseWriter, r *http.Request) error) caddy.AdminRoute {
		return caddy.AdminRoute{Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.Method == http.MethodHead {
				// A GET pattern matches HEAD too, which would run an
				// export (and audit it) to send no body.
				return adminMethodNotAllowed(w, r)
			}
			app, err := runningApp()
			if err != nil {
				return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
			}
			return apiError(w, r, fn(app, w, r))
		})}
	}
	route := func(pattern string, timeout time.Duration, fn adminHandler) caddy.AdminRoute {
		rt := serve(func(app *App, w http.ResponseWriter, r *http.Request) error {
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			return fn(app.adminService, admin.APIActor(r), w, r.WithContext(ctx))
		})
		rt.Pattern = pattern
		return rt
	}
	revocation := serve(func(app *App, w http.ResponseWriter, _ *http.Request) error {
		return writeAdminJSON(w, http.StatusOK, app.revocationStats())
	})
	revocation.Pattern = "GET /cacgate/revocation"
	mailTest := serve(func(app *App, w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
		defer cancel()
		return adminMailTest(app, w, r.WithContext(ctx))
	})
	mailTest.Pattern = "POST /cacgate/mail/test"
	return []caddy.AdminRoute{
		route("GET /cacgate/accounts", adminTimeout, adminSearchAccounts),
		route("POST /cacgate/accounts", adminTimeout, adminCreateAccount),
		route("POST /cacgate/accounts/import", adminBulkTimeout, adminImportAccounts),
		route("GET /cacgate/accounts/export", adminBulkTimeout, adminExportAccounts),
		route("GET /cacgate/accounts/{username}", adminTimeout, adminShowAccount),
		route("POST /cacgate/accounts/{username}/approve", adminTimeout, adminAccountAction((*admin.Service).Approve)),
		route("POST /cacgate/accounts/{username}/disable", adminTimeout, adminStatusChange(admin.EventAccountDisabled, (*admin.Service).DisableBecause)),
		route("POST /cacgate/accounts/{username}/enable", adminTimeout, adminStatusChange(admin.EventAccountEnabled, (*admin.Service).EnableBecause)),
		route("POST /cacgate/accounts/{username}/require-password-reset", adminTimeout, adminAccountAction((*admin.Service).RequirePasswordReset)),
		route("GET /cacgate/accounts/{username}/events", adminTimeout, adminAccountEvents),
		route("GET /cacgate/announcements", adminTimeout, adminListAnnouncements),
		route("POST /cacgate/announcements", adminTimeout, adminCreateAnnouncement),
		route("DELETE /cacgate/announcements/{id}", adminTimeout, adminDeleteAnnouncement),
		route("POST /cacgate/accounts/{username}/unlock", adminTimeout, adminAccountAction((*admin.Service).Unlock)),
		route("POST /cacgate/accounts/{username}/groups", adminTimeout, adminEditGroups(admin.EventGroupsAdded, (*admin.Service).AddGroups)),
		route("PUT /cacgate/accounts/{username}/groups", adminTimeout, adminEditGroups(admin.EventGroupsAdded, (*admin.Service).AddGroups)),
		route("DELETE /cacgate/accounts/{username}/groups", adminTimeout, adminEditGroups(admin.EventGroupsRemoved, (*admin.Service).RemoveGroups)),
		route("POST /cacgate/accounts/{username}/cards", adminTimeout, adminLinkCard),
		route("DELETE /cacgate/accounts/{username}/cards/{fingerprint}", adminTimeout, adminUnlinkCard),
		route("GET /cacgate/groups", adminTimeout, adminListGroups),
		route("GET /cacgate/oidc/clients", adminTimeout, adminListOIDCClients),
		route("PUT /cacgate/oidc/clients/{id}", adminTimeout, adminPutOIDCClient),
		route("DELETE /cacgate/oidc/clients/{id}", adminTimeout, adminDeleteOIDCClient),
		route("POST /cacgate/utility", adminTimeout, adminCreateUtility),
		route("POST /cacgate/accounts/{username}/renew", adminTimeout, adminRenewUtility),
		route("GET /cacgate/accounts/{username}/npe", adminTimeout, adminListNPE),
		route("POST /cacgate/accounts/{username}/npe", adminTimeout, adminRegisterNPE),
		route("DELETE /cacgate/accounts/{username}/npe", adminTimeout, adminUnregisterNPE),
		mailTest,
		revocation,
	}
}

// apiError answers an admin operation's error with its status and message
// ({"error": message}). When the account database could not serve the
// request the answer is 503 with Retry-After, and says for programs what
// the audit entry says: {"error": message, "reason": "unavailable",
// "cause": "disk_full"}.
func apiError(w http.ResponseWriter, r *http.Request, err error) error {
	var e *admin.Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Cause == "" {
		return caddy.APIError{HTTPStatus: e.Status, Err: e.Err}
	}
	// Logged as Caddy logs the errors it answers itself.
	caddy.Log().Named("admin.api").Error("request error", zap.String("method", r.Method), zap.String("uri", r.RequestURI),
		zap.Int("status_code", e.Status), zap.String("cause", e.Cause), zap.Error(e))
	w.Header().Set("Retry-After", ui.RetryAfterStore)
	return writeAdminJSON(w, e.Status, unavailableAnswer{Error: e.Error(), Reason: e.Reason(), Cause: e.Cause})
}

// unavailableAnswer is the admin API's answer when the account database
// could not serve a request.
type unavailableAnswer struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Cause  string `json:"cause"`
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
// shape; or 404 if r's path has no route at all. It also serves what no
// route matched under adminPrefix.
func adminMethodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	allowed := allowedMethods(r)
	if len(allowed) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no admin API route %s", admin.Clip(r.URL.Path, 100))}
	}
	allow := strings.Join(allowed, ", ")
	w.Header().Set("Allow", allow)
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed,
		Err: fmt.Errorf("method %s is not allowed on %s (allowed: %s)", admin.Clip(r.Method, 20), admin.Clip(r.URL.Path, 100), allow)}
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func adminSearchAccounts(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	q, err := admin.ParseSearch(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := svc.Search(r.Context(), q)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, page)
}

func adminShowAccount(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	acct, err := svc.Show(r.Context(), r.PathValue("username"))
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, acct)
}

func adminCreateAccount(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.NewAccountRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventAccountCreated, err, "")
	}
	acct, err := svc.Create(r.Context(), who, req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, acct)
}

// adminAccountAction serves a change to one account that takes no body.
func adminAccountAction(op func(*admin.Service, context.Context, admin.Actor, string) (admin.Account, error)) adminHandler {
	return func(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
		acct, err := op(svc, r.Context(), who, r.PathValue("username"))
		if err != nil {
			return err
		}
		return writeAdminJSON(w, http.StatusOK, acct)
	}
}

// adminEditGroups serves adding or removing groups: {"groups":[...]}.
func adminEditGroups(event string, op func(*admin.Service, context.Context, admin.Actor, string, []string) (admin.Account, error)) adminHandler {
	return func(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
		var req admin.GroupsRequest
		if err := admin.DecodeJSON(w, r, &req); err != nil {
			return svc.Refused(who, event, err, r.PathValue("username"))
		}
		acct, err := op(svc, r.Context(), who, r.PathValue("username"), req.Groups)
		if err != nil {
			return err
		}
		return writeAdminJSON(w, http.StatusOK, acct)
	}
}

func adminListGroups(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	groups, err := svc.Groups(r.Context())
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, groups)
}

func adminLinkCard(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.LinkCardRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventCardLinked, err, r.PathValue("username"))
	}
	acct, err := svc.LinkCard(r.Context(), who, r.PathValue("username"), req.Certificate)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, acct)
}

func adminUnlinkCard(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	if err := svc.UnlinkCard(r.Context(), who, r.PathValue("username"), r.PathValue("fingerprint")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxImportBody bounds an import through the admin API: about 200,000
// accounts. Larger migrations run the CLI on the database directly. A
// variable so tests can lower it.
var maxImportBody int64 = 64 << 20

// importSource names an import through the admin API in the audit trail.
const importSource = "admin API"

func adminImportAccounts(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	csv, onConflict, err := admin.ReadImportRequest(w, r, maxImportBody)
	if err != nil {
		return svc.RefuseImport(who, importSource, err)
	}
	report, err := svc.Import(r.Context(), who, bytes.NewReader(csv), onConflict, importSource)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, report)
}

func adminExportAccounts(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()) > 0 {
		return admin.BadRequest(errors.New("export takes no query parameters"))
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="cacgate-accounts-`+time.Now().UTC().Format("20060102")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", admin.ExportCountTrailer)
	sw := &startedWriter{w: w}
	n, err := svc.Export(r.Context(), who, sw)
	if err != nil {
		if !sw.started {
			// Nothing sent yet: answer with an error instead, saying
			// why when the database could not serve it.
			h.Del("Trailer")
			h.Del("Content-Disposition")
			if admin.CauseOf(err) != "" {
				return err
			}
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: errors.New("the export failed (details in the log)")}
		}
		// Part of the CSV is out: break the connection, so the client
		// sees a failed transfer rather than a short file.
		panic(http.ErrAbortHandler)
	}
	h.Set(admin.ExportCountTrailer, strconv.Itoa(n))
	return nil
}

// startedWriter remembers whether anything reached the client.
type startedWriter struct {
	w       io.Writer
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		s.started = true
	}
	return s.w.Write(p)
}

// revocationStats is GET /cacgate/revocation: the running app's revocation
// checker state.
func (a *App) revocationStats() admin.RevocationStats {
	var mode string
	failOpen := false
	if a.Revocation != nil {
		mode, failOpen = a.Revocation.Mode, a.Revocation.FailOpen
	}
	return admin.RevocationStatsOf(mode, failOpen, a.revocation.Stats())
}

// adminStatusChange serves disable and enable, whose body is optional:
// {"reason": "..."}, recorded in the audit entry.
func adminStatusChange(event string, op func(*admin.Service, context.Context, admin.Actor, string, string) (admin.Account, error)) adminHandler {
	return func(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
		var req admin.StatusRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, admin.MaxJSONBody))
		if err != nil {
			return svc.Refused(who, event, admin.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", admin.MaxJSONBody), r.PathValue("username"))
		}
		if len(bytes.TrimSpace(body)) > 0 {
			r.Body = io.NopCloser(bytes.NewReader(body))
			if err := admin.DecodeJSON(w, r, &req); err != nil {
				return svc.Refused(who, event, err, r.PathValue("username"))
			}
		}
		acct, err := op(svc, r.Context(), who, r.PathValue("username"), req.Reason)
		if err != nil {
			return err
		}
		return writeAdminJSON(w, http.StatusOK, acct)
	}
}

func adminAccountEvents(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	limit := 0
	for k, v := range r.URL.Query() {
		if k != "limit" || len(v) > 1 {
			return admin.BadRequest(fmt.Errorf("unknown or repeated query parameter %q (only limit)", admin.Clip(k, 40)))
		}
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 {
			return admin.BadRequest(errors.New("limit must be a positive number"))
		}
		limit = n
	}
	events, err := svc.Events(r.Context(), r.PathValue("username"), limit)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, events)
}

func adminListAnnouncements(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	list, err := svc.Announcements(r.Context())
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, list)
}

func adminCreateAnnouncement(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.NewAnnouncementRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventAnnouncementCreated, err, "")
	}
	a, err := svc.CreateAnnouncement(r.Context(), who, req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, a)
}

func adminDeleteAnnouncement(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return svc.Refused(who, admin.EventAnnouncementDeleted, admin.BadRequest(errors.New("announcement id must be a number")), "")
	}
	if err := svc.DeleteAnnouncement(r.Context(), who, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Interface guards
var (
	_ caddy.AdminRouter = AdminAPI{}
)

func adminListOIDCClients(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	clients, err := svc.OIDCClients(r.Context())
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, clients)
}

// adminPutOIDCClient registers or replaces a relying party; the path names
// it (a client_id in the body must agree).
func adminPutOIDCClient(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.OIDCClientRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventOIDCClientSaved, err, "")
	}
	id := r.PathValue("id")
	if req.ID != "" && req.ID != id {
		return svc.Refused(who, admin.EventOIDCClientSaved, admin.BadRequest(errors.New("client_id in the body differs from the path")), "")
	}
	req.ID = id
	c, err := svc.PutOIDCClient(r.Context(), who, req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, c)
}

func adminDeleteOIDCClient(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	if err := svc.DeleteOIDCClient(r.Context(), who, r.PathValue("id")); err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("id")})
}

func adminCreateUtility(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.NewUtilityRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventUtilityCreated, err, "")
	}
	acct, err := svc.CreateUtility(r.Context(), who, req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, acct)
}

func adminRenewUtility(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.RenewUtilityRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventUtilityRenewed, err, r.PathValue("username"))
	}
	acct, err := svc.RenewUtility(r.Context(), who, r.PathValue("username"), req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, acct)
}

func adminListNPE(svc *admin.Service, _ admin.Actor, w http.ResponseWriter, r *http.Request) error {
	certs, err := svc.NPECerts(r.Context(), r.PathValue("username"))
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, certs)
}

func adminRegisterNPE(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.NPERequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventNPERegistered, err, r.PathValue("username"))
	}
	certs, err := svc.RegisterNPE(r.Context(), who, r.PathValue("username"), req)
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusCreated, certs)
}

func adminUnregisterNPE(svc *admin.Service, who admin.Actor, w http.ResponseWriter, r *http.Request) error {
	var req admin.NPERequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return svc.Refused(who, admin.EventNPEUnregistered, err, r.PathValue("username"))
	}
	if err := svc.UnregisterNPE(r.Context(), who, r.PathValue("username"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mailTestRequest is the body of POST /cacgate/mail/test.
type mailTestRequest struct {
	To string `json:"to"`
}

// adminMailTest sends a test message through the running config's relay
// at once (not through the outbox), so the answer says whether the relay
// took it.
func adminMailTest(app *App, w http.ResponseWriter, r *http.Request) error {
	var req mailTestRequest
	if err := admin.DecodeJSON(w, r, &req); err != nil {
		return apiError(w, r, err)
	}
	if err := app.sendTestMail(r.Context(), req.To); err != nil {
		app.audit.Write("mail.test", audit.Failure, zap.String("to", admin.Clip(req.To, 254)), zap.String("admin_source", r.RemoteAddr), zap.Error(err))
		return caddy.APIError{HTTPStatus: http.StatusBadGateway, Err: err}
	}
	app.audit.Write("mail.test", audit.Success, zap.String("to", req.To), zap.String("admin_source", r.RemoteAddr))
	return writeAdminJSON(w, http.StatusOK, map[string]string{"status": "sent", "to": req.To})
}
