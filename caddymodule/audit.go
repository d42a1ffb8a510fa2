package caddymodule

import (
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
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

// auditor writes one structured log entry per security event to the
// http.handlers.cacgate.audit logger. It never records SSNs, passwords,
// PINs or answers: callers pass only identifiers.
type auditor struct {
	log     *zap.Logger
	node    string
	metrics *metrics
}

func newAuditor(log *zap.Logger, m *metrics) *auditor {
	node, _ := os.Hostname()
	return &auditor{log: log, node: node, metrics: m}
}

// write emits one event with the fields every event carries: its name,
// outcome, the node, and the time in UTC (the log's own timestamp follows
// the encoder's time_format and zone; assessors want one unambiguous
// form).
func (a *auditor) write(event, outcome string, fields []zap.Field) {
	fields = append(fields,
		zap.String("event", event),
		zap.String("outcome", outcome),
		zap.String("time", time.Now().UTC().Format(time.RFC3339Nano)),
		zap.String("node", a.node),
	)
	a.log.Info(event, fields...)
	if a.metrics != nil {
		a.metrics.audits.WithLabelValues(event, outcome).Inc()
		if accountEvent(event) {
			a.metrics.enrollments.WithLabelValues(event, outcome).Inc()
		}
	}
}

// accountEvent reports whether event belongs to self-enrollment and account
// self-service, which the enrollments metric counts.
func accountEvent(event string) bool {
	for _, p := range [...]string{"enroll.", "card.", "password.", "answers.", "signin.", "account."} {
		if strings.HasPrefix(event, p) {
			return true
		}
	}
	return false
}

// Outcomes of audited events.
const (
	outcomeSuccess = "success"
	outcomeFailure = "failure"
)

// request records an event caused by an HTTP request.
func (a *auditor) request(r *http.Request, event, outcome string, fields ...zap.Field) {
	// Where: the site as the client named it and the path, without the
	// query string (which may carry anything the application puts there).
	fields = append(fields, zap.String("source_ip", clientIP(r)), zap.String("host", r.Host), zap.String("path", r.URL.Path))
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if id, ok := repl.GetString("http.request.uuid"); ok {
			fields = append(fields, zap.String("request_id", id))
		}
	}
	a.write(event, outcome, fields)
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

// caFields identifies a CA certificate of a card's chain whose status
// decided a verdict.
func caFields(ca *x509.Certificate) []zap.Field {
	return []zap.Field{
		zap.String("ca_subject", cacid.DistinguishedName(ca.RawSubject, ca.Subject)),
		zap.String("ca_serial", ca.SerialNumber.Text(16)),
		zap.String("ca_sha256", cacid.Fingerprint(ca.Raw)),
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
