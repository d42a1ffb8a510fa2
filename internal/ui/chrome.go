package ui

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The chrome is what every page shows around its own content: the
// announcements in force (outages, notices) and the site's help-desk
// block. The gateway hands it to the pages on the ResponseWriter
// (WithChrome), so that every page, refusals included, shows the same
// without each page's data carrying it; WriteHTML puts it in the layout's
// slots.

// Announcement is a notice shown at the top of every page between Start
// and End. Message is plain text, always escaped.
type Announcement struct {
	Severity string // "info" or "outage"
	Message  string
	Start    time.Time
	End      time.Time
}

// Outage reports whether the announcement is an outage notice.
func (a Announcement) Outage() bool { return a.Severity == "outage" }

// HelpDesk is whom a person who is stuck can ask: the site's help desk.
// Every field is optional; URL is an http(s) address and Email a plain
// address (the config checks both).
type HelpDesk struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
	Hours string `json:"hours,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Empty reports whether no field is set.
func (h *HelpDesk) Empty() bool {
	return h == nil || (h.Name == "" && h.Phone == "" && h.Email == "" && h.Hours == "" && h.URL == "")
}

// Summary is the help desk in one line ("Service Desk, 555-0100,
// help@example.mil"), for the pages and JSON answers that name a contact
// in a sentence.
func (h *HelpDesk) Summary() string {
	if h == nil {
		return ""
	}
	var parts []string
	for _, p := range []string{h.Name, h.Phone, h.Email} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 && h.URL != "" {
		parts = append(parts, h.URL)
	}
	return strings.Join(parts, ", ")
}

// PhoneHref is a tel: link for the phone number, or "" when it has no
// digits to dial.
func (h *HelpDesk) PhoneHref() template.URL {
	var b strings.Builder
	for i, r := range h.Phone {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return template.URL("tel:" + b.String())
}

// MailHref is a mailto: link for the e-mail address.
func (h *HelpDesk) MailHref() string {
	return "mailto:" + (&url.URL{Opaque: h.Email}).String()
}

// Chrome is what a page shows around its content.
type Chrome struct {
	Announcements []Announcement
	HelpDesk      *HelpDesk
	// Now decides which announcements are in force.
	Now time.Time
}

// Current returns the announcements in force at c.Now: started, not
// ended. Those that ended disappear by themselves.
func (c Chrome) Current() []Announcement {
	var out []Announcement
	for _, a := range c.Announcements {
		if !c.Now.Before(a.Start) && c.Now.Before(a.End) {
			out = append(out, a)
		}
	}
	return out
}

// chromeWriter carries a page's chrome to WriteHTML.
type chromeWriter struct {
	http.ResponseWriter
	chrome func() Chrome
}

func (c *chromeWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// WithChrome returns w carrying the chrome that chrome returns (called
// once per page written, not per request): every page WriteHTML writes
// to it shows the announcements and the help desk.
func WithChrome(w http.ResponseWriter, chrome func() Chrome) http.ResponseWriter {
	if _, ok := w.(*chromeWriter); ok {
		return w
	}
	return &chromeWriter{ResponseWriter: w, chrome: chrome}
}

// The layout's slots: markers no escaped value can produce (a value's '<'
// is escaped), replaced by WriteHTML.
const (
	slotAnnouncements = "<!--cacgate:announcements-->"
	slotHelpDesk      = "<!--cacgate:help-desk-->"
)

var slots = map[string]template.HTML{"announcements": slotAnnouncements, "help-desk": slotHelpDesk}

func slot(name string) template.HTML { return slots[name] }

var chromeTemplates = template.Must(template.New("chrome").Parse(`
{{- define "announcements"}}{{with .Current}}
<section class="announcements" aria-label="Announcements">
{{- range .}}
<div class="announcement{{if .Outage}} outage{{end}}">
<p><strong>{{if .Outage}}Outage{{else}}Notice{{end}}:</strong> <span class="announcement-text">{{.Message}}</span></p>
</div>
{{- end}}
</section>
{{- end}}{{end}}
{{- define "help-desk"}}{{with .HelpDesk}}{{if not .Empty}}
<aside class="help-desk" aria-labelledby="help-desk-title">
<h2 id="help-desk-title">Need help?</h2>
<dl class="card-facts">
{{- if .Name}}<dt>Contact</dt><dd>{{.Name}}</dd>{{end}}
{{- if .Phone}}<dt>Phone</dt><dd>{{with .PhoneHref}}<a href="{{.}}">{{end}}{{.Phone}}{{if .PhoneHref}}</a>{{end}}</dd>{{end}}
{{- if .Email}}<dt>E-mail</dt><dd><a href="{{.MailHref}}">{{.Email}}</a></dd>{{end}}
{{- if .Hours}}<dt>Hours</dt><dd>{{.Hours}}</dd>{{end}}
{{- if .URL}}<dt>Web</dt><dd><a href="{{.URL}}">{{.URL}}</a></dd>{{end}}
</dl>
</aside>
{{- end}}{{end}}{{end}}`))

// fillSlots puts the chrome in a rendered page's slots, or empties them.
func fillSlots(page []byte, w http.ResponseWriter) ([]byte, error) {
	var c Chrome
	if cw, ok := w.(*chromeWriter); ok && cw.chrome != nil {
		c = cw.chrome()
	}
	var ann, help bytes.Buffer
	if err := chromeTemplates.ExecuteTemplate(&ann, "announcements", c); err != nil {
		return nil, err
	}
	if err := chromeTemplates.ExecuteTemplate(&help, "help-desk", c); err != nil {
		return nil, err
	}
	page = bytes.Replace(page, []byte(slotAnnouncements), ann.Bytes(), 1)
	return bytes.Replace(page, []byte(slotHelpDesk), help.Bytes(), 1), nil
}
