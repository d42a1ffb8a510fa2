package revocation

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ocsp"
)

const (
	// maxOCSPResponseBytes caps a response body. Real responses are a few
	// kilobytes; anything near this is not an OCSP response.
	maxOCSPResponseBytes = 1 << 20
	// maxOCSPURLs bounds the responders tried for one certificate, so a
	// certificate naming many cannot stretch a check to many timeouts.
	maxOCSPURLs = 3
	// maxConcurrentOCSP bounds requests in flight across certificates, so a
	// burst of first sign-ins (after a restart, say) does not open hundreds
	// of connections to the responder at once.
	maxConcurrentOCSP = 32
	// warnEvery throttles the warning logged for a failing responder; the
	// other failures go to the debug log.
	warnEvery = time.Minute
)

var (
	errNoOCSPResponder = errors.New("ocsp: the certificate names no http(s) OCSP responder and none is configured")
	errOCSPUnknown     = errors.New("the responder does not know the certificate")
)

// checkOCSP answers from the cache, or asks the responder, sharing the
// request with concurrent checks of the same certificate. It returns an
// error when OCSP gives no verdict.
func (c *Checker) checkOCSP(ctx context.Context, leaf *x509.Certificate, iss *issuer, key string, now time.Time) (Verdict, error) {
	if cached, ok := c.ocspVerdicts.Get(key); ok {
		if v := cached.(Verdict); now.Before(v.ValidUntil) {
			return v, nil
		}
	}
	if cached, ok := c.ocspFailures.Get(key); ok {
		return Verdict{}, cached.(error)
	}
	urls := c.ocspURLs(leaf)
	if len(urls) == 0 {
		return Verdict{}, errNoOCSPResponder
	}
	// The shared request must not die with the first caller's context, so
	// it runs detached, bounded by OCSPTimeout; each caller waits on its
	// own context.
	result := c.ocspFlight.DoChan(key, func() (any, error) {
		return c.queryOCSP(leaf, iss.cert, key, urls)
	})
	select {
	case r := <-result:
		if r.Err != nil {
			return Verdict{}, r.Err
		}
		return r.Val.(Verdict), nil
	case <-ctx.Done():
		return Verdict{}, fmt.Errorf("ocsp: %w", ctx.Err())
	}
}

// ocspURLs returns the configured responder, or the certificate's own.
func (c *Checker) ocspURLs(leaf *x509.Certificate) []string {
	if c.cfg.OCSPResponder != "" {
		return []string{c.cfg.OCSPResponder}
	}
	var urls []string
	for _, u := range leaf.OCSPServer {
		if len(urls) == maxOCSPURLs {
			break
		}
		if isHTTPURL(u) {
			urls = append(urls, u)
		}
	}
	return urls
}

// queryOCSP asks each responder in turn until one gives a verdict, and
// caches the outcome: the verdict until it expires, a failure for
// retryInterval.
func (c *Checker) queryOCSP(leaf, issuerCert *x509.Certificate, key string, urls []string) (Verdict, error) {
	var errs []error
	for _, url := range urls {
		v, err := c.askResponder(url, leaf, issuerCert)
		if err == nil {
			if ttl := v.ValidUntil.Sub(c.cfg.Now()); ttl > 0 {
				c.ocspVerdicts.Set(key, v, ttl)
			}
			return v, nil
		}
		err = fmt.Errorf("ocsp %s: %w", url, err)
		c.logOCSPFailure(url, leaf, err)
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	c.ocspFailures.Set(key, err, retryInterval)
	return Verdict{}, err
}

// askResponder makes one OCSP request within OCSPTimeout.
func (c *Checker) askResponder(url string, leaf, issuerCert *x509.Certificate) (Verdict, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.OCSPTimeout)
	defer cancel()
	select {
	case c.ocspSlots <- struct{}{}:
		defer func() { <-c.ocspSlots }()
	case <-ctx.Done():
		return Verdict{}, errors.New("timed out waiting for a free request slot")
	}

	var nonce []byte
	if c.cfg.OCSPNonce {
		nonce = make([]byte, nonceLength)
		if _, err := rand.Read(nonce); err != nil {
			return Verdict{}, err
		}
	}
	request, err := buildOCSPRequest(leaf, issuerCert, nonce)
	if err != nil {
		return Verdict{}, fmt.Errorf("building request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(request))
	if err != nil {
		return Verdict{}, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return Verdict{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Verdict{}, fmt.Errorf("HTTP status %s", resp.Status)
	}
	body, err := readAllLimited(resp.Body, resp.ContentLength, maxOCSPResponseBytes)
	if err != nil {
		return Verdict{}, fmt.Errorf("reading response: %w", err)
	}

	now := c.cfg.Now()
	parsed, err := validateOCSPResponse(body, leaf, issuerCert, nonce, now, c.cfg.ClockSkew)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Source: SourceOCSP, ValidUntil: c.reuseUntil(now, parsed.NextUpdate, noNextUpdateCacheAge)}
	switch parsed.Status {
	case ocsp.Good:
		v.Status = StatusGood
	case ocsp.Revoked:
		v.Status, v.RevokedAt, v.Reason = StatusRevoked, parsed.RevokedAt, parsed.RevocationReason
	default:
		return Verdict{}, errOCSPUnknown
	}
	return v, nil
}

// reuseUntil is how long a verdict based on information valid until
// nextUpdate may be reused: until nextUpdate, at most MaxCacheAge, and at
// most noNextUpdate when there is no nextUpdate. Information accepted only
// thanks to the clock-skew allowance is reused until that allowance runs
// out, at most retryInterval.
func (c *Checker) reuseUntil(now, nextUpdate time.Time, noNextUpdate time.Duration) time.Time {
	until := now.Add(c.cfg.MaxCacheAge)
	switch {
	case nextUpdate.IsZero():
		return minTime(until, now.Add(noNextUpdate))
	case nextUpdate.After(now):
		return minTime(until, nextUpdate)
	}
	return minTime(nextUpdate.Add(c.cfg.ClockSkew), now.Add(retryInterval))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// failureLog throttles warnings per responder.
type failureLog struct {
	mu       sync.Mutex
	lastWarn map[string]time.Time
}

// logOCSPFailure warns about a responder at most once per warnEvery; each
// certificate's failure is also logged at debug level.
func (c *Checker) logOCSPFailure(url string, leaf *x509.Certificate, err error) {
	now := time.Now()
	c.ocspFailureLog.mu.Lock()
	warn := now.Sub(c.ocspFailureLog.lastWarn[url]) >= warnEvery
	if warn {
		c.ocspFailureLog.lastWarn[url] = now
	}
	c.ocspFailureLog.mu.Unlock()
	fields := []zap.Field{zap.String("responder", url), zap.String("serial", leaf.SerialNumber.Text(16)), zap.Error(err)}
	if warn {
		c.logger.Warn("OCSP check failed (further failures of this responder are logged at debug level for a minute)", fields...)
		return
	}
	c.logger.Debug("OCSP check failed", fields...)
}
