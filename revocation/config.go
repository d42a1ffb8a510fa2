package revocation

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Mode selects the revocation sources and the order they are asked in.
type Mode string

const (
	ModeOCSPThenCRL Mode = "ocsp_then_crl" // default
	ModeCRLThenOCSP Mode = "crl_then_ocsp"
	ModeOCSP        Mode = "ocsp"
	ModeCRL         Mode = "crl"
	ModeOff         Mode = "off"
)

// Config configures a Checker. The zero value checks OCSP first, then CRLs,
// and fails closed.
type Config struct {
	// Mode is the order of sources; "" means ModeOCSPThenCRL.
	Mode Mode

	// FailOpen, when no source yields a status, reports the certificate good
	// with Verdict.FailedOpen set instead of StatusUnavailable.
	FailOpen bool

	// OCSPTimeout bounds each OCSP request; default 5s.
	OCSPTimeout time.Duration
	// CRLTimeout bounds each CRL download; default 30s.
	CRLTimeout time.Duration

	// OCSPResponder, when set, is the http(s) URL asked about every
	// certificate instead of the responders named in its AIA extension.
	OCSPResponder string
	// OCSPNonce sends a nonce and requires the response to echo it. Off by
	// default: many responders serve pre-signed responses (RFC 5019), which
	// cannot echo one.
	OCSPNonce bool

	// ClockSkew is the tolerance applied to thisUpdate and nextUpdate;
	// default 5m.
	ClockSkew time.Duration
	// MaxCacheAge bounds how long any verdict may be reused, however far
	// away nextUpdate is; default 1h, minimum 1m.
	MaxCacheAge time.Duration
	// CacheSize bounds the number of certificates whose verdict CheckChain
	// keeps (the least recently used go first); default 10000.
	CacheSize int

	// CRLFiles are CRL files (DER or PEM, any name) and directories, of
	// which every *.crl and *.pem file is read.
	CRLFiles []string
	// CRLIssuers are the CA certificates file CRLs are verified against. A
	// file CRL whose issuer is neither here nor learned from a checked chain
	// is set aside, with a logged reason, until a certificate of that CA is
	// checked.
	CRLIssuers []*x509.Certificate
	// FetchCRLs also downloads the CRLs named in certificates' CRL
	// distribution points (http and https only).
	FetchCRLs bool
	// RefreshInterval is how often CRL files are checked for changes;
	// default 1m.
	RefreshInterval time.Duration

	// Intermediates makes CheckChain also check every CA certificate
	// between the card and the trust anchor (DoD: the issuing DOD ID CA,
	// on the root's CRL), with the same sources, cache and failure policy
	// as the card.
	Intermediates bool
	// OnCheck, when set, is called after every check CheckChain makes (not
	// for verdicts it serves from its cache, nor for chains with no known
	// issuer) with the verdict and how long the check took: the hook for
	// metrics. It is called synchronously and must not block.
	OnCheck func(v Verdict, elapsed time.Duration)
	// OnCRLError, when set, is called each time a CRL file (fetched false)
	// or distribution point download (fetched true) is refused: unreadable,
	// malformed, not conforming, badly signed or older than the CRL in
	// use. The hook for metrics; called synchronously with the CRL store
	// locked, so it must not block or call the Checker.
	OnCRLError func(fetched bool)

	// HTTPClient makes OCSP and CRL requests; nil means a client that
	// ignores proxy environment variables. Timeouts come from the request
	// contexts, so a client timeout is not needed.
	HTTPClient *http.Client
	// Logger receives load, refresh and failure reports; nil discards them.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

const (
	defaultOCSPTimeout     = 5 * time.Second
	defaultCRLTimeout      = 30 * time.Second
	defaultClockSkew       = 5 * time.Minute
	defaultMaxCacheAge     = time.Hour
	minMaxCacheAge         = time.Minute
	defaultRefreshInterval = time.Minute
	defaultCacheSize       = 10000
)

// withDefaults validates cfg and fills in its defaults. The caller's slices
// are copied so later changes to them cannot race with the checker.
func (cfg Config) withDefaults() (Config, error) {
	var errs []error
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeOCSPThenCRL
	case ModeOCSPThenCRL, ModeCRLThenOCSP, ModeOCSP, ModeCRL, ModeOff:
	default:
		errs = append(errs, fmt.Errorf("unknown mode %q (want %s, %s, %s, %s or %s)",
			cfg.Mode, ModeOCSPThenCRL, ModeCRLThenOCSP, ModeOCSP, ModeCRL, ModeOff))
	}

	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"ocsp timeout", &cfg.OCSPTimeout, defaultOCSPTimeout},
		{"crl timeout", &cfg.CRLTimeout, defaultCRLTimeout},
		{"clock skew", &cfg.ClockSkew, defaultClockSkew},
		{"max cache age", &cfg.MaxCacheAge, defaultMaxCacheAge},
		{"refresh interval", &cfg.RefreshInterval, defaultRefreshInterval},
	}
	for _, d := range durations {
		switch {
		case *d.value < 0:
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", d.name, *d.value))
		case *d.value == 0:
			*d.value = d.def
		}
	}
	if cfg.MaxCacheAge > 0 && cfg.MaxCacheAge < minMaxCacheAge {
		errs = append(errs, fmt.Errorf("max cache age must be at least %v, got %v", minMaxCacheAge, cfg.MaxCacheAge))
	}
	switch {
	case cfg.CacheSize < 0:
		errs = append(errs, fmt.Errorf("cache size must not be negative, got %d", cfg.CacheSize))
	case cfg.CacheSize == 0:
		cfg.CacheSize = defaultCacheSize
	}

	if cfg.OCSPResponder != "" && !isHTTPURL(cfg.OCSPResponder) {
		errs = append(errs, fmt.Errorf("ocsp responder %q is not an absolute http or https URL", cfg.OCSPResponder))
	}

	cfg.CRLFiles = append([]string(nil), cfg.CRLFiles...)
	for i, path := range cfg.CRLFiles {
		if path == "" {
			errs = append(errs, fmt.Errorf("crl file %d is empty", i+1))
		}
	}
	cfg.CRLIssuers = append([]*x509.Certificate(nil), cfg.CRLIssuers...)
	for i, cert := range cfg.CRLIssuers {
		if cert == nil {
			errs = append(errs, fmt.Errorf("crl issuer %d is nil", i+1))
		}
	}
	if cfg.Mode == ModeCRL && len(cfg.CRLFiles) == 0 && !cfg.FetchCRLs {
		errs = append(errs, errors.New("mode crl needs crl files or crl fetching, or no certificate could ever be checked"))
	}

	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newDefaultHTTPClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, errors.Join(errs...)
}

// hasHTTPScheme is the cheap test Check applies to distribution points on
// every call; the fetch itself rejects URLs that are malformed beyond it.
func hasHTTPScheme(s string) bool {
	return len(s) > len("http://") && strings.EqualFold(s[:len("http://")], "http://") ||
		len(s) > len("https://") && strings.EqualFold(s[:len("https://")], "https://")
}

// isHTTPURL reports whether s is an absolute http or https URL: the only
// schemes the checker fetches from (LDAP distribution points are ignored).
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
