package credential

import "slices"

// Question is a security question a person may choose at enrollment. ID is
// what gets stored next to the answer's hash, so IDs never change once
// published; Text may be reworded as long as it asks the same thing.
type Question struct {
	ID   string
	Text string
}

// questions is the catalogue, in the order the form lists them. The
// questions ask for things that are memorable, stable over a career and not
// found in a personnel file, a social-media profile or public records: so no
// mother's maiden name, birthplace, school the Army sent you to or first
// duty station. Each asks for a short word or name, which fits the answer
// rules (letters, digits and spaces).
var questions = []Question{
	{"favorite-teacher", "What is the last name of your favorite teacher?"},
	{"first-pet", "What was the name of your first pet?"},
	{"childhood-friend", "What is the first name of your best friend in childhood?"},
	{"childhood-street", "What was the name of the street you lived on as a child?"},
	{"first-car", "What was the make and model of your first car?"},
	{"first-employer", "What was the name of your first employer?"},
	{"elementary-school", "What was the name of your elementary school?"},
	{"oldest-cousin", "What is the first name of your oldest cousin?"},
	{"parents-met-city", "In what city did your parents meet?"},
	{"first-concert", "Who performed at the first concert you attended?"},
	{"childhood-hero", "Who was your childhood hero?"},
	{"favorite-book", "What is the title of your favorite childhood book?"},
}

// QuestionsRequired is how many different questions a person answers.
const QuestionsRequired = 3

// Questions returns the catalogue in a stable order. The slice is a copy,
// so callers may reorder or filter it.
func Questions() []Question {
	return slices.Clone(questions)
}

// QuestionByID returns the question with the given ID, and false when there
// is none (an ID from a tampered form, or one retired from the catalogue).
func QuestionByID(id string) (Question, bool) {
	i := slices.IndexFunc(questions, func(q Question) bool { return q.ID == id })
	if i < 0 {
		return Question{}, false
	}
	return questions[i], true
}
