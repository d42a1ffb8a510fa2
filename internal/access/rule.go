// Package access decides who may pass once identified: per site or route,
// allow / require / deny rules on the account's affiliation, roster
// categories, groups and DoD ID, and on the card's issuing CA and
// certificate policies.
//
// # Semantics
//
// A Policy is a list of rules, each with an effect, a kind and one or more
// values. A rule matches when the fact it tests equals any of its values.
// The decision is:
//
//  1. If any deny rule matches, the request is refused ("denied_by_rule").
//  2. Every require rule must match.
//  3. If there are allow rules, at least one of them must match.
//  4. With no rules at all, everyone identified passes.
//
// The order of rules does not matter. So "require" is AND, "allow" is OR and
// "deny" overrides both: `require policy X` + `allow group a` + `allow
// affiliation Army` admits holders of a policy-X certificate who are in
// group a or Army, unless a deny rule matches them.
//
// Affiliation and roster category compare without regard to case (the DoD
// data is not consistent about it), and affiliation knows the service names
// for the card codes: "Army" matches a card's "USA", "Air Force" "USAF" and
// so on (see affiliationAliases). DoD IDs, group names and policy OIDs
// compare exactly. Issuers use allowed_issuers' syntax: a distinguished name
// (case-insensitive, spaces after commas ignored) or the CA certificate's
// SHA-256.
//
// A password sign-in has no certificate, so it can never satisfy an issuer
// or policy rule: allow/require rules of those kinds do not match it, and
// deny rules of those kinds refuse it (fail closed). The decision says so.
//
// A Decision carries a machine reason code for logs and API clients and
// phrases safe to show the person ("members of group ops-admins"): it
// never lists DoD IDs, file paths or the deny rule that matched.
package access

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/trust"
)

// Effects of a rule.
const (
	EffectAllow   = "allow"
	EffectRequire = "require"
	EffectDeny    = "deny"
)

// Kinds of rule: the fact each tests.
const (
	KindAffiliation = "affiliation"
	KindCategory    = "category"
	KindGroup       = "group"
	KindEDIPI       = "edipi"
	KindEDIPIFile   = "edipi_file"
	KindIssuer      = "issuer"
	KindPolicy      = "policy"
)

// Kinds lists every kind, in the order error messages name them.
var Kinds = []string{KindAffiliation, KindCategory, KindGroup, KindEDIPI, KindEDIPIFile, KindIssuer, KindPolicy}

// Rule is one configured rule, as it appears in JSON:
//
//	{"effect": "allow", "kind": "group", "values": ["ops-admins"]}
//
// For edipi_file the values are file paths (one DoD ID per line).
type Rule struct {
	Effect string   `json:"effect"`
	Kind   string   `json:"kind"`
	Values []string `json:"values"`
}

// String is the rule as a Caddyfile line, for logs and the audit trail.
// Lists of DoD IDs are summarized, not printed.
func (r Rule) String() string {
	if r.Kind == KindEDIPI {
		return fmt.Sprintf("%s %s [%d DoD IDs]", r.Effect, r.Kind, len(r.Values))
	}
	quoted := make([]string, len(r.Values))
	for i, v := range r.Values {
		if v == "" || strings.ContainsAny(v, " \t\"") {
			quoted[i] = fmt.Sprintf("%q", v)
		} else {
			quoted[i] = v
		}
	}
	return r.Effect + " " + r.Kind + " " + strings.Join(quoted, " ")
}

// maxValues bounds the values of one rule given inline (files hold more).
const maxValues = 10000

// rule is a compiled Rule.
type rule struct {
	effect string
	kind   string
	text   string   // Rule.String(), computed once
	values []string // compared with foldEqual (affiliation: every spelling of each; category) or exactly
	shown  []string // as configured, for the phrases people see
	// edipi_file rules have lists; issuer and policy rules their parsed
	// forms.
	lists   []*List
	issuers []trust.IssuerPattern
	oids    []asn1.ObjectIdentifier
}

// Policy is a compiled, immutable set of rules. Its edipi_file lists are
// reloaded by Refresh, Watch or whoever shares and watches them;
// Generation moves when any of them does.
type Policy struct {
	allows, requires, denies []*rule
	lists                    []*List
}

// Compile checks the rules and loads their files. Errors name the rule (by
// position and text) and what is wrong with it, so a config error is
// actionable.
func Compile(rules []Rule) (*Policy, error) { return CompileWith(rules, OpenList) }

// CompileWith is Compile with the edipi_file lists obtained from open, so
// that policies can share one List (one watcher, one reload moment) per
// file.
func CompileWith(rules []Rule, open func(path string) (*List, error)) (*Policy, error) {
	p := new(Policy)
	for i, r := range rules {
		c, err := compileRule(r, open)
		if err != nil {
			return nil, fmt.Errorf("access rule %d (%s): %w", i+1, r.String(), err)
		}
		switch c.effect {
		case EffectAllow:
			p.allows = append(p.allows, c)
		case EffectRequire:
			p.requires = append(p.requires, c)
		case EffectDeny:
			p.denies = append(p.denies, c)
		}
		p.lists = append(p.lists, c.lists...)
	}
	return p, nil
}

