package credential_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
)

// pw builds a password of n characters that satisfies every class rule:
// "Aa!" followed by lowercase filler.
func pw(n int) string { return "Aa!" + strings.Repeat("x", n-3) }

func TestPasswordPolicyCheck(t *testing.T) {
	// Keywords identify which rule each returned sentence is, in Rules order.
	const (
		length  = "characters."
		upper   = "uppercase"
		lower   = "lowercase"
		special = "special character ("
		digit   = "digit"
		only    = "Use only"
		name    = "username"
	)
	user := []string{"john.q.doe13", "JOHN", "QUINCY", "DOE"}
	tests := []struct {
		name      string
		policy    credential.PasswordPolicy
		password  string
		forbidden []string
		want      []string
	}{
		{"14 characters", credential.PasswordPolicy{}, pw(14), nil, []string{length}},
		{"15 characters", credential.PasswordPolicy{}, pw(15), nil, nil},
		{"20 characters", credential.PasswordPolicy{}, pw(20), nil, nil},
		{"21 characters", credential.PasswordPolicy{}, pw(21), nil, []string{length}},
		{"empty", credential.PasswordPolicy{}, "", nil, []string{length, upper, lower, special}},
		{"no uppercase", credential.PasswordPolicy{}, "aa!xxxxxxxxxxxxx", nil, []string{upper}},
		{"no lowercase", credential.PasswordPolicy{}, "AA!XXXXXXXXXXXXX", nil, []string{lower}},
		{"no special", credential.PasswordPolicy{}, "Aaxxxxxxxxxxxxxx", nil, []string{special}},
		{"every special counts", credential.PasswordPolicy{}, "Aa" + credential.Specials + "x", nil, nil},
		{"space", credential.PasswordPolicy{}, "Aa! xxxxxxxxxxxxx", nil, []string{only}},
		{"hash sign", credential.PasswordPolicy{}, "Aa!#xxxxxxxxxxxxx", nil, []string{only}},
		{"hyphen", credential.PasswordPolicy{}, "Aa!-xxxxxxxxxxxxx", nil, []string{only}},
		{"non-ASCII letter", credential.PasswordPolicy{}, "Aa!éxxxxxxxxxxxxx", nil, []string{only}},
		{"invalid UTF-8", credential.PasswordPolicy{}, "Aa!\xffxxxxxxxxxxxxx", nil, []string{only}},
		{"digit optional", credential.PasswordPolicy{}, pw(16), nil, nil},
		{"digit allowed", credential.PasswordPolicy{}, pw(15) + "7", nil, nil},
		{"digit required, missing", credential.PasswordPolicy{RequireDigit: true}, pw(16), nil, []string{digit}},
		{"digit required, present", credential.PasswordPolicy{RequireDigit: true}, pw(15) + "7", nil, nil},
		{"custom lengths", credential.PasswordPolicy{MinLength: 8, MaxLength: 64}, pw(8), nil, nil},
		{"custom max", credential.PasswordPolicy{MinLength: 8, MaxLength: 64}, pw(65), nil, []string{length}},
		{"max below min raised", credential.PasswordPolicy{MinLength: 25, MaxLength: 0}, pw(25), nil, nil},
		{"whole username", credential.PasswordPolicy{}, "Aa!John.Q.Doe13xx", user, []string{name}},
		{"first name any case", credential.PasswordPolicy{}, "Aa!xxjOhNxxxxxxx", user, []string{name}},
		{"middle name", credential.PasswordPolicy{}, "Aa!xQuincyxxxxxx", user, []string{name}},
		{"last name", credential.PasswordPolicy{}, "Aa!xxxxxxxxxxDOE", user, []string{name}},
		{"username piece", credential.PasswordPolicy{}, "Aa!xxdoe13xxxxxx", user, []string{name}},
		{"initial ignored", credential.PasswordPolicy{}, "Aa!qqqqqqqqqqqqq", user, nil},
		{"two-letter name ignored", credential.PasswordPolicy{}, "Aa!lilililililili", []string{"LI", "jo.li"}, nil},
		{"short pieces, whole username", credential.PasswordPolicy{}, "Aa!j.q.dxxxxxxxx", []string{"j.q.d"}, []string{name}},
		{"apostrophe joins", credential.PasswordPolicy{}, "Aa!xobrienxxxxxx", []string{"O'BRIEN-SMITH"}, []string{name}},
		{"hyphen separates", credential.PasswordPolicy{}, "Aa!xxSmithxxxxxx", []string{"O'BRIEN-SMITH"}, []string{name}},
		{"blank forbidden values", credential.PasswordPolicy{}, pw(16), []string{"", "  "}, nil},
		{"several rules at once", credential.PasswordPolicy{RequireDigit: true}, "doe doe", user,
			[]string{length, upper, special, digit, only, name}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.policy.Check(tt.password, tt.forbidden...)
			if len(got) != len(tt.want) {
				t.Fatalf("Check = %q, want rules %q", got, tt.want)
			}
			for i, sentence := range got {
				if !strings.Contains(sentence, tt.want[i]) {
					t.Errorf("sentence %d = %q, want it about %q", i, sentence, tt.want[i])
				}
			}
			rules := tt.policy.Rules()
			for _, sentence := range got {
				if !slices.Contains(rules, sentence) {
					t.Errorf("Check sentence %q is not among Rules()", sentence)
				}
				if len(tt.password) >= 4 && strings.Contains(sentence, tt.password) {
					t.Errorf("sentence %q echoes the password", sentence)
				}
			}
		})
	}
}

func TestPasswordPolicyRules(t *testing.T) {
	rules := credential.PasswordPolicy{}.Rules()
	all := strings.Join(rules, "\n")
	for _, want := range []string{"15 to 20 characters", "! @ $ % ^ & * _ + = . ~", "uppercase", "lowercase", "username"} {
		if !strings.Contains(all, want) {
			t.Errorf("Rules() = %q, want a mention of %q", rules, want)
		}
	}
	if strings.Contains(all, "at least one digit") {
		t.Errorf("Rules() requires a digit by default: %q", rules)
	}
	withDigit := strings.Join(credential.PasswordPolicy{RequireDigit: true}.Rules(), "\n")
	if !strings.Contains(withDigit, "at least one digit") {
		t.Errorf("Rules() with RequireDigit does not ask for a digit: %q", withDigit)
	}
	exact := strings.Join(credential.PasswordPolicy{MinLength: 16, MaxLength: 16}.Rules(), "\n")
	if !strings.Contains(exact, "exactly 16 characters") {
		t.Errorf("Rules() with equal lengths = %q, want \"exactly 16 characters\"", exact)
	}
}
