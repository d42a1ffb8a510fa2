package access

import (
	"crypto/sha256"
	"encoding/asn1"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var (
	oidMedium      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 2, 1, 11, 42}
	oidPIVAuth     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 2, 1, 3, 13}
	caDN           = "CN=DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US"
	caSum          = sha256.Sum256([]byte("the CA certificate"))
	otherCASum     = sha256.Sum256([]byte("another CA"))
	armyCardHolder = Facts{
		Card:         true,
		EDIPI:        "1234567890",
		CardEDIPI:    "1234567890",
		Affiliation:  "USA",
		Categories:   []string{"Active Army", "DA Civilian"},
		Groups:       []string{"ops", "ops-admins"},
		IssuerDN:     caDN,
		IssuerSHA256: hexSum(caSum),
		Policies:     []asn1.ObjectIdentifier{oidMedium},
	}
)

func compile(t *testing.T, rules ...Rule) *Policy {
	t.Helper()
	p, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func r(effect, kind string, values ...string) Rule {
	return Rule{Effect: effect, Kind: kind, Values: values}
}

func with(f Facts, change func(*Facts)) *Facts {
	change(&f)
	return &f
}

func TestEveryKind(t *testing.T) {
	edipis := writeFile(t, "ids.txt", "# approved\n1234567890\n")
	others := writeFile(t, "others.txt", "1111111111\n")
	tests := []struct {
		name  string
		rule  Rule
		facts *Facts
		want  bool
	}{
		{"affiliation code", r("allow", KindAffiliation, "USA"), &armyCardHolder, true},
		{"affiliation service name", r("allow", KindAffiliation, "Army", "Air Force"), &armyCardHolder, true},
		{"affiliation case", r("allow", KindAffiliation, "army"), with(armyCardHolder, func(f *Facts) { f.Affiliation = "usa" }), true},
		{"affiliation written out on the account", r("allow", KindAffiliation, "USA"), with(armyCardHolder, func(f *Facts) { f.Affiliation = "U.S.  Army " }), true},
		{"affiliation marines", r("allow", KindAffiliation, "Marine Corps"), with(armyCardHolder, func(f *Facts) { f.Affiliation = "USMC" }), true},
		{"affiliation unknown word", r("allow", KindAffiliation, "Contractor"), with(armyCardHolder, func(f *Facts) { f.Affiliation = "CONTRACTOR" }), true},
		{"affiliation is not a prefix match", r("allow", KindAffiliation, "US"), &armyCardHolder, false},
		{"affiliation other", r("allow", KindAffiliation, "Navy"), &armyCardHolder, false},
		{"affiliation none", r("allow", KindAffiliation, "Army"), with(armyCardHolder, func(f *Facts) { f.Affiliation = "" }), false},
		{"category", r("allow", KindCategory, "DA Civilian"), &armyCardHolder, true},
		{"category case and spaces", r("allow", KindCategory, "active  ARMY"), &armyCardHolder, true},
		{"category other", r("allow", KindCategory, "Army Retired"), &armyCardHolder, false},
		{"group", r("allow", KindGroup, "finance", "ops-admins"), &armyCardHolder, true},
		{"group other", r("allow", KindGroup, "ops-admin"), &armyCardHolder, false},
		{"group none", r("allow", KindGroup, "ops"), with(armyCardHolder, func(f *Facts) { f.Groups = nil }), false},
		{"edipi", r("allow", KindEDIPI, "1111111111", "1234567890"), &armyCardHolder, true},
		{"edipi other", r("allow", KindEDIPI, "1234567891"), &armyCardHolder, false},
		{"edipi_file", r("allow", KindEDIPIFile, others, edipis), &armyCardHolder, true},
		{"edipi_file other", r("allow", KindEDIPIFile, others), &armyCardHolder, false},
		{"issuer dn", r("allow", KindIssuer, "cn=DOD ID CA-70, OU=PKI, OU=DoD, O=U.S. Government, C=US"), &armyCardHolder, true},
		{"issuer dn other", r("allow", KindIssuer, "CN=DOD ID CA-71,OU=PKI,OU=DoD,O=U.S. Government,C=US"), &armyCardHolder, false},
		{"issuer hash", r("allow", KindIssuer, hexSum(caSum)), &armyCardHolder, true},
		{"issuer hash with colons", r("allow", KindIssuer, colons(hexSum(caSum))), &armyCardHolder, true},
		{"issuer hash other", r("allow", KindIssuer, hexSum(otherCASum)), &armyCardHolder, false},
		{"issuer hash without verified CA", r("allow", KindIssuer, hexSum(caSum)), with(armyCardHolder, func(f *Facts) { f.IssuerSHA256 = "" }), false},
		{"policy", r("allow", KindPolicy, "2.16.840.1.101.3.2.1.3.13", "2.16.840.1.101.2.1.11.42"), &armyCardHolder, true},
		{"policy is exact", r("allow", KindPolicy, "2.16.840.1.101.2.1.11.420"), &armyCardHolder, false},
		{"policy prefix is not a match", r("allow", KindPolicy, "2.16.840.1.101.2.1.11"), &armyCardHolder, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := compile(t, tc.rule).Decide(tc.facts)
			if d.Allowed != tc.want {
				t.Fatalf("Decide = %+v, want allowed=%v", d, tc.want)
			}
			// The same rule as require behaves the same on one rule; as
			// deny, it is the opposite.
			if d := compile(t, Rule{EffectRequire, tc.rule.Kind, tc.rule.Values}).Decide(tc.facts); d.Allowed != tc.want {
				t.Errorf("as require: %+v", d)
			}
			if d := compile(t, Rule{EffectDeny, tc.rule.Kind, tc.rule.Values}).Decide(tc.facts); d.Allowed == tc.want {
				t.Errorf("as deny: %+v", d)
			} else if !d.Allowed && d.Reason != ReasonDenied {
				t.Errorf("deny reason %q", d.Reason)
			}
			if !d.Allowed && d.Reason != reasonOf(tc.rule.Kind) {
				t.Errorf("reason %q, want %q", d.Reason, reasonOf(tc.rule.Kind))
			}
		})
	}
}

