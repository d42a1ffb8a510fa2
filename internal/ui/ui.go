// Package ui renders the pages the gateway serves to people: a shared,
// accessible layout (no JavaScript, no external assets) plus "problem"
// responses that are HTML for browsers and JSON for API clients.
//
// Feature packages (consent, enroll) keep their own page templates and parse
// them on top of the layout with ParsePage, so every page looks and behaves
// the same and carries the same security headers.
package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// Prefix is the reserved path prefix under which the gateway serves its own
// pages. Requests below it never reach the protected application.
const Prefix = "/.cacgate/"

// StylesheetPath is where the layout expects the shared stylesheet.
const StylesheetPath = Prefix + "assets/style.css"

// CertificatesPath is the public page offering the CA certificates the
// site trusts (the refusal pages for a missing or untrusted card link it).
const CertificatesPath = Prefix + "certificates"

// CertificatesLink is the way forward to CertificatesPath.
var CertificatesLink = Link{Text: "Get the DoD certificates this site uses (if your browser does not offer your card or does not trust this site)", Href: CertificatesPath}

//go:embed templates/*.html
var layoutFS embed.FS

//go:embed assets
var assetsFS embed.FS

var base = template.Must(template.New("ui").Funcs(funcs).ParseFS(layoutFS, "templates/*.html"))

var funcs = template.FuncMap{
	// stylesheet keeps the asset path in one place.
	"stylesheet": func() string { return StylesheetPath },
	// slot marks where the chrome (announcements, help desk) goes.
	"slot": slot,
}

// ParsePage returns the layout combined with the page templates in files
// (read from fsys). Each page file defines "title" and "content".
func ParsePage(fsys fs.FS, files ...string) (*template.Template, error) {
	t, err := base.Clone()
	if err != nil {
		return nil, err
	}
	return t.ParseFS(fsys, files...)
}

// ParsePageFuncs is ParsePage with more template functions for the page
// templates.
func ParsePageFuncs(fsys fs.FS, fn template.FuncMap, files ...string) (*template.Template, error) {
	t, err := base.Clone()
	if err != nil {
		return nil, err
	}
	return t.Funcs(fn).ParseFS(fsys, files...)
}

// MustParsePage is ParsePage for package-level templates known at build time.
func MustParsePage(fsys fs.FS, files ...string) *template.Template {
	return template.Must(ParsePage(fsys, files...))
}

// Assets returns the embedded static files (the stylesheet), rooted so that
// "style.css" is at the top.
func Assets() fs.FS {
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}

// WantsHTML reports whether the client is a browser that asked for a page,
// as opposed to an API client that should get JSON.
func WantsHTML(r *http.Request) bool {
	for _, accept := range r.Header.Values("Accept") {
		if strings.Contains(accept, "text/html") {
			return true
		}
	}
	return false
}

// SetSecurityHeaders marks a gateway response as private, non-cacheable and
// not frameable, and restricts it to same-origin styles and form targets.
func SetSecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// WriteHTML renders the named template (normally "layout") into a buffer
// first, so a template error never produces half a page, then writes it.
func WriteHTML(w http.ResponseWriter, status int, t *template.Template, data any) error {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return fmt.Errorf("rendering page: %w", err)
	}
	page, err := fillSlots(buf.Bytes(), w)
	if err != nil {
		return fmt.Errorf("rendering page: %w", err)
	}
	h := w.Header()
	SetSecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	_, err = w.Write(page)
	return err
}

// WriteJSON writes v as a JSON response with the gateway's security headers.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	SetSecurityHeaders(h)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, err = w.Write(append(body, '\n'))
	return err
}
