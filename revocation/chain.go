package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// ChainVerdict is the revocation verdict on a certificate chain: the
// card's own, or, when the card is good and Config.Intermediates is on, the
// first CA certificate's that is not good.
type ChainVerdict struct {
	Verdict
	// CA is the CA certificate the verdict is about; nil when it is the
	// card's own. On a good verdict that FailedOpen marks, it is the CA
	// whose status could not be had (nil when the card's could not).
	CA *x509.Certificate
}

// errUnknownIssuer is the verdict's error for a chain of the card alone.
var errUnknownIssuer = errors.New("the issuing CA is unknown")

// CheckChain returns the revocation verdict on chain, a verified chain:
// the card first, the trust anchor last. The card (chain[0]) is checked
// against its issuer (chain[1]) and, with Config.Intermediates on, every CA
// certificate below the trust anchor (trusted by configuration, never
// checked) against its own issuer. A chain of the card alone has no known
// issuer: the verdict is StatusUnavailable, whatever Config.FailOpen says.
//
// A good verdict is reusable until the earliest ValidUntil of the verdicts
// it combines, and names the first CA certificate that failed open, if the
// card did not. With ModeOff the verdict is good, from SourceOff, with a
// zero ValidUntil (no expiry), and nothing is looked up.
//
// Every certificate's verdict is cached by its fingerprint until its
// ValidUntil (at most MaxCacheAge; CacheSize certificates at most), so a
// CA's status is checked once for all the cards it issued. Concurrent first
// checks of one certificate share one check, which runs detached from ctx's
// cancellation: a client that gives up cannot leave an "unavailable"
// verdict behind for everyone else; the checker's own timeouts bound it.
func (c *Checker) CheckChain(ctx context.Context, chain []*x509.Certificate) ChainVerdict {
	if c.cfg.Mode == ModeOff {
		return ChainVerdict{Verdict: Verdict{Status: StatusGood, Source: SourceOff}}
	}
	if len(chain) == 0 || chain[0] == nil {
		// A caller bug, not an outage: never failed open, never cached.
		return ChainVerdict{Verdict: Verdict{Status: StatusUnavailable, Err: errors.New("revocation: no certificate to check"), ValidUntil: c.cfg.Now().Add(retryInterval)}}
	}
	var issuer *x509.Certificate
	if len(chain) > 1 {
		issuer = chain[1]
	}
	v := ChainVerdict{Verdict: c.cachedCheck(ctx, chain[0], issuer)}
	if v.Status != StatusGood || !c.cfg.Intermediates {
		return v
	}
	for i := 1; i < len(chain)-1; i++ {
		cv := c.cachedCheck(ctx, chain[i], chain[i+1])
		if cv.Status != StatusGood {
			return ChainVerdict{Verdict: cv, CA: chain[i]}
		}
		if !cv.ValidUntil.IsZero() && cv.ValidUntil.Before(v.ValidUntil) {
			v.ValidUntil = cv.ValidUntil
		}
		if cv.FailedOpen && !v.FailedOpen {
			v.FailedOpen, v.Err, v.CA = true, cv.Err, chain[i]
		}
	}
	return v
}

// cachedCheck returns cert's verdict from the verdict cache while it is
// valid, else checks it (once at a time per certificate) and caches the
// outcome. A nil issuer is an unknown one: unavailable for retryInterval.
// Config.OnCheck hears of every real check.
func (c *Checker) cachedCheck(ctx context.Context, cert, issuer *x509.Certificate) Verdict {
	now := c.cfg.Now()
	fingerprint := cacid.Fingerprint(cert.Raw)
	if v, ok := c.verdicts.Get(fingerprint); ok && now.Before(v.ValidUntil) {
		return v
	}
	res, _, _ := c.verdictFlight.Do(fingerprint, func() (any, error) {
		var v Verdict
		if issuer == nil {
			v = Verdict{Status: StatusUnavailable, Err: errUnknownIssuer, ValidUntil: now.Add(retryInterval)}
		} else {
			start := time.Now()
			v = c.Check(context.WithoutCancel(ctx), cert, issuer)
			if c.cfg.OnCheck != nil {
				c.cfg.OnCheck(v, time.Since(start))
			}
		}
		if v.ValidUntil.IsZero() {
			v.ValidUntil = now.Add(retryInterval)
		}
		// Kept no longer than MaxCacheAge, whatever the source promised.
		kept := v
		if maxUntil := now.Add(c.cfg.MaxCacheAge); kept.ValidUntil.After(maxUntil) {
			kept.ValidUntil = maxUntil
		}
		c.verdicts.Add(fingerprint, kept)
		return v, nil
	})
	return res.(Verdict)
}
