package credential

import "strings"

// Answer lengths, counted after normalization: DCO's "greater than 3
// characters and less than 50 characters". Counting the normalized form
// means the rule applies to what is actually hashed and compared, so
// "a      b" cannot pass as six characters when it is compared as three.
const (
	minAnswerLen = 4
	maxAnswerLen = 49
)

// Field names of a CheckQuestions problem, matching the form's inputs.
const (
	FieldQuestion = "question"
	FieldAnswer   = "answer"
	FieldConfirm  = "confirm"
)

// AnswerPick is one slot of the security-question form: the chosen
// question's ID, the answer, and the answer typed again.
type AnswerPick struct {
	QuestionID, Answer, Confirm string
}

// FieldKey locates a problem on the form: Slot is the index in the picks
// given to CheckQuestions (from 0) and Field one of FieldQuestion,
// FieldAnswer and FieldConfirm.
type FieldKey struct {
	Slot  int
	Field string
}

// NormalizeAnswer returns the form of an answer that is hashed and compared:
// surrounding whitespace removed, each run of whitespace made a single space,
// letters lowercased. People remember what they answered, not how they
// capitalised or spaced it.
func NormalizeAnswer(a string) string {
	return strings.ToLower(strings.Join(strings.Fields(a), " "))
}

// CheckAnswer returns "" when an answer is acceptable, otherwise one
// sentence for the form saying what to change; it never repeats the answer.
//
// An answer is ASCII letters, digits and spaces, 4 to 49 characters after
// normalization. Letters are limited to ASCII because the same accented
// letter can arrive from different keyboards as different code points, and
// an answer that silently stops matching locks a person out of recovery.
func CheckAnswer(a string) string {
	n := NormalizeAnswer(a)
	switch {
	case n == "":
		return "Enter an answer."
	case !isAnswerText(n):
		return "Use only letters (A–Z), digits (0–9) and spaces."
	case len(n) < minAnswerLen: // bytes are characters: isAnswerText allows only ASCII
		return "Use at least 4 characters."
	case len(n) > maxAnswerLen:
		return "Use no more than 49 characters."
	}
	return ""
}

func isAnswerText(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == ' ':
		default:
			return false
		}
	}
	return true
}

// CheckQuestions validates the security-question form: QuestionsRequired
// picks of different questions from the catalogue, each answer acceptable to
// CheckAnswer and each confirmation equal to its answer after normalization.
// It returns one sentence per problem keyed by where it goes on the form, or
// nil when the picks are acceptable. No sentence repeats an answer.
func CheckQuestions(picks []AnswerPick) map[FieldKey]string {
	var problems map[FieldKey]string
	report := func(slot int, field, sentence string) {
		if problems == nil {
			problems = make(map[FieldKey]string)
		}
		problems[FieldKey{Slot: slot, Field: field}] = sentence
	}

	if len(picks) > QuestionsRequired {
		// Only a tampered form sends more; one problem, not one per extra
		// pick, so a hostile request cannot make the result arbitrarily big.
		report(QuestionsRequired, FieldQuestion, "Choose exactly three questions.")
	}
	chosen := make(map[string]bool, QuestionsRequired)
	for slot := range QuestionsRequired {
		var pick AnswerPick
		if slot < len(picks) {
			pick = picks[slot]
		}
		switch _, known := QuestionByID(pick.QuestionID); {
		case pick.QuestionID == "":
			report(slot, FieldQuestion, "Choose a question.")
		case !known:
			report(slot, FieldQuestion, "Choose a question from the list.")
		case chosen[pick.QuestionID]:
			report(slot, FieldQuestion, "Choose a question you have not already chosen.")
		default:
			chosen[pick.QuestionID] = true
		}
		if problem := CheckAnswer(pick.Answer); problem != "" {
			// A confirmation cannot be judged against an answer that must
			// change anyway; asking for both at once would only add noise.
			report(slot, FieldAnswer, problem)
			continue
		}
		if NormalizeAnswer(pick.Confirm) != NormalizeAnswer(pick.Answer) {
			report(slot, FieldConfirm, "The two answers do not match.")
		}
	}
	return problems
}
