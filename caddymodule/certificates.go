package caddymodule

import (
	"crypto/x509"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/cacgate/cacgate/internal/trustbundle"
)

// followTrustPool makes the site verify against each new bundle of a
// cacgate_bundle trust_pool as soon as it loads.
func (h *Handler) followTrustPool() {
	bp, ok := h.trustPool.(*BundlePool)
	if !ok {
		return
	}
	site := h.site
	bp.OnChange(func(b *trustbundle.Bundle) { site.SetRoots(b.Pool()) })
	// A change between provision and now would otherwise be missed.
	site.SetRoots(bp.CertPool())
}

// trustCertificates are the CAs this site trusts for cards, for the
// certificates page: those of the handler's trust_pool (any Caddy pool
// source that can list its certificates), else those of the server's
// client_auth pool when it is a cacgate_bundle, else none (the page then
// says it cannot tell).
func (h *Handler) trustCertificates(r *http.Request) []*x509.Certificate {
	if h.trustPool != nil {
		if cp, ok := h.trustPool.(caddytls.CertificateProvider); ok {
			return cp.Certificates()
		}
		return nil
	}
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return nil
	}
	// Caddy chose the connection policy by matchers this handler cannot
	// see; the pool is known only when every policy that asks for a card
	// trusts the same CAs.
	var pool *x509.CertPool
	for _, p := range srv.TLSConnPolicies {
		if p == nil || p.TLSConfig == nil || p.TLSConfig.ClientCAs == nil {
			continue
		}
		if pool != nil && !pool.Equal(p.TLSConfig.ClientCAs) {
			return nil
		}
		pool = p.TLSConfig.ClientCAs
	}
	if pool == nil {
		return nil
	}
	return liveBundles.certificatesOf(pool)
}
