package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/patrickmn/go-cache"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// Checker checks certificates for revocation. It is safe for concurrent
// use. Build it with New, then call Start to load CRLs and keep them fresh;
// Check and CheckChain work before Start, but only with OCSP.
type Checker struct {
	cfg    Config
	logger *zap.Logger
	order  []source

	issuers *issuerRegistry
	crls    *crlStore

	// verdicts is CheckChain's cache: Verdict by cacid.Fingerprint of the
	// certificate, nil with ModeOff. See the package documentation for
	// why each cache is the kind it is.
	verdicts      *lru.Cache[string, Verdict]
	verdictFlight singleflight.Group

	ocspVerdicts   *cache.Cache // Verdict by certificate key (issuer ID + serial)
	ocspFailures   *cache.Cache // error by certificate key
	ocspFlight     singleflight.Group
	ocspSlots      chan struct{}
	ocspFailureLog failureLog

	started atomic.Bool
	// stopped is closed when the refresh goroutine has exited.
	stopped chan struct{}
}

// source is a revocation information source, in Mode order.
type source int

const (
	sourceOCSP source = iota
	sourceCRL
)

// New validates cfg and returns a Checker. It loads nothing yet.
func New(cfg Config) (*Checker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("revocation: %w", err)
	}
	c := &Checker{
		cfg:          cfg,
		logger:       cfg.Logger,
		issuers:      newIssuerRegistry(),
		crls:         newCRLStore(cfg.Logger),
		ocspVerdicts: cache.New(cache.NoExpiration, time.Minute),
		ocspFailures: cache.New(cache.NoExpiration, time.Minute),
		ocspSlots:    make(chan struct{}, maxConcurrentOCSP),
		stopped:      make(chan struct{}),
	}
	c.ocspFailureLog.lastWarn = make(map[string]time.Time)
	if cfg.Mode != ModeOff {
		// Entries expire by their ValidUntil, read on lookup: no timer
		// (golang-lru's expirable LRU starts a goroutine that would
		// outlive the config).
		if c.verdicts, err = lru.New[string, Verdict](cfg.CacheSize); err != nil {
			return nil, err
		}
	}
	switch cfg.Mode {
	case ModeOCSPThenCRL:
		c.order = []source{sourceOCSP, sourceCRL}
	case ModeCRLThenOCSP:
		c.order = []source{sourceCRL, sourceOCSP}
	case ModeOCSP:
		c.order = []source{sourceOCSP}
	case ModeCRL:
		c.order = []source{sourceCRL}
	}
	for _, cert := range cfg.CRLIssuers {
		c.issuers.lookup(cert)
	}
	return c, nil
}

// usesCRLs reports whether the mode consults CRLs at all.
func (c *Checker) usesCRLs() bool {
	return c.cfg.Mode != ModeOCSP && c.cfg.Mode != ModeOff
}

// Start loads the CRL files, then keeps CRLs fresh in the background until
// ctx is done: it polls the files every RefreshInterval and fetches
// distribution points before their CRLs go stale. Start may be called once.
//
// A configured path that does not exist fails Start: it is a mistake in
// the configuration. A CRL file that is unreadable, malformed, unsupported
// or badly signed does not: one bad download from a CA must not keep the
// gateway (and every other CA's cards) down. It is logged, reported to
// OnCRLError and in Stats, and no CRL of that file is used, so its CA's
// cards get no CRL status (refused failing closed, admitted and audited
// failing open) until the file is replaced by a good CRL.
func (c *Checker) Start(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("revocation: Start called twice")
	}
	if !c.usesCRLs() {
		if len(c.cfg.CRLFiles) > 0 {
			c.logger.Info("CRL files ignored: the revocation mode does not use CRLs", zap.String("mode", string(c.cfg.Mode)))
		}
		close(c.stopped)
		return nil
	}
	files, err := listCRLFiles(c.cfg.CRLFiles)
	if err != nil {
		close(c.stopped)
		return fmt.Errorf("revocation: %w", err)
	}
	for _, path := range files {
		if err := c.loadFile(path); err != nil {
			c.logger.Error("CRL file refused at start-up: its CRLs are not used until it is replaced by a good one", zap.Error(err))
		}
	}
	go c.refreshLoop(ctx)
	return nil
}

