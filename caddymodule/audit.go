package caddymodule

import (
	"net/http"
	"os"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
)

// auditor writes one structured log entry per security event to the
// "cacgate.audit" logger, which ops can route to its own sink with Caddy's
// log configuration. It never records SSNs, passwords, PINs or answers:
// callers pass only identifiers.
type auditor struct {
	log  *zap.Logger
	node string
}

func newAuditor(log *zap.Logger) *auditor {
	node, _ := os.Hostname()
	return &auditor{log: log, node: node}
}

// Outcomes of audited events.
const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"
)

// request records an event caused by an HTTP request.
func (a *auditor) request(r *http.Request, event, outcome string, fields ...zap.Field) {
	fields = append(fields,
		zap.String("event", event),
		zap.String("outcome", outcome),
		zap.String("source_ip", clientIP(r)),
		zap.String("node", a.node),
	)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if id, ok := repl.GetString("http.request.uuid"); ok {
			fields = append(fields, zap.String("request_id", id))
		}
	}
	a.log.Info(event, fields...)
}

// cardFields identifies a card holder without any secret.
func cardFields(id *cacid.Identity) []zap.Field {
	if id == nil {
		return nil
	}
	return []zap.Field{
		zap.String("edipi", id.EDIPI),
		zap.String("cert_subject", id.Subject),
		zap.String("cert_serial", id.Serial),
		zap.String("cert_issuer", id.Issuer),
		zap.String("cert_sha256", id.FingerprintHex),
	}
}

// clientIP is the client address as Caddy determined it (honouring the
// server's trusted_proxies), falling back to the connection's peer.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}