// Empty reports whether the policy has no rules (everyone identified
// passes).
func (p *Policy) Empty() bool {
	return p == nil || len(p.allows)+len(p.requires)+len(p.denies) == 0
}

func compileRule(r Rule, open func(string) (*List, error)) (*rule, error) {
	switch r.Effect {
	case EffectAllow, EffectRequire, EffectDeny:
	default:
		return nil, fmt.Errorf("effect must be allow, require or deny, got %q", r.Effect)
	}
	if len(r.Values) == 0 {
		return nil, errors.New("needs at least one value")
	}
	if len(r.Values) > maxValues {
		return nil, fmt.Errorf("has %d values; at most %d may be given inline (use edipi_file for long lists)", len(r.Values), maxValues)
	}
	c := &rule{effect: r.Effect, kind: r.Kind, text: r.String()}
	for _, v := range r.Values {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, errors.New("has an empty value")
		}
		c.shown = append(c.shown, v)
		switch r.Kind {
		case KindAffiliation:
			c.values = append(c.values, affiliationSpellings(v)...)
		case KindCategory:
			c.values = append(c.values, v)
		case KindGroup:
			if !store.ValidGroupName(v) {
				return nil, fmt.Errorf("group %q is not a valid group name (1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit)", v)
			}
			c.values = append(c.values, v)
		case KindEDIPI:
			if !ValidEDIPI(v) {
				return nil, fmt.Errorf("%q is not a 10-digit DoD ID", v)
			}
			c.values = append(c.values, v)
		case KindEDIPIFile:
			l, err := open(v)
			if err != nil {
				return nil, err
			}
			c.lists = append(c.lists, l)
		case KindIssuer:
			pat, err := trust.ParseIssuer(v)
			if err != nil {
				return nil, fmt.Errorf("issuer %w", err)
			}
			c.issuers = append(c.issuers, pat)
		case KindPolicy:
			oid, err := trust.ParseOID(v)
			if err != nil {
				return nil, fmt.Errorf("policy %q: %w", v, err)
			}
			c.oids = append(c.oids, oid)
		default:
			return nil, fmt.Errorf("unknown kind %q (want one of %s)", r.Kind, strings.Join(Kinds, ", "))
		}
	}
	return c, nil
}

// ValidEDIPI reports whether s is a DoD ID number: exactly 10 ASCII digits.
func ValidEDIPI(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// affiliationAliases maps service names people write in a config to the
// affiliation codes DoD certificates carry (the OU nearest the CN), so
// `allow affiliation Army` admits a card that says "USA". Keys and values
// are lower case.
var affiliationAliases = map[string]string{
	"army":                  "usa",
	"u.s. army":             "usa",
	"us army":               "usa",
	"navy":                  "usn",
	"u.s. navy":             "usn",
	"us navy":               "usn",
	"air force":             "usaf",
	"u.s. air force":        "usaf",
	"us air force":          "usaf",
	"marine corps":          "usmc",
	"marines":               "usmc",
	"u.s. marine corps":     "usmc",
	"us marine corps":       "usmc",
	"coast guard":           "uscg",
	"u.s. coast guard":      "uscg",
	"us coast guard":        "uscg",
	"space force":           "ussf",
	"u.s. space force":      "ussf",
	"us space force":        "ussf",
	"contractor":            "contractor",
	"contractors":           "contractor",
	"department of defense": "dod",
}

// affiliationSpellings are the spellings that mean the same affiliation as
// v: its certificate code and every service name for that code.
func affiliationSpellings(v string) []string {
	code := strings.ToLower(strings.Join(strings.Fields(v), " "))
	if c, ok := affiliationAliases[code]; ok {
		code = c
	}
	out := []string{code}
	for name, c := range affiliationAliases {
		if c == code && name != code {
			out = append(out, name)
		}
	}
	slices.Sort(out[1:]) // map order must not make decisions differ
	return out
}

// foldEqual compares words the way the DoD data needs: without regard to
// case, to surrounding spaces, or to the length of runs of spaces ("Active
// army" is "active  ARMY"). It does not allocate.
func foldEqual(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if unicode.IsSpace(ra) || unicode.IsSpace(rb) {
			if !unicode.IsSpace(ra) || !unicode.IsSpace(rb) {
				return false
			}
			a, b = strings.TrimLeftFunc(a, unicode.IsSpace), strings.TrimLeftFunc(b, unicode.IsSpace)
			continue
		}
		if !equalFoldRune(ra, rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b == ""
}

func equalFoldRune(r1, r2 rune) bool {
	if r1 == r2 {
		return true
	}
	for r := unicode.SimpleFold(r1); r != r1; r = unicode.SimpleFold(r) {
		if r == r2 {
			return true
		}
	}
	return false
}
