package caddymodule

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/cacgate/cacgate/internal/gateway"
)

// Who answers a refused request (the handler's "refusals" option).
const (
	// refusalsPage: the gateway's own pages (JSON for API clients).
	refusalsPage = "page"
	// refusalsHandleErrors: an error for the server's handle_errors
	// routes, so operators can restyle refusals the Caddy way.
	refusalsHandleErrors = "handle_errors"
)

// Placeholders set on a refusal handed to handle_errors, next to Caddy's
// own {http.error.status_code} and {http.error.message} (the code).
const (
	placeholderRefusalCode   = "cacgate.refusal.code"
	placeholderRefusalTitle  = "cacgate.refusal.title"
	placeholderRefusalDetail = "cacgate.refusal.detail"
	placeholderRefusalRetry  = "cacgate.refusal.retry_after"
)

// refusalError is a refusal as a Caddy handler error: the status, the
// problem code as the error's message, and the page's words in the
// {cacgate.refusal.*} placeholders. The refusal has been audited already.
func refusalError(r *http.Request, ref gateway.Refusal) error {
	p := ref.Problem
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(placeholderRefusalCode, p.Code)
		repl.Set(placeholderRefusalTitle, p.Title)
		repl.Set(placeholderRefusalDetail, p.Detail)
		repl.Set(placeholderRefusalRetry, ref.RetryAfter)
	}
	return caddyhttp.Error(p.Status, errors.New(p.Code))
}
