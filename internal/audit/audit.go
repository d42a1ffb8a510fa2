// Package audit writes the gateway's security events: one structured log
// entry per event (who, what, when, outcome, where from), whatever part of
// the gateway it comes from (request gate, self-service pages, admin API,
// CLI, TLS verifier), so one log route ships the whole audit trail.
//
// It never records SSNs, passwords, PINs or security answers: callers pass
// only identifiers (Card, CA and the names they add).
package audit

import (
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
)

// Outcomes of audited events.
const (
	Success = "success"
	Failure = "failure"
)

// Log writes audit events to one logger.
type Log struct {
	log  *zap.Logger
	node string

	// Source tells where a request came from: the client address as the
	// server determined it (behind trusted proxies, the forwarded one) and
	// the server's request ID ("" if none). Nil: the connection's peer.
	Source func(r *http.Request) (clientIP, requestID string)

	// Counted is called once per event written (for a metric); may be nil.
	Counted func(event, outcome string)

	// Tap, if set, gets a copy of every entry written, with all its
	// fields (those Write adds included): the security-event history in
	// the account database keeps them. It runs on the caller's goroutine,
	// often a request's, so it must not block: see package history.
	Tap func(event, outcome string, at time.Time, fields []zap.Field)

	repeats atomic.Pointer[collapser] // see CollapseRepeats
}

// New returns a Log writing to log, naming node in every entry (default:
// the host name).
func New(log *zap.Logger, node string) *Log {
	if node == "" {
		node, _ = os.Hostname()
	}
	return &Log{log: log, node: node}
}

// Nop is a Log that writes nothing, for tests and tools without a log.
func Nop() *Log { return New(zap.NewNop(), "") }

// Write emits one event with the fields every event carries: its name,
// outcome, the node, and the time in UTC (the log's own timestamp follows
// the encoder's time_format and zone; assessors want one unambiguous form).
func (l *Log) Write(event, outcome string, fields ...zap.Field) {
	now := time.Now().UTC()
	fields = append(fields,
		zap.String("event", event),
		zap.String("outcome", outcome),
		zap.String("time", now.Format(time.RFC3339Nano)),
		zap.String("node", l.node),
	)
	l.log.Info(event, fields...)
	if l.Tap != nil {
		l.Tap(event, outcome, now, fields)
	}
	if l.Counted != nil {
		l.Counted(event, outcome)
	}
}

// Request records an event caused by an HTTP request: with the source
// address, the site as the client named it and the path, without the query
// string (which may carry anything the application puts there).
func (l *Log) Request(r *http.Request, event, outcome string, fields ...zap.Field) {
	ip, id := r.RemoteAddr, ""
	if l.Source != nil {
		ip, id = l.Source(r)
	}
	fields = append(fields, zap.String("source_ip", ip), zap.String("host", r.Host), zap.String("path", r.URL.Path))
	if id != "" {
		fields = append(fields, zap.String("request_id", id))
	}
	l.Write(event, outcome, fields...)
}

// ClientIP is the request's source address as the Log's Source tells it.
func (l *Log) ClientIP(r *http.Request) string {
	if l.Source == nil {
		return r.RemoteAddr
	}
	ip, _ := l.Source(r)
	return ip
}

// AccountEvent reports whether event belongs to self-enrollment and account
// self-service (counted apart in the enrollments metric).
func AccountEvent(event string) bool {
	for _, p := range [...]string{"enroll.", "card.", "password.", "answers.", "signin.", "account."} {
		if strings.HasPrefix(event, p) {
			return true
		}
	}
	return false
}

// MaxText bounds a text field that a client chose (certificate names,
// paths): an audit line per refused request must not carry kilobytes an
// attacker picked.
const MaxText = 256

// Text is a client-chosen text field, cut to MaxText bytes (at a UTF-8
// boundary) and marked with a trailing "…[truncated]" when cut.
func Text(key, val string) zap.Field {
	return zap.String(key, clip(val))
}

func clip(s string) string {
	if len(s) <= MaxText {
		return s
	}
	cut := MaxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…[truncated]"
}

// Card identifies a card holder without any secret.
func Card(id *cacid.Identity) []zap.Field {
	if id == nil {
		return nil
	}
	// With room for what callers add and Request and Write append, so
	// that an entry's fields are one allocation, not three.
	fields := append(make([]zap.Field, 0, cardFields+requestFields+writeFields+4),
		zap.String("edipi", id.EDIPI),
		Text("cert_subject", id.Subject),
		Text("cert_serial", id.Serial),
		Text("cert_issuer", id.Issuer),
		zap.String("cert_sha256", id.FingerprintHex),
	)
	if id.Kind != "" && id.Kind != cacid.KindCAC {
		// A non-DoD credential has no EDIPI: what names its holder is
		// its kind and key (the card UUID, the ECA key).
		fields = append(fields, zap.String("credential", string(id.Kind)), Text("credential_key", id.Key))
	}
	return fields
}

// How many fields Card makes and Request and Write add at most.
const (
	cardFields    = 5
	requestFields = 4
	writeFields   = 4
)

// CA identifies a CA certificate of a card's chain whose status decided a
// verdict.
func CA(ca *x509.Certificate) []zap.Field {
	return []zap.Field{
		Text("ca_subject", cacid.DistinguishedName(ca.RawSubject, ca.Subject)),
		Text("ca_serial", ca.SerialNumber.Text(16)),
		zap.String("ca_sha256", cacid.Fingerprint(ca.Raw)),
	}
}