func TestNoRulesAdmitsEveryone(t *testing.T) {
	p := compile(t)
	if !p.Empty() {
		t.Fatal("no rules but not Empty")
	}
	if d := p.Decide(&Facts{}); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	if d := p.Decide(&Facts{Card: false}); !d.Allowed {
		t.Fatalf("password sign-in: %+v", d)
	}
}

func TestDenyOverridesAllow(t *testing.T) {
	p := compile(t,
		r("allow", KindGroup, "ops-admins"),
		r("deny", KindGroup, "suspended"),
		r("allow", KindAffiliation, "Army"),
	)
	if d := p.Decide(&armyCardHolder); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	suspended := with(armyCardHolder, func(f *Facts) { f.Groups = []string{"ops-admins", "suspended"} })
	d := p.Decide(suspended)
	if d.Allowed || d.Reason != ReasonDenied || !slices.Equal(d.Rules, []string{"deny group suspended"}) {
		t.Fatalf("%+v", d)
	}
	// The person is not told which rule, nor anything about the group.
	if msg := d.Message(); strings.Contains(msg, "suspended") || msg != "An access rule of this site excludes your account." {
		t.Errorf("message %q", msg)
	}
	// Order does not matter.
	q := compile(t, r("deny", KindGroup, "suspended"), r("allow", KindGroup, "ops-admins"))
	if d := q.Decide(suspended); d.Allowed {
		t.Fatalf("deny first: %+v", d)
	}
}

