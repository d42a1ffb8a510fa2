package oidcop

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"

	"github.com/cacgate/cacgate/internal/ui"
)

// The gateway's pages forbid their forms to lead anywhere but the
// gateway (Content-Security-Policy form-action 'self'), and browsers hold
// every redirect that follows a form's submission to that: the banner's
// "I Accept", a password sign-in or a sign-out that ends in a redirect to
// a relying party would be stopped there. When the request came from the
// gateway's own pages (Sec-Fetch-Site: same-origin), the redirect is
// answered instead with a page that continues by itself (a meta refresh,
// no script) and offers the link; other clients get the plain redirect.

var continuePage = template.Must(template.New("continue").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0;url={{.}}">
<title>Returning to the application</title>
</head>
<body>
<main>
<h1>Returning to the application</h1>
<p><a href="{{.}}">Continue to the application</a></p>
</main>
</body>
</html>
`))

// continueWriter turns a redirect into the continue page.
type continueWriter struct {
	http.ResponseWriter
	swallow bool
}

// NavigationWriter returns w, or for a request that came from the
// gateway's own pages a writer that answers a redirect with the continue
// page.
func NavigationWriter(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		return w
	}
	return &continueWriter{ResponseWriter: w}
}

func (c *continueWriter) WriteHeader(code int) {
	loc := c.Header().Get("Location")
	if c.swallow || (code != http.StatusFound && code != http.StatusSeeOther) || loc == "" {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	var buf bytes.Buffer
	if err := continuePage.Execute(&buf, loc); err != nil {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	h := c.Header()
	h.Del("Location")
	ui.SetSecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	c.ResponseWriter.WriteHeader(http.StatusOK)
	_, _ = c.ResponseWriter.Write(buf.Bytes())
	c.swallow = true
}

func (c *continueWriter) Write(b []byte) (int, error) {
	if c.swallow {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}
