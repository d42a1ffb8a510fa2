package ui

import (
	"html/template"
	"net/http"
)

// Notice is a page that is not a refusal: a confirmation such as "you have
// signed out", optionally with one button that posts back to the gateway.
type Notice struct {
	Status     int    // HTTP status code, normally 200
	Code       string // stable machine-readable status for API clients, e.g. "signed_out"
	Title      string
	Paragraphs []string
	Form       *NoticeForm // nil for none
	Links      []Link
}

// NoticeForm is a button-only form. It carries no token of its own: the
// gateway endpoints it targets check the request's origin instead.
type NoticeForm struct {
	Action, Button string
}

// noticeJSON is the API-client shape of a Notice.
type noticeJSON struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var noticePage = template.Must(template.Must(base.Clone()).Parse(`{{define "title"}}{{.Title}}{{end}}{{define "content"}}{{template "notice" .}}{{end}}`))

// WriteNotice answers with n: an HTML page when the client asked for one,
// JSON otherwise.
func WriteNotice(w http.ResponseWriter, r *http.Request, n Notice) error {
	if WantsHTML(r) {
		return WriteHTML(w, n.Status, noticePage, n)
	}
	msg := n.Title
	if len(n.Paragraphs) > 0 {
		msg = n.Paragraphs[0]
	}
	return WriteJSON(w, n.Status, noticeJSON{Status: n.Code, Message: msg})
}
