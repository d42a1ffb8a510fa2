package caddymodule

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/trustbundle"
)

func init() {
	caddy.RegisterModule(new(BundlePool))
}

// DefaultBundleRefresh is how often a cacgate_bundle checks its files.
const DefaultBundleRefresh = time.Minute

// BundlePool is the tls.ca_pool.source.cacgate_bundle module: the CAs of
// DISA's PKCS#7 bundles (.p7b DER or PEM, the .zip DISA ships, its
// checksum list verified), PEM or DER certificate files, and directories
// of them — never the system roots. Usable wherever Caddy takes a CA pool:
// client_auth's trust_pool, and cacgate's own trust_pool.
//
//	trust_pool cacgate_bundle <file|dir>... {
//		file             <file|dir>...   # more files (repeatable)
//		refresh_interval <duration>|off  # default 1m
//	}
//
// At provision, a certificate that is not a CA, has expired or has a weak
// key, and a file that does not parse or fails its checksum, is logged by
// name and left out; a bundle with no usable CA fails the config.
//
// The files are checked every refresh_interval. A change that loads is
// audited (CAs added and removed) and used at once by cacgate's own chain
// verification (trust_pool in the cacgate block); a change that does not
// load is logged, audited and counted, and the last good bundle stays.
// Caddy's TLS handshake takes its pool once, when the config loads, so
// client_auth's pool follows a change at the next config reload (`caddy
// reload`, or the admin API): the log says so.
type BundlePool struct {
	// Files are bundle files and directories.
	Files []string `json:"files,omitempty"`
	// RefreshInterval is how often the files are checked for a change;
	// default 1m, negative: never.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`

	current atomic.Pointer[trustbundle.Bundle]
	// provisioned is the bundle loaded at provision: the one a TLS
	// connection policy took its pool from.
	provisioned *trustbundle.Bundle
	logger      *zap.Logger
	audit       *audit.Log
	reloads     *prometheus.CounterVec

	mu sync.Mutex
	// onChange are told of every bundle that replaces the current one.
	onChange []func(*trustbundle.Bundle)
	// refusedErr is the last refused change's error, so a bad file
	// left in place is reported once, not every refresh.
	refusedErr string
}

// CaddyModule returns the Caddy module information.
func (*BundlePool) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.ca_pool.source.cacgate_bundle",
		New: func() caddy.Module { return new(BundlePool) },
	}
}

// Provision loads the bundle and starts watching its files.
func (b *BundlePool) Provision(ctx caddy.Context) error {
	b.logger = ctx.Logger()
	// The app's audit log when the config has the app (its node name, its
	// event counter); else one of its own on the same logger.
	b.audit = audit.New(ctx.Logger(auditLog{}), "")
	if app, err := ctx.AppIfConfigured("cacgate"); err == nil {
		if a, ok := app.(*App); ok && a.audit != nil {
			b.audit = a.audit
		}
	}
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if b.reloads, err = metrics.TrustBundleReloads(reg); err != nil {
		return err
	}
	if len(b.Files) == 0 {
		return errors.New("cacgate_bundle: no files")
	}
	bundle, err := trustbundle.Load(b.Files, time.Now())
	if err != nil {
		return fmt.Errorf("cacgate_bundle: %w", err)
	}
	b.logRefusals(bundle)
	b.current.Store(bundle)
	b.provisioned = bundle
	liveBundles.add(b)
	b.logger.Info("trust bundle loaded", zap.Strings("files", b.Files), zap.Int("cas", len(bundle.CAs)), zap.Int("refused", len(bundle.Refused)), zap.String("digest", bundle.Digest))
	b.audit.Write("trust.bundle_loaded", audit.Success, zap.Strings("files", b.Files), zap.Int("cas", len(bundle.CAs)), zap.Int("refused", len(bundle.Refused)), zap.String("digest", bundle.Digest))
	every := time.Duration(b.RefreshInterval)
	if every == 0 {
		every = DefaultBundleRefresh
	}
	if every > 0 {
		go b.watch(ctx, every)
	}
	return nil
}

// watch checks the files every interval until the config unloads.
func (b *BundlePool) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.Refresh(time.Now())
		}
	}
}

