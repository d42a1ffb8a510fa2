package credential_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
)

func TestNormalizeAnswer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Mrs   SMITH ", "mrs smith"},
		{"Fluffy", "fluffy"},
		{"\tFort\n Bragg\u00a0NC ", "fort bragg nc"},
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := credential.NormalizeAnswer(tt.in); got != tt.want {
			t.Errorf("NormalizeAnswer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckAnswer(t *testing.T) {
	tests := []struct {
		answer string
		ok     bool
	}{
		{"abc", false},
		{"abcd", true},
		{"  abc  ", false},   // three characters once trimmed
		{"a       b", false}, // three characters once spaces collapse
		{"a b c", true},
		{strings.Repeat("a", 49), true},
		{strings.Repeat("a", 50), false},
		{"  " + strings.Repeat("a", 49) + "  ", true},
		{"Fort Bragg 1999", true},
		{"O'Brien", false},
		{"Mrs. Smith", false},
		{"smith-jones", false},
		{"José Cruz", false},
		{"\xff\xfe\xfd\xfc", false},
		{"", false},
		{"    ", false},
	}
	for _, tt := range tests {
		got := credential.CheckAnswer(tt.answer)
		if (got == "") != tt.ok {
			t.Errorf("CheckAnswer(%q) = %q, want acceptable=%v", tt.answer, got, tt.ok)
		}
		if a := strings.TrimSpace(tt.answer); len(a) >= 4 && strings.Contains(strings.ToLower(got), strings.ToLower(a)) {
			t.Errorf("CheckAnswer(%q) = %q echoes the answer", tt.answer, got)
		}
	}
}

func TestCheckQuestions(t *testing.T) {
	ids := credential.Questions()
	q0, q1, q2 := ids[0].ID, ids[1].ID, ids[2].ID
	valid := func() []credential.AnswerPick {
		return []credential.AnswerPick{
			{q0, "Mrs Smith", "Mrs Smith"},
			{q1, "Fluffy", "Fluffy"},
			{q2, "Danny", "Danny"},
		}
	}
	type keys = []credential.FieldKey
	question := func(slot int) credential.FieldKey {
		return credential.FieldKey{Slot: slot, Field: credential.FieldQuestion}
	}
	answer := func(slot int) credential.FieldKey {
		return credential.FieldKey{Slot: slot, Field: credential.FieldAnswer}
	}
	confirm := func(slot int) credential.FieldKey {
		return credential.FieldKey{Slot: slot, Field: credential.FieldConfirm}
	}

	tests := []struct {
		name   string
		modify func(p []credential.AnswerPick) []credential.AnswerPick
		want   keys
	}{
		{"valid", func(p []credential.AnswerPick) []credential.AnswerPick { return p }, nil},
		{"duplicate question", func(p []credential.AnswerPick) []credential.AnswerPick { p[2].QuestionID = q0; return p }, keys{question(2)}},
		{"all the same question", func(p []credential.AnswerPick) []credential.AnswerPick {
			p[1].QuestionID, p[2].QuestionID = q0, q0
			return p
		}, keys{question(1), question(2)}},
		{"unknown question", func(p []credential.AnswerPick) []credential.AnswerPick { p[0].QuestionID = "shoe-size"; return p }, keys{question(0)}},
		{"no question", func(p []credential.AnswerPick) []credential.AnswerPick { p[1].QuestionID = ""; return p }, keys{question(1)}},
		{"answer of 3", func(p []credential.AnswerPick) []credential.AnswerPick {
			p[1] = credential.AnswerPick{q1, "Rex", "Rex"}
			return p
		}, keys{answer(1)}},
		{"answer of 4", func(p []credential.AnswerPick) []credential.AnswerPick {
			p[1] = credential.AnswerPick{q1, "Rexy", "Rexy"}
			return p
		}, nil},
		{"answer of 49", func(p []credential.AnswerPick) []credential.AnswerPick {
			a := strings.Repeat("b", 49)
			p[1] = credential.AnswerPick{q1, a, a}
			return p
		}, nil},
		{"answer of 50", func(p []credential.AnswerPick) []credential.AnswerPick {
			a := strings.Repeat("b", 50)
			p[1] = credential.AnswerPick{q1, a, a}
			return p
		}, keys{answer(1)}},
		{"non-alphanumeric answer", func(p []credential.AnswerPick) []credential.AnswerPick {
			p[0] = credential.AnswerPick{q0, "O'Brien", "O'Brien"}
			return p
		}, keys{answer(0)}},
		{"confirm differs in case and spacing", func(p []credential.AnswerPick) []credential.AnswerPick {
			p[0].Confirm = "  mrs   SMITH "
			return p
		}, nil},
		{"confirm mismatch", func(p []credential.AnswerPick) []credential.AnswerPick { p[0].Confirm = "Mrs Smyth"; return p }, keys{confirm(0)}},
		{"confirm empty", func(p []credential.AnswerPick) []credential.AnswerPick { p[2].Confirm = ""; return p }, keys{confirm(2)}},
		{"bad answer hides confirm", func(p []credential.AnswerPick) []credential.AnswerPick {
			p[2] = credential.AnswerPick{q2, "Al", "Bo"}
			return p
		}, keys{answer(2)}},
		{"two picks", func(p []credential.AnswerPick) []credential.AnswerPick { return p[:2] }, keys{question(2), answer(2)}},
		{"no picks", func([]credential.AnswerPick) []credential.AnswerPick { return nil },
			keys{question(0), answer(0), question(1), answer(1), question(2), answer(2)}},
		{"four picks", func(p []credential.AnswerPick) []credential.AnswerPick {
			return append(p, credential.AnswerPick{ids[3].ID, "Extra", "Extra"})
		}, keys{question(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			picks := tt.modify(valid())
			got := credential.CheckQuestions(picks)
			gotKeys := map[credential.FieldKey]bool{}
			for k := range maps.Keys(got) {
				gotKeys[k] = true
			}
			wantKeys := map[credential.FieldKey]bool{}
			for _, k := range tt.want {
				wantKeys[k] = true
			}
			if !maps.Equal(gotKeys, wantKeys) {
				t.Fatalf("CheckQuestions = %v, want problems at %v", got, tt.want)
			}
			for k, sentence := range got {
				if sentence == "" {
					t.Errorf("empty sentence at %v", k)
				}
				for _, p := range picks {
					if a := strings.TrimSpace(p.Answer); len(a) >= 4 && strings.Contains(sentence, a) {
						t.Errorf("sentence %q at %v echoes an answer", sentence, k)
					}
				}
			}
		})
	}
}
