package ui

import (
	"html/template"
	"net/http"
)

// Problem is a refusal explained to the person (or program) that hit it.
// Detail and Steps are shown verbatim, so they must never carry internals:
// no stack traces, SQL, file paths or other people's data.
type Problem struct {
	Status  int      // HTTP status code
	Code    string   // stable machine-readable code, e.g. "certificate_required"
	Title   string   // short heading
	Detail  string   // one or two sentences: what happened
	Steps   []string // what the person can do about it
	Contact string   // whom to contact (site's "contact" option), may be empty
	Retry   bool     // for 503-type problems: worth trying again later
	Links   []Link   // other ways forward, e.g. a password sign-in
}

// Link is a way forward offered on a problem page.
type Link struct {
	Text, Href string
}

// problemJSON is the API-client shape of a Problem.
type problemJSON struct {
	Error   string   `json:"error"`
	Message string   `json:"message"`
	Steps   []string `json:"steps,omitempty"`
	Contact string   `json:"contact,omitempty"`
}

var problemPage = template.Must(template.Must(base.Clone()).Parse(`{{define "title"}}{{.Title}}{{end}}{{define "content"}}{{template "problem" .}}{{end}}`))

// WriteProblem answers with p: an HTML page when the client asked for one,
// JSON otherwise.
func WriteProblem(w http.ResponseWriter, r *http.Request, p Problem) error {
	if WantsHTML(r) {
		return WriteHTML(w, p.Status, problemPage, p)
	}
	return WriteJSON(w, p.Status, problemJSON{Error: p.Code, Message: p.Detail, Steps: p.Steps, Contact: p.Contact})
}

// ProblemNotRegistered is the answer for a card that maps to no account
// where no enrollment can help (an API client, or a site without
// self-enrollment): the gateway's refusal and the enrollment page's.
func ProblemNotRegistered(contact string) Problem {
	return Problem{
		Status:  http.StatusForbidden,
		Code:    "not_registered",
		Title:   "Your card is not registered",
		Detail:  "This card is not registered to an account on this site.",
		Contact: contact,
	}
}

// SeeOther redirects (303) with the gateway's security headers.
func SeeOther(w http.ResponseWriter, location string) error {
	SetSecurityHeaders(w.Header())
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
	return nil
}

// RetryAfterStore is the Retry-After (seconds) of an answer refused because
// the account database could not serve it: soon enough to notice it is
// back, far enough apart not to add load while it recovers.
const RetryAfterStore = "30"

// CodeStoreUnavailable is the problem code of a request refused because
// the account database could not serve it, whichever page refused it.
const CodeStoreUnavailable = "account_service_unavailable"

// ProblemStoreUnavailable is the answer for a request the account database
// could not serve (send it with Retry-After: RetryAfterStore): 503, what
// was not done (nothing, such as "No account was created."), and to try
// again in a minute. It never says why the database failed: that is for
// the log and the administrators.
func ProblemStoreUnavailable(title, detail, nothing, contact string) Problem {
	if nothing != "" {
		detail += " " + nothing
	}
	return Problem{
		Status:  http.StatusServiceUnavailable,
		Code:    CodeStoreUnavailable,
		Title:   title,
		Detail:  detail,
		Steps:   []string{"Wait a minute, then try again."},
		Contact: contact,
		Retry:   true,
	}
}
