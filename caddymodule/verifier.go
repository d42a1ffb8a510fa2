package caddymodule

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/revocation"
	"github.com/cacgate/cacgate/trust"
)

func init() {
	caddy.RegisterModule(Verifier{})
}

// Verifier is the tls.client_auth.verifier.cacgate module: the gateway's
// certificate rules and revocation check applied during the TLS handshake,
// for ops who prefer to refuse revoked or non-compliant cards before any
// HTTP is spoken. The trade-off: the browser then shows a connection error
// rather than a page that explains the refusal. Use it with a client_auth
// mode that verifies chains (verify_if_given or require_and_verify).
//
//	client_auth {
//		mode verify_if_given
//		trust_pool file /etc/caddy/dod-roots.pem
//		verifier cacgate {
//			allowed_issuers   <dn|sha256>...
//			required_policies [all|any] <oid>...
//			required_eku      <name|oid>...
//			max_chain_depth   <n>
//			revocation        on|off
//		}
//	}
//
// Revocation uses the cacgate app's settings and cache, shared with the
// HTTP handler.
type Verifier struct {
	// CertPolicy: the same rules as the handler's.
	CertPolicy
	// Revocation (default true) checks revocation during the handshake.
	Revocation *bool `json:"revocation,omitempty"`

	app    *App
	policy trust.Policy
}

// CaddyModule returns the Caddy module information.
func (Verifier) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.client_auth.verifier.cacgate",
		New: func() caddy.Module { return new(Verifier) },
	}
}

// Provision compiles the rules and reaches the cacgate app.
func (v *Verifier) Provision(ctx caddy.Context) error {
	app, err := ctx.App("cacgate")
	if err != nil {
		return fmt.Errorf("loading cacgate app: %w", err)
	}
	v.app = app.(*App)
	if v.Revocation == nil {
		on := true
		v.Revocation = &on
	}
	v.policy, err = v.CertPolicy.compile()
	return err
}

// VerifyClientCertificate runs on every handshake that presented a
// certificate. It can only refuse.
func (v *Verifier) VerifyClientCertificate(_ [][]byte, verifiedChains [][]*x509.Certificate) error {
	if len(verifiedChains) == 0 || len(verifiedChains[0]) == 0 {
		return errors.New("cacgate: the client certificate's chain was not verified; use client_auth mode verify_if_given or require_and_verify")
	}
	chain := verifiedChains[0]
	leaf := chain[0]
	var issuer *x509.Certificate
	if len(chain) > 1 {
		issuer = chain[1]
	}
	if rej := v.policy.CheckChainDepth(len(chain)); rej != nil {
		return v.refuse(leaf, rej.Code, rej)
	}
	if rej := v.policy.Check(leaf, issuer); rej != nil {
		return v.refuse(leaf, rej.Code, rej)
	}
	if !*v.Revocation {
		return nil
	}
	// The handshake has a deadline of its own; the checker's timeouts
	// bound this further, and the verdict is cached for the HTTP handler.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	verdict := v.app.revocation.CheckChain(ctx, chain)
	if verdict.Status == revocation.StatusGood {
		return nil
	}
	var caAudit []zap.Field
	whose := "certificate"
	if verdict.CA != nil {
		caAudit = audit.CA(verdict.CA)
		whose = fmt.Sprintf("issuing CA %q", verdict.CA.Subject.CommonName)
	}
	switch {
	case verdict.Status == revocation.StatusRevoked && verdict.CA != nil:
		return v.refuse(leaf, "ca_revoked", fmt.Errorf("%s revoked", whose), caAudit...)
	case verdict.Status == revocation.StatusRevoked:
		return v.refuse(leaf, "certificate_revoked", errors.New("certificate revoked"))
	default:
		return v.refuse(leaf, "revocation_unavailable", fmt.Errorf("%s status unavailable: %v", whose, verdict.Err), caAudit...)
	}
}

// refuse audits a handshake refusal. The handshake gives no client
// address, so the entry identifies the card only.
func (v *Verifier) refuse(leaf *x509.Certificate, code string, err error, extra ...zap.Field) error {
	v.app.audit.Write("access.denied", audit.Failure, append([]zap.Field{
		zap.String("reason", code), zap.String("stage", "tls_handshake"),
		audit.Text("cert_subject", cacid.DistinguishedName(leaf.RawSubject, leaf.Subject)),
		audit.Text("cert_serial", leaf.SerialNumber.Text(16)),
		audit.Text("cert_issuer", cacid.DistinguishedName(leaf.RawIssuer, leaf.Issuer)),
	}, extra...)...)
	return fmt.Errorf("cacgate: %s: %w", code, err)
}

// UnmarshalCaddyfile parses the verifier's block (after "verifier").
func (v *Verifier) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		if ok, err := v.unmarshalOption(d, sub); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch sub {
		case "revocation":
			on, err := onOffArg(d)
			if err != nil {
				return err
			}
			v.Revocation = &on
		default:
			return d.Errf("unrecognized cacgate verifier option %q", sub)
		}
	}
	return nil
}

// Interface guards
var (
	_ caddytls.ClientCertificateVerifier = (*Verifier)(nil)
	_ caddy.Provisioner                  = (*Verifier)(nil)
	_ caddyfile.Unmarshaler              = (*Verifier)(nil)
)