func TestAllowIsOrRequireIsAnd(t *testing.T) {
	p := compile(t,
		r("require", KindPolicy, "2.16.840.1.101.2.1.11.42"),
		r("require", KindCategory, "Active Army"),
		r("allow", KindGroup, "ops-admins"),
		r("allow", KindAffiliation, "Army", "Air Force"),
	)
	if d := p.Decide(&armyCardHolder); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	// One allow is enough.
	navyAdmin := with(armyCardHolder, func(f *Facts) { f.Affiliation = "USN" })
	if d := p.Decide(navyAdmin); !d.Allowed {
		t.Fatalf("navy admin: %+v", d)
	}
	armyNoGroup := with(armyCardHolder, func(f *Facts) { f.Groups = nil })
	if d := p.Decide(armyNoGroup); !d.Allowed {
		t.Fatalf("army without group: %+v", d)
	}
	// No allow matches.
	navyNoGroup := with(armyCardHolder, func(f *Facts) { f.Groups = nil; f.Affiliation = "USN" })
	d := p.Decide(navyNoGroup)
	if d.Allowed || d.Reason != ReasonGroup {
		t.Fatalf("navy without group: %+v", d)
	}
	if want := "This site is limited to: members of group ops-admins, or Army or Air Force affiliation."; d.Message() != want {
		t.Errorf("message\n%q\nwant\n%q", d.Message(), want)
	}
	if want := []string{"allow group ops-admins", `allow affiliation Army "Air Force"`}; !slices.Equal(d.Rules, want) {
		t.Errorf("rules %q", d.Rules)
	}
	// Every require must hold: each failing one is named, requires first.
	noPolicyNoCategory := with(*navyNoGroup, func(f *Facts) {
		f.Policies = []asn1.ObjectIdentifier{oidPIVAuth}
		f.Categories = []string{"DA Civilian"}
	})
	d = p.Decide(noPolicyNoCategory)
	if d.Allowed || d.Reason != ReasonPolicy || len(d.Missing) != 3 {
		t.Fatalf("%+v", d)
	}
	if want := "This site is limited to: a card certificate with policy 2.16.840.1.101.2.1.11.42; roster category Active Army; members of group ops-admins, or Army or Air Force affiliation."; d.Message() != want {
		t.Errorf("message\n%q\nwant\n%q", d.Message(), want)
	}
	// A require failing alone refuses even when an allow matches.
	d = p.Decide(with(armyCardHolder, func(f *Facts) { f.Categories = nil }))
	if d.Allowed || d.Reason != ReasonCategory || !slices.Equal(d.Missing, []string{"roster category Active Army"}) {
		t.Fatalf("%+v", d)
	}
}

func TestPasswordSignInCannotMeetCertificateRules(t *testing.T) {
	password := with(armyCardHolder, func(f *Facts) {
		f.Card, f.CardEDIPI, f.IssuerDN, f.IssuerSHA256, f.Policies = false, "", "", "", nil
	})
	// Even with the issuer facts left in place, no card means no match.
	stale := with(armyCardHolder, func(f *Facts) { f.Card = false })
	for _, kind := range []string{KindIssuer, KindPolicy} {
		val := caDN
		if kind == KindPolicy {
			val = "2.16.840.1.101.2.1.11.42"
		}
		for _, effect := range []string{EffectAllow, EffectRequire, EffectDeny} {
			for _, f := range []*Facts{password, stale} {
				d := compile(t, r(effect, kind, val)).Decide(f)
				if d.Allowed || !d.NeedsCard || d.Reason != kind {
					t.Fatalf("%s %s: %+v", effect, kind, d)
				}
				if !strings.Contains(d.Message(), "CAC or PIV card") {
					t.Errorf("%s %s: message %q does not say a card is needed", effect, kind, d.Message())
				}
			}
		}
	}
	// Another allow the account meets still admits it.
	p := compile(t, r("allow", KindIssuer, caDN), r("allow", KindGroup, "ops"))
	if d := p.Decide(password); !d.Allowed {
		t.Fatalf("%+v", d)
	}
}

func TestDenyEDIPIMatchesTheCardToo(t *testing.T) {
	linkedElsewhere := with(armyCardHolder, func(f *Facts) { f.CardEDIPI = "9999999999" })
	if d := compile(t, r("deny", KindEDIPI, "9999999999")).Decide(linkedElsewhere); d.Allowed {
		t.Fatalf("deny on the card's DoD ID: %+v", d)
	}
	// Allow decides on the account's DoD ID only.
	if d := compile(t, r("allow", KindEDIPI, "9999999999")).Decide(linkedElsewhere); d.Allowed {
		t.Fatalf("allow on the card's DoD ID: %+v", d)
	}
}

func TestMessagesLeakNoDoDIDsOrPaths(t *testing.T) {
	file := writeFile(t, "secret-list.txt", "1111111111\n")
	p := compile(t, r("allow", KindEDIPI, "1111111112"), r("allow", KindEDIPIFile, file))
	d := p.Decide(&armyCardHolder)
	if d.Allowed || d.Reason != ReasonEDIPI {
		t.Fatalf("%+v", d)
	}
	msg := d.Message() + strings.Join(d.Missing, " ")
	for _, secret := range []string{"1111111111", "1111111112", "secret-list", t.TempDir()[:5]} {
		if strings.Contains(msg, secret) {
			t.Errorf("message %q contains %q", msg, secret)
		}
	}
	for _, rule := range d.Rules {
		if strings.Contains(rule, "1111111112") {
			t.Errorf("audit rule text %q lists a DoD ID", rule)
		}
	}
}

