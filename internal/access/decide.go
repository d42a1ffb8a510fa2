package access

import (
	"encoding/asn1"
	"strings"
)

// Facts are what the rules decide on, for one identified request.
type Facts struct {
	// Card is true when a certificate is on the request, false for a
	// password sign-in (which then cannot meet issuer or policy rules).
	Card bool

	// EDIPI is the account's DoD ID, the one the backend receives.
	// CardEDIPI is the certificate's, when there is one: deny rules match
	// either, so a card cannot slip past a ban by being linked to another
	// account.
	EDIPI, CardEDIPI string

	Affiliation string
	Categories  []string // roster categories of the account
	Groups      []string // access groups of the account

	// IssuerDN is the card's issuer name (as cacid.DistinguishedName
	// prints it); IssuerSHA256 the verified issuing CA certificate's
	// fingerprint (cacid.Fingerprint), "" when no verified chain is at hand.
	IssuerDN     string
	IssuerSHA256 string
	// Policies are the certificate policy OIDs of the card.
	Policies []asn1.ObjectIdentifier
}

// Reason codes of a refusal, for the audit trail, metrics and API clients.
const (
	ReasonAffiliation = "affiliation"
	ReasonCategory    = "category"
	ReasonGroup       = "group"
	ReasonEDIPI       = "edipi"
	ReasonIssuer      = "issuer"
	ReasonPolicy      = "policy"
	ReasonDenied      = "denied_by_rule"
)

// Decision is the outcome for one set of facts. Decisions are immutable
// and may be cached and shared.
type Decision struct {
	Allowed bool
	// Reason is the code of the first thing missing (a require rule's
	// kind, else the first allow rule's), or ReasonDenied.
	Reason string
	// Rules are the rules that refused, as Caddyfile text: the deny rule
	// that matched, or the require rules that failed and, when none of
	// them matched, the allow rules. For the audit trail only.
	Rules []string
	// Missing are what the person lacks, in words safe to show them: one
	// entry per unmet requirement ("members of group ops-admins"), the
	// allow rules together as one ("... or ..."). Empty for a deny.
	Missing []string
	// NeedsCard is set when a certificate rule refused a password sign-in:
	// signing in with a card may help.
	NeedsCard bool
}

// granted is every admitting decision: one shared value, so an admitted
// request allocates nothing.
var granted = &Decision{Allowed: true}

// Message is the refusal in one sentence for the person refused.
func (d *Decision) Message() string {
	switch {
	case d.Allowed:
		return ""
	case d.Reason == ReasonDenied || len(d.Missing) == 0:
		return "An access rule of this site excludes your account."
	}
	return "This site is limited to: " + strings.Join(d.Missing, "; ") + "."
}

// reasonOf is a rule kind's reason code (edipi_file is "edipi").
func reasonOf(kind string) string {
	if kind == KindEDIPIFile {
		return ReasonEDIPI
	}
	return kind
}

// Decide applies every rule to f. With no rules everyone passes.
func (p *Policy) Decide(f *Facts) *Decision {
	if d := p.decideDeny(f); d != nil {
		return d
	}
	var d *Decision
	refuse := func() *Decision {
		if d == nil {
			d = &Decision{}
		}
		return d
	}
	for _, r := range p.requires {
		if ok, noCard := r.match(f); !ok {
			d := refuse()
			if d.Reason == "" {
				d.Reason = reasonOf(r.kind)
			}
			d.Rules = append(d.Rules, r.text)
			d.Missing = append(d.Missing, r.phrase(noCard))
			d.NeedsCard = d.NeedsCard || noCard
		}
	}
	if len(p.allows) > 0 {
		matched, noCard := false, false
		for _, r := range p.allows {
			ok, nc := r.match(f)
			if ok {
				matched = true
				break
			}
			noCard = noCard || nc
		}
		if !matched {
			d := refuse()
			if d.Reason == "" {
				d.Reason = reasonOf(p.allows[0].kind)
			}
			phrases := make([]string, len(p.allows))
			for i, r := range p.allows {
				d.Rules = append(d.Rules, r.text)
				_, nc := r.match(f)
				phrases[i] = r.phrase(nc)
			}
			d.Missing = append(d.Missing, strings.Join(phrases, ", or "))
			d.NeedsCard = d.NeedsCard || noCard
		}
	}
	if d == nil {
		return granted
	}
	return d
}

// DecideDeny applies only the deny rules: for the gateway's own pages
// (enrollment, the account page), which people who do not yet meet the
// allow and require rules must reach to get there (a group is granted to an
// account, so the account must exist first), but excluded people must not.
func (p *Policy) DecideDeny(f *Facts) *Decision {
	if d := p.decideDeny(f); d != nil {
		return d
	}
	return granted
}

func (p *Policy) decideDeny(f *Facts) *Decision {
	for _, r := range p.denies {
		ok, noCard := r.match(f)
		if ok {
			return &Decision{Reason: ReasonDenied, Rules: []string{r.text}}
		}
		if noCard {
			// A certificate rule cannot tell whether a password sign-in
			// would be excluded: refuse, and say a card is needed.
			return &Decision{Reason: reasonOf(r.kind), Rules: []string{r.text}, NeedsCard: true,
				Missing: []string{"sign-in with a CAC or PIV card (password sign-in is not accepted here)"}}
		}
	}
	return nil
}

// match reports whether f meets the rule. noCard is set when the rule
// tests the certificate and there is none (then ok is false).
func (r *rule) match(f *Facts) (ok, noCard bool) {
	switch r.kind {
	case KindAffiliation:
		if f.Affiliation == "" {
			return false, false
		}
		return containsFold(r.values, f.Affiliation), false
	case KindCategory:
		for _, c := range f.Categories {
			if containsFold(r.values, c) {
				return true, false
			}
		}
		return false, false
	case KindGroup:
		for _, g := range f.Groups {
			if containsString(r.values, g) {
				return true, false
			}
		}
		return false, false
	case KindEDIPI:
		return r.matchEDIPI(f, func(id string) bool { return containsString(r.values, id) }), false
	case KindEDIPIFile:
		return r.matchEDIPI(f, func(id string) bool {
			for _, l := range r.lists {
				if l.Contains(id) {
					return true
				}
			}
			return false
		}), false
	case KindIssuer:
		if !f.Card {
			return false, true
		}
		for _, pat := range r.issuers {
			if pat.Match(f.IssuerDN, f.IssuerSHA256) {
				return true, false
			}
		}
		return false, false
	case KindPolicy:
		if !f.Card {
			return false, true
		}
		for _, want := range r.oids {
			for _, got := range f.Policies {
				if got.Equal(want) {
					return true, false
				}
			}
		}
		return false, false
	}
	return false, false
}

// matchEDIPI tests the account's DoD ID, and for deny rules the card's as
// well.
func (r *rule) matchEDIPI(f *Facts, in func(string) bool) bool {
	if f.EDIPI != "" && in(f.EDIPI) {
		return true
	}
	return r.effect == EffectDeny && f.CardEDIPI != "" && f.CardEDIPI != f.EDIPI && in(f.CardEDIPI)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if foldEqual(v, s) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
