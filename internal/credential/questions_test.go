package credential_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
)

func TestQuestions(t *testing.T) {
	qs := credential.Questions()
	if len(qs) < 10 {
		t.Fatalf("only %d questions; people need a real choice", len(qs))
	}
	slug := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	ids := map[string]bool{}
	texts := map[string]bool{}
	for _, q := range qs {
		if !slug.MatchString(q.ID) {
			t.Errorf("ID %q is not a short slug", q.ID)
		}
		if ids[q.ID] {
			t.Errorf("duplicate ID %q", q.ID)
		}
		if texts[q.Text] {
			t.Errorf("duplicate text %q", q.Text)
		}
		ids[q.ID], texts[q.Text] = true, true
		if !strings.HasSuffix(q.Text, "?") {
			t.Errorf("question %q is not a question", q.Text)
		}
		got, ok := credential.QuestionByID(q.ID)
		if !ok || got != q {
			t.Errorf("QuestionByID(%q) = %v, %v; want %v, true", q.ID, got, ok, q)
		}
	}
	if _, ok := credential.QuestionByID("mothers-maiden-name"); ok {
		t.Error("QuestionByID found an ID that is not in the catalogue")
	}
	if _, ok := credential.QuestionByID(""); ok {
		t.Error("QuestionByID found the empty ID")
	}
}

func TestQuestionsIsACopy(t *testing.T) {
	qs := credential.Questions()
	first := qs[0]
	qs[0] = credential.Question{ID: "changed", Text: "Changed?"}
	if got := credential.Questions()[0]; got != first {
		t.Errorf("changing the returned slice changed the catalogue: %v", got)
	}
	if credential.Questions()[0] != first {
		t.Error("Questions order is not stable")
	}
}
