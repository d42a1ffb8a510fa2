package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/cacgate/cacgate/trust"
)

// CertPolicy holds the certificate acceptance rules shared by the HTTP
// handler and the TLS verifier module, so both read the same options the
// same way. It is embedded in both, which keeps the JSON flat.
type CertPolicy struct {
	// AllowedIssuers restricts the issuing CA: a distinguished name (as
	// `openssl x509 -noout -issuer -nameopt RFC2253` prints it) or the hex
	// SHA-256 of the CA certificate.
	AllowedIssuers []string `json:"allowed_issuers,omitempty"`

	// RequiredPolicies are certificate policy OIDs the card must carry.
	RequiredPolicies []string `json:"required_policies,omitempty"`

	// PolicyMatch is "all" (default: every required policy) or "any".
	PolicyMatch string `json:"policy_match,omitempty"`

	// RequiredEKU are extended key usages the card must carry besides
	// clientAuth: names (clientAuth, smartcardLogon, pivAuth,
	// emailProtection, anyExtendedKeyUsage) or dotted OIDs.
	RequiredEKU []string `json:"required_eku,omitempty"`

	// MaxChainDepth bounds the verified chain's length in certificates,
	// leaf and root included (DoD cards: 3). 0 means no bound.
	MaxChainDepth int `json:"max_chain_depth,omitempty"`

	// Accept are the credential kinds the site admits, each a preset of
	// the published certificate policies ("dod", "piv", "piv-i", "eca";
	// see trust.Presets), optionally narrowed to some issuing CAs or
	// widened with more policy OIDs. Empty: every certificate is read as
	// a DoD CAC (the behaviour before credential kinds).
	Accept []trust.AcceptRule `json:"accept,omitempty"`
}

// acceptance compiles the accept rules; nil without any.
func (p CertPolicy) acceptance() (*trust.Acceptance, error) {
	if len(p.Accept) == 0 {
		return nil, nil
	}
	return trust.CompileAcceptance(p.Accept)
}

// compile turns the options into a checked trust.Policy.
func (p CertPolicy) compile() (trust.Policy, error) {
	pol := trust.Policy{
		AllowedIssuers:   p.AllowedIssuers,
		RequiredPolicies: p.RequiredPolicies,
		RequiredEKU:      p.RequiredEKU,
		MaxChainDepth:    p.MaxChainDepth,
	}
	switch p.PolicyMatch {
	case "", "all":
	case "any":
		pol.AnyPolicy = true
	default:
		return pol, fmt.Errorf("policy_match must be \"all\" or \"any\", got %q", p.PolicyMatch)
	}
	return pol, pol.Compile()
}

// unmarshalOption parses one policy subdirective if sub is one:
//
//	allowed_issuers   <dn|sha256>...       (repeatable)
//	required_policies [all|any] <oid>...
//	required_eku      <name|oid>...
//	max_chain_depth   <n>
//	accept            <kind>...            (repeatable; dod, piv, piv-i, eca)
//	accept            <kind> {
//		issuers  <dn|sha256>...
//		policies <oid>...
//	}
//
// It reports whether sub was a policy option.
func (p *CertPolicy) unmarshalOption(d *caddyfile.Dispenser, sub string) (bool, error) {
	switch sub {
	case "allowed_issuers":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		p.AllowedIssuers = append(p.AllowedIssuers, args...)
	case "required_policies":
		args := d.RemainingArgs()
		if len(args) > 0 && (args[0] == "all" || args[0] == "any") {
			p.PolicyMatch, args = args[0], args[1:]
		}
		if len(args) == 0 {
			return true, d.ArgErr()
		}
		p.RequiredPolicies = args
	case "required_eku":
		if p.RequiredEKU = d.RemainingArgs(); len(p.RequiredEKU) == 0 {
			return true, d.ArgErr()
		}
	case "max_chain_depth":
		n, err := intArg(d)
		if err != nil {
			return true, err
		}
		p.MaxChainDepth = n
	case "accept":
		kinds := d.RemainingArgs()
		if len(kinds) == 0 {
			return true, d.ArgErr()
		}
		for _, k := range kinds {
			if _, ok := trust.PresetByName(k); !ok {
				return true, d.Errf("accept: unknown credential kind %q (want dod, piv, piv-i or eca)", k)
			}
			p.Accept = append(p.Accept, trust.AcceptRule{Kind: k})
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if len(kinds) != 1 {
				return true, d.Err("accept: a block belongs to one credential kind")
			}
			rule := &p.Accept[len(p.Accept)-1]
			switch d.Val() {
			case "issuers":
				if rule.Issuers = append(rule.Issuers, d.RemainingArgs()...); len(rule.Issuers) == 0 {
					return true, d.ArgErr()
				}
			case "policies":
				if rule.Policies = append(rule.Policies, d.RemainingArgs()...); len(rule.Policies) == 0 {
					return true, d.ArgErr()
				}
			default:
				return true, d.Errf("accept: unrecognized option %q", d.Val())
			}
		}
	default:
		return false, nil
	}
	return true, nil
}