// Refresh loads the files again and, if they changed and load, makes
// them the current bundle. It reports whether the bundle changed.
func (b *BundlePool) Refresh(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.current.Load()
	next, err := trustbundle.Load(b.Files, now)
	if err != nil {
		if err.Error() != b.refusedErr {
			b.refusedErr = err.Error()
			b.reloads.WithLabelValues("refused").Inc()
			b.logger.Error("trust bundle change refused: keeping the last good bundle", zap.Strings("files", b.Files), zap.Int("cas", len(cur.CAs)), zap.Error(err))
			b.audit.Write("trust.bundle_refused", audit.Failure, zap.Strings("files", b.Files), audit.Text("error", err.Error()), zap.String("kept_digest", cur.Digest))
		}
		return false
	}
	b.refusedErr = ""
	if next.Digest == cur.Digest {
		return false
	}
	b.logRefusals(next)
	added, removed := trustbundle.Diff(cur, next)
	b.current.Store(next)
	if len(added)+len(removed) == 0 {
		// New files, the same CAs (a re-packed archive, a README): the
		// verdicts reached with the current pool stand.
		b.logger.Info("trust bundle files changed, same CAs", zap.Strings("files", b.Files), zap.String("digest", next.Digest))
		return false
	}
	b.reloads.WithLabelValues("changed").Inc()
	names := func(es []trustbundle.Entry) []string {
		s := make([]string, len(es))
		for i, e := range es {
			s[i] = e.Subject + " (" + e.SHA256 + ")"
		}
		return s
	}
	b.logger.Warn("trust bundle changed: cacgate's own chain verification uses it now; Caddy's client_auth pool at the next config reload",
		zap.Strings("files", b.Files), zap.Int("cas", len(next.CAs)), zap.Strings("added", names(added)), zap.Strings("removed", names(removed)), zap.String("digest", next.Digest))
	b.audit.Write("trust.bundle_changed", audit.Success, zap.Strings("files", b.Files), zap.Strings("added", names(added)), zap.Strings("removed", names(removed)), zap.String("digest", next.Digest))
	for _, f := range b.onChange {
		f(next)
	}
	return true
}

// logRefusals names every certificate and file the bundle left out.
func (b *BundlePool) logRefusals(bundle *trustbundle.Bundle) {
	for _, r := range bundle.Refused {
		b.logger.Warn("trust bundle: refused", zap.String("source", r.Source), zap.String("subject", r.Subject), zap.String("sha256", r.SHA256), zap.String("reason", r.Reason))
	}
}

// Cleanup forgets the pool (its watcher stops with the config's context).
func (b *BundlePool) Cleanup() error {
	liveBundles.remove(b)
	return nil
}

// liveBundles are the provisioned cacgate_bundle pools, so the
// certificates page can find the one behind a client_auth pool: Caddy
// keeps the TLS config it built (with the pool) but not the module.
var liveBundles = &bundleRegistry{pools: map[*BundlePool]struct{}{}}

type bundleRegistry struct {
	mu    sync.Mutex
	pools map[*BundlePool]struct{}
}

func (r *bundleRegistry) add(b *BundlePool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pools[b] = struct{}{}
}

func (r *bundleRegistry) remove(b *BundlePool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pools, b)
}

// certificatesOf returns the CAs of the bundle whose provision-time pool
// is pool (the one a TLS handshake uses), nil if no bundle's is.
func (r *bundleRegistry) certificatesOf(pool *x509.CertPool) []*x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	for b := range r.pools {
		if p := b.provisioned.Pool(); p == pool || p.Equal(pool) {
			return b.provisioned.Certificates()
		}
	}
	return nil
}

// OnChange registers f to be told of every new bundle, from the watcher's
// goroutine.
func (b *BundlePool) OnChange(f func(*trustbundle.Bundle)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onChange = append(b.onChange, f)
}

// CertPool returns the current bundle's pool (caddytls.CA).
func (b *BundlePool) CertPool() *x509.CertPool { return b.current.Load().Pool() }

// Certificates returns the current bundle's CAs (caddytls.CertificateProvider).
func (b *BundlePool) Certificates() []*x509.Certificate {
	return b.current.Load().Certificates()
}

// UnmarshalCaddyfile reads the syntax in the type's documentation.
func (b *BundlePool) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	b.Files = append(b.Files, d.RemainingArgs()...)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if sub != "file" && seen[sub] {
			return d.Errf("%s given twice", sub)
		}
		seen[sub] = true
		switch sub {
		case "file":
			files := d.RemainingArgs()
			if len(files) == 0 {
				return d.ArgErr()
			}
			b.Files = append(b.Files, files...)
		case "refresh_interval":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if d.Val() == "off" {
				b.RefreshInterval = -1
			} else {
				dur, err := caddy.ParseDuration(d.Val())
				if err != nil || dur < time.Second {
					return d.Errf("refresh_interval %q: want a duration of at least 1s, or off", d.Val())
				}
				b.RefreshInterval = caddy.Duration(dur)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized cacgate_bundle subdirective %q", sub)
		}
	}
	if len(b.Files) == 0 {
		return d.Err("cacgate_bundle: no files given")
	}
	for _, f := range b.Files {
		if strings.TrimSpace(f) == "" {
			return d.Err("cacgate_bundle: empty file name")
		}
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner            = (*BundlePool)(nil)
	_ caddy.CleanerUpper           = (*BundlePool)(nil)
	_ caddytls.CA                  = (*BundlePool)(nil)
	_ caddytls.CertificateProvider = (*BundlePool)(nil)
	_ caddyfile.Unmarshaler        = (*BundlePool)(nil)
)
