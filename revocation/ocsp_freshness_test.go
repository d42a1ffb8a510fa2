package revocation

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// A response without nextUpdate says newer information is always available
// (RFC 6960 section 4.2.2.1); one signed long ago is a replayed capture, not
// current information, and nonces are off by default.
func TestOCSPRefusesOldResponseWithoutNextUpdate(t *testing.T) {
	for _, tc := range []struct {
		name       string
		thisUpdate time.Duration
		wantGood   bool
	}{
		{"a year old", -365 * 24 * time.Hour, false},
		{"just past the bound", -(noNextUpdateCacheAge + defaultClockSkew + time.Minute), false},
		{"fresh", -time.Minute, true},
		{"within the bound", -(noNextUpdateCacheAge + defaultClockSkew - time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOCSPFixture(t)
			f.responder.configure(func(r *testResponder) { r.thisUpdate, r.nextUpdate = tc.thisUpdate, 0 })
			leaf, issuer := f.card(t, ocsp.Good)
			v := f.checker(t, Config{}).Check(context.Background(), leaf, issuer)
			if tc.wantGood {
				wantStatus(t, v, StatusGood, SourceOCSP)
				return
			}
			wantStatus(t, v, StatusUnavailable, "")
			if v.Err == nil || !strings.Contains(v.Err.Error(), "too old") {
				t.Errorf("Err = %v, want the response refused as too old", v.Err)
			}
		})
	}

	// Refused like any unusable response: the CRL is asked next, and
	// fail_open still applies when nothing else answers.
	f := newOCSPFixture(t)
	f.responder.configure(func(r *testResponder) { r.thisUpdate, r.nextUpdate = -365*24*time.Hour, 0 })
	leaf, issuer := f.card(t, ocsp.Good)
	v := f.checker(t, Config{FailOpen: true}).Check(context.Background(), leaf, issuer)
	if v.Status != StatusGood || !v.FailedOpen {
		t.Errorf("fail open: %+v", v)
	}
}
