package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// auditLogName is the logger every audit event is written to, whatever
// part of the gateway (handler, enrollment, admin API, CLI, TLS verifier)
// it comes from, so that one `include` routes the whole audit trail to its
// own sink with Caddy's log configuration.
const auditLogName = "http.handlers.cacgate.audit"

// auditLog names the audit logger: ctx.Logger(auditLog{}) builds a logger
// that honours the config's logs (include/exclude, outputs, encoders) the
// way a module's own logger does. It is not a registered module.
type auditLog struct{}

func (auditLog) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: auditLogName, New: func() caddy.Module { return auditLog{} }}
}

// requestSource tells the audit log where a request came from: the client
// address as Caddy determined it (honouring the server's trusted_proxies),
// falling back to the connection's peer, and Caddy's request ID.
func requestSource(r *http.Request) (ip, requestID string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		requestID, _ = repl.GetString("http.request.uuid")
	}
	return clientIP(r), requestID
}

// clientIP is the client address as Caddy determined it (honouring the
// server's trusted_proxies), falling back to the connection's peer.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}