func TestIssuerPhrases(t *testing.T) {
	d := compile(t, r("allow", KindIssuer, caDN, "CN=DOD ID CA-71,OU=PKI,OU=DoD,O=U.S. Government,C=US")).Decide(
		with(armyCardHolder, func(f *Facts) { f.IssuerDN = "CN=ROGUE CA" }))
	if want := "cards issued by DOD ID CA-70 or DOD ID CA-71"; !slices.Equal(d.Missing, []string{want}) {
		t.Errorf("missing %q", d.Missing)
	}
	d = compile(t, r("allow", KindIssuer, hexSum(otherCASum))).Decide(&armyCardHolder)
	if want := "cards issued by a certificate authority this site accepts"; !slices.Equal(d.Missing, []string{want}) {
		t.Errorf("missing %q", d.Missing)
	}
}

func TestCompileErrors(t *testing.T) {
	bad := writeFile(t, "bad.txt", "1234567890\n12345\n")
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{r("permit", KindGroup, "a"), "effect must be allow, require or deny"},
		{r("allow", "role", "a"), `unknown kind "role"`},
		{r("allow", KindGroup), "at least one value"},
		{r("allow", KindGroup, " "), "empty value"},
		{r("allow", KindGroup, "Ops-Admins"), "not a valid group name"},
		{r("allow", KindEDIPI, "123456789"), "not a 10-digit DoD ID"},
		{r("allow", KindEDIPI, "12345678901"), "not a 10-digit DoD ID"},
		{r("allow", KindPolicy, "2.16.840.x"), "not a dotted OID"},
		{r("allow", KindPolicy, "42"), "not a dotted OID"},
		{r("allow", KindIssuer, "DOD ID CA-70"), "neither a distinguished name nor a SHA-256"},
		{r("deny", KindEDIPIFile, filepath.Join(t.TempDir(), "missing.txt")), "no such file"},
		{r("deny", KindEDIPIFile, bad), "line 2"},
		{r("deny", KindEDIPIFile, t.TempDir()), "not a regular file"},
	} {
		_, err := Compile([]Rule{r("allow", KindGroup, "fine"), tc.rule})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "access rule 2") {
			t.Errorf("%v: error %v, want it to mention %q and the rule number", tc.rule, err, tc.want)
		}
	}
}

func TestRuleString(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{r("allow", KindAffiliation, "Army", "Air Force"), `allow affiliation Army "Air Force"`},
		{r("deny", KindEDIPI, "1234567890", "1234567891"), "deny edipi [2 DoD IDs]"},
		{r("require", KindPolicy, "2.16.840.1.101.2.1.11.42"), "require policy 2.16.840.1.101.2.1.11.42"},
	} {
		if got := tc.rule.String(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}

func TestGrantedDecisionDoesNotAllocate(t *testing.T) {
	p := compile(t, r("deny", KindGroup, "suspended"), r("deny", KindEDIPI, "1111111111"), r("deny", KindEDIPIFile, writeFile(t, "banned", "1111111112\n")),
		r("allow", KindCategory, "Army Retired"), r("allow", KindAffiliation, "Army"), r("require", KindPolicy, "2.16.840.1.101.2.1.11.42"))
	f := armyCardHolder
	if n := testing.AllocsPerRun(100, func() {
		if !p.Decide(&f).Allowed {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("%v allocations per admitting decision", n)
	}
}

func TestDecideDenyIgnoresAllowAndRequire(t *testing.T) {
	p := compile(t, r("require", KindGroup, "ops-admins"), r("deny", KindEDIPI, "1234567891"))
	unenrolled := &Facts{Card: true, CardEDIPI: "1234567890", Affiliation: "USA"}
	if d := p.DecideDeny(unenrolled); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	if d := p.Decide(unenrolled); d.Allowed {
		t.Fatalf("Decide admitted without the group: %+v", d)
	}
	banned := &Facts{Card: true, CardEDIPI: "1234567891"}
	if d := p.DecideDeny(banned); d.Allowed || d.Reason != ReasonDenied {
		t.Fatalf("%+v", d)
	}
}

func hexSum(s [32]byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range s {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

func colons(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, strings.ToUpper(h[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
