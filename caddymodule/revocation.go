package caddymodule

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/cacgate/cacgate/revocation"
)

// RevocationConfig is the app's revocation checking: on by default (OCSP
// then CRL, fail closed), because Caddy's client_auth verifies chains but
// never revocation.
//
//	revocation {
//		mode             ocsp_then_crl|crl_then_ocsp|ocsp|crl|off
//		fail_closed | fail_open
//		ocsp_timeout     <duration>
//		crl_timeout      <duration>
//		ocsp_responder   <url>
//		ocsp_nonce
//		clock_skew       <duration>
//		max_cache_age    <duration>
//		crl_files        <file|dir>...
//		crl_issuers      <pem file>...
//		fetch_crls       on|off
//		refresh_interval <duration>
//		intermediates    on|off
//	}
type RevocationConfig struct {
	// Mode: ocsp_then_crl (default), crl_then_ocsp, ocsp, crl or off.
	Mode string `json:"mode,omitempty"`
	// FailOpen admits a card whose status cannot be had (logged and
	// audited). Default: fail closed, a 503 page.
	FailOpen bool `json:"fail_open,omitempty"`
	// OCSPTimeout per OCSP request (default 5s); CRLTimeout per CRL download (default 30s).
	OCSPTimeout caddy.Duration `json:"ocsp_timeout,omitempty"`
	CRLTimeout  caddy.Duration `json:"crl_timeout,omitempty"`
	// OCSPResponder overrides the responder named in certificates (AIA).
	OCSPResponder string `json:"ocsp_responder,omitempty"`
	// OCSPNonce sends a nonce and requires it back (many responders,
	// DISA's among them, answer from caches without nonces).
	OCSPNonce bool `json:"ocsp_nonce,omitempty"`
	// ClockSkew tolerated on thisUpdate/nextUpdate (default 5m).
	ClockSkew caddy.Duration `json:"clock_skew,omitempty"`
	// MaxCacheAge bounds how long any verdict is reused (default 1h).
	MaxCacheAge caddy.Duration `json:"max_cache_age,omitempty"`
	// CRLFiles are CRL files or directories, DER or PEM, refreshed when they change.
	CRLFiles []string `json:"crl_files,omitempty"`
	// CRLIssuers are PEM files of the CA certificates that sign CRLFiles.
	CRLIssuers []string `json:"crl_issuers,omitempty"`
	// FetchCRLs downloads CRLs from certificates' distribution points
	// (default on).
	FetchCRLs *bool `json:"fetch_crls,omitempty"`
	// RefreshInterval is how often CRL files are checked for changes (default 1m).
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// Intermediates also checks the revocation status of every CA
	// certificate between the card and the trust anchor (DoD: the issuing
	// DOD ID CA, on the root's CRL), with the same sources, cache and
	// fail_open/fail_closed as the card. Off by default: with it on and
	// fail closed, every card is refused until the root's CRL can be had
	// (crl_files, or fetch_crls and the CA certificates' distribution
	// points).
	Intermediates bool `json:"intermediates,omitempty"`
}

func (a *App) provisionRevocation(ctx caddy.Context) error {
	rc := a.Revocation
	if rc == nil {
		rc = &RevocationConfig{}
	}
	fetch := true
	if rc.FetchCRLs != nil {
		fetch = *rc.FetchCRLs
	}
	cfg := revocation.Config{
		Mode:            revocation.Mode(rc.Mode),
		FailOpen:        rc.FailOpen,
		OCSPTimeout:     time.Duration(rc.OCSPTimeout),
		CRLTimeout:      time.Duration(rc.CRLTimeout),
		OCSPResponder:   rc.OCSPResponder,
		OCSPNonce:       rc.OCSPNonce,
		ClockSkew:       time.Duration(rc.ClockSkew),
		MaxCacheAge:     time.Duration(rc.MaxCacheAge),
		CRLFiles:        rc.CRLFiles,
		FetchCRLs:       fetch,
		RefreshInterval: time.Duration(rc.RefreshInterval),
		CacheSize:       a.CacheSize,
		Intermediates:   rc.Intermediates,
		OnCheck:         a.metrics.RevocationCheck,
		OnCRLError:      a.metrics.CRLRefused,
		Logger:          a.logger.Named("revocation"),
	}
	for _, file := range rc.CRLIssuers {
		certs, err := loadPEMCertificates(file)
		if err != nil {
			return fmt.Errorf("revocation crl_issuers: %w", err)
		}
		cfg.CRLIssuers = append(cfg.CRLIssuers, certs...)
	}
	checker, err := revocation.New(cfg)
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	// Start loads CRL files now and refreshes them in the background until
	// the config is unloaded. A missing crl_files path fails provisioning;
	// a bad CRL file does not (it is logged, counted and shown by `caddy
	// cacgate revocation`, and its CA's cards follow fail_open or
	// fail_closed until a good CRL replaces it).
	if err := checker.Start(ctx); err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	a.metrics.CRLSourcesFailing(checker.FailingCRLSources)
	a.revocation = checker
	return nil
}

func loadPEMCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return certs, nil
}

// unmarshalRevocation parses the revocation block of the global option.
func unmarshalRevocation(d *caddyfile.Dispenser) (*RevocationConfig, error) {
	rc := new(RevocationConfig)
	if d.NextArg() {
		// one-liner: "revocation off" or "revocation <mode>"
		rc.Mode = d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		return rc, nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		key := sub
		if sub == "fail_open" || sub == "fail_closed" {
			key = "fail_open/fail_closed"
		}
		if seen[key] {
			return nil, d.Errf("revocation: %s specified more than once", key)
		}
		seen[key] = true
		var err error
		switch sub {
		case "mode":
			err = stringArg(d, &rc.Mode)
		case "fail_open", "fail_closed":
			rc.FailOpen = sub == "fail_open"
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "ocsp_timeout":
			err = durationArg(d, &rc.OCSPTimeout)
		case "crl_timeout":
			err = durationArg(d, &rc.CRLTimeout)
		case "ocsp_responder":
			err = stringArg(d, &rc.OCSPResponder)
		case "ocsp_nonce":
			rc.OCSPNonce = true
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "clock_skew":
			err = durationArg(d, &rc.ClockSkew)
		case "max_cache_age":
			err = durationArg(d, &rc.MaxCacheAge)
		case "crl_files":
			if rc.CRLFiles = d.RemainingArgs(); len(rc.CRLFiles) == 0 {
				return nil, d.ArgErr()
			}
		case "crl_issuers":
			if rc.CRLIssuers = d.RemainingArgs(); len(rc.CRLIssuers) == 0 {
				return nil, d.ArgErr()
			}
		case "fetch_crls":
			var on bool
			on, err = onOffArg(d)
			rc.FetchCRLs = &on
		case "refresh_interval":
			err = durationArg(d, &rc.RefreshInterval)
		case "intermediates":
			rc.Intermediates, err = onOffArg(d)
		default:
			return nil, d.Errf("unrecognized revocation option %q", sub)
		}
		if err != nil {
			return nil, err
		}
	}
	return rc, nil
}