// Check returns the revocation status of leaf. issuer must be the verified
// issuing CA of leaf (chain[1] of a verified chain): OCSP responses and CRLs
// are only trusted when signed by it. Check does no parsing and, with a
// cached answer, no I/O; otherwise it waits at most OCSPTimeout (and ctx)
// for a responder.
func (c *Checker) Check(ctx context.Context, leaf, issuer *x509.Certificate) Verdict {
	now := c.cfg.Now()
	if c.cfg.Mode == ModeOff {
		return Verdict{Status: StatusGood, Source: SourceOff, ValidUntil: now.Add(c.cfg.MaxCacheAge)}
	}
	if err := checkArguments(leaf, issuer); err != nil {
		// A caller bug, not an outage: never failed open.
		return Verdict{Status: StatusUnavailable, Err: err, ValidUntil: now.Add(retryInterval)}
	}
	iss, added := c.issuers.lookup(issuer)
	if added {
		c.crls.issuerLearned(issuer.RawSubject)
	}
	var keyBuf [64]byte
	key := appendSerial(append(keyBuf[:0], iss.id[:]...), leaf.SerialNumber)
	serial := key[len(iss.id):]

	var errs [2]error
	for i, src := range c.order {
		var v Verdict
		var err error
		switch src {
		case sourceOCSP:
			v, err = c.checkOCSP(ctx, leaf, iss, string(key), now)
		case sourceCRL:
			v, err = c.checkCRL(leaf, iss, serial, now)
		}
		if err == nil {
			return v
		}
		errs[i] = err
	}
	return c.noStatus(errors.Join(errs[:len(c.order)]...), now)
}

func checkArguments(leaf, issuer *x509.Certificate) error {
	switch {
	case leaf == nil || leaf.SerialNumber == nil:
		return errors.New("revocation: no certificate to check")
	case issuer == nil:
		return errors.New("revocation: no issuer certificate: revocation cannot be checked without the verified chain")
	case !bytes.Equal(leaf.RawIssuer, issuer.RawSubject):
		return errors.New("revocation: the issuer certificate passed is not the certificate's issuer")
	}
	return nil
}

// noStatus is the verdict when no source answered: unavailable, or good
// when the configuration fails open.
func (c *Checker) noStatus(err error, now time.Time) Verdict {
	v := Verdict{Status: StatusUnavailable, Err: err, ValidUntil: now.Add(retryInterval)}
	if c.cfg.FailOpen {
		v.Status, v.FailedOpen = StatusGood, true
	}
	return v
}

// errNoCRL: no CRL covers the certificate, or its distribution point has
// not been fetched yet.
var errNoCRL = errors.New("crl: no CRL of the certificate's CA is loaded (yet)")

// checkCRL looks the serial up in the CRL of the certificate's CA. It never
// parses or fetches: a missing distribution point is queued for the
// refresh goroutine, and the check goes on without it.
func (c *Checker) checkCRL(leaf *x509.Certificate, iss *issuer, serial []byte, now time.Time) (Verdict, error) {
	view := c.crls.view.Load()
	if c.cfg.FetchCRLs {
		c.crls.requestFetches(view, leaf.CRLDistributionPoints, iss, now)
	}
	// RFC 5280 section 6.3.3 (b)(2): whether a CRL limited to user or to
	// CA certificates applies depends on the basic constraints' cA flag.
	isCA := leaf.BasicConstraintsValid && leaf.IsCA
	index := view.lookup(iss.id, leaf.CRLDistributionPoints, isCA)
	if index == nil {
		return Verdict{}, errNoCRL
	}
	stale := index.stale(now, c.cfg.ClockSkew)
	if i, found := index.find(serial); found && (!stale || index.reasons[i] != reasonCertificateHold) {
		v := Verdict{
			Status:     StatusRevoked,
			Source:     SourceCRL,
			RevokedAt:  time.Unix(index.revokedAt[i], 0).UTC(),
			Reason:     int(index.reasons[i]),
			ValidUntil: c.reuseUntil(now, index.nextUpdate, 0),
		}
		if stale { // still revoked, but do not vouch for a stale CRL for long
			v.ValidUntil = now.Add(retryInterval)
		}
		return v, nil
	}
	if stale {
		return Verdict{}, fmt.Errorf("crl: the CRL of %s from %s is stale (nextUpdate %s) and has not been refreshed",
			index.issuerName, index.source, index.nextUpdate.UTC().Format(time.RFC3339))
	}
	return Verdict{Status: StatusGood, Source: SourceCRL, ValidUntil: c.reuseUntil(now, index.nextUpdate, 0)}, nil
}
