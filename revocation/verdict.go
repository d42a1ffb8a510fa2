package revocation

import (
	"strconv"
	"time"
)

// Status is the revocation status of a certificate.
type Status int

const (
	StatusGood Status = iota
	StatusRevoked
	// StatusUnavailable means no trustworthy status could be had and the
	// checker fails closed: the certificate must be refused.
	StatusUnavailable
)

func (s Status) String() string {
	switch s {
	case StatusGood:
		return "good"
	case StatusRevoked:
		return "revoked"
	case StatusUnavailable:
		return "unavailable"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Sources named in Verdict.Source.
const (
	SourceOCSP = "ocsp"
	SourceCRL  = "crl"
	SourceOff  = "off"
)

// Verdict is the outcome of a revocation check.
type Verdict struct {
	Status Status
	// Source is SourceOCSP, SourceCRL or SourceOff; "" when no source
	// answered.
	Source string
	// RevokedAt and Reason (an RFC 5280 CRLReason code) describe a
	// revocation.
	RevokedAt time.Time
	Reason    int
	// ValidUntil is when the verdict stops being reusable: nextUpdate of
	// the response or CRL it came from, at most MaxCacheAge ahead, and a
	// short retry interval for unavailable and fail-open verdicts.
	ValidUntil time.Time
	// FailedOpen is set when no status could be had and Config.FailOpen made
	// the verdict good.
	FailedOpen bool
	// Err is why no status could be had; set for StatusUnavailable and for
	// fail-open verdicts.
	Err error
}

// CRLReason codes (RFC 5280 section 5.3.1) that the checker treats
// specially.
const (
	reasonUnspecified     = 0
	reasonCertificateHold = 6
	reasonRemoveFromCRL   = 8
)

// retryInterval is how long a failure is remembered: long enough that a
// responder that is down is asked about a certificate twice a minute rather
// than on every request, short enough that a recovered responder, or a
// fail-closed user, waits no more than half a minute.
const retryInterval = 30 * time.Second

// noNextUpdateCacheAge bounds reuse of an OCSP response without nextUpdate.
// Such a response says "newer information is available at any time" (RFC
// 6960 section 4.2.2.1), so keeping it for MaxCacheAge would ignore the
// responder; asking again on every request would hammer it. Five minutes
// bounds how long a revocation goes unnoticed to what an OCSP responder's own
// caching typically adds. With the clock skew it also bounds how old such a
// response may be when received (noNextUpdateMaxAge), so a captured one
// cannot be replayed later.
const noNextUpdateCacheAge = 5 * time.Minute
