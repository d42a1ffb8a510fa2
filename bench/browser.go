package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Headers of the measured requests: what a browser sends to a legacy app,
// with the consent cookie among other cookies.
const (
	benchPath      = "/app/page?id=42"
	consentCookie  = "__Host-cacgate-consent"
	browserAccept  = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	browserAgent   = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	browserLang    = "en-US,en;q=0.5"
	formContent    = "application/x-www-form-urlencoded"
	floodSSN       = "900-55-0001"
	floodDOB       = "1980-01-01"
	floodPassword  = "Zq!vRt.Kw~mPx7Lb"
	floodRosterCSV = "edipi,ssn,fin,dob,pebd,last,first,middle,category,organization\n" +
		floodEDIPI + "," + floodSSN + ",," + floodDOB + ",,FLOOD,FRANK,,Active Army,Bench Division\n"
)

// loopbackDial connects to 127.0.0.1 whatever host the URL names, so the
// URLs can say "localhost" (the server certificate's name and the site
// address) without the resolver choosing ::1.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
}

// loopbackDialFrom is loopbackDial from the loopback address src, which
// the gateway counts as another client's.
func loopbackDialFrom(src net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
		return d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
	}
}

// floodSource is the loopback address of flood worker w in round: every
// worker of every cell its own (127.0.<round>.<2+w>), so the flood stands
// for many clients and no address reaches the gateway's attempts_per_ip,
// however many rounds run.
func floodSource(round, w int) net.IP {
	return net.IPv4(127, 0, byte(1+round%250), byte(2+w%250))
}

// browserClient is a client for one card that keeps its connection and
// does not follow redirects (each hop is checked).
func browserClient(p *benchPKI, c *benchCard) *http.Client {
	return browserClientVia(p, c, loopbackDial)
}

// browserClientVia is browserClient dialling with dial.
func browserClientVia(p *benchPKI, c *benchCard, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: dial,
			TLSClientConfig: &tls.Config{
				RootCAs:      p.roots,
				ServerName:   "localhost",
				Certificates: []tls.Certificate{c.tls},
			},
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func closeClient(c *http.Client) {
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// do sends a request and returns the status, the body and the response
// headers.
func do(ctx context.Context, c *http.Client, method, u string, hdr http.Header, body string) (int, string, http.Header, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, "", nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Header, err
}

// acceptBanner walks the consent banner as a browser does: GET the page,
// read its CSRF token, POST "I Accept", and return the cookie it sets.
func acceptBanner(ctx context.Context, c *http.Client, base string) (string, error) {
	browser := http.Header{"Accept": {browserAccept}, "User-Agent": {browserAgent}}
	status, page, _, err := do(ctx, c, http.MethodGet, base+"/.cacgate/consent?next=%2F", browser, "")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("banner page: HTTP %d", status)
	}
	csrf, err := formValue(page, "csrf")
	if err != nil {
		return "", err
	}
	post := http.Header{"Accept": {browserAccept}, "User-Agent": {browserAgent}, "Content-Type": {formContent}, "Origin": {base}}
	status, _, hdr, err := do(ctx, c, http.MethodPost, base+"/.cacgate/consent", post, url.Values{"csrf": {csrf}, "next": {"/"}}.Encode())
	if err != nil {
		return "", err
	}
	if status != http.StatusSeeOther {
		return "", fmt.Errorf("accepting the banner: HTTP %d", status)
	}
	for _, sc := range hdr["Set-Cookie"] {
		if v, ok := strings.CutPrefix(sc, consentCookie+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v, nil
		}
	}
	return "", errors.New("accepting the banner set no consent cookie")
}

// acceptAll gets a consent cookie for every card, parallel calls at a
// time, each on its own connection (a full handshake, like a browser).
func acceptAll(ctx context.Context, p *benchPKI, base string, cards []*benchCard, parallel int) ([]string, error) {
	cookies := make([]string, len(cards))
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(cards) || ctx.Err() != nil {
					return
				}
				c := browserClient(p, cards[i])
				v, err := acceptBanner(ctx, c, base)
				closeClient(c)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("card %d: %w", i, err); cancel() })
					return
				}
				cookies[i] = v
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return cookies, ctx.Err()
}

// formValue extracts a hidden input's value from a rendered page.
func formValue(page, name string) (string, error) {
	marker := `name="` + name + `" value="`
	i := strings.Index(page, marker)
	if i < 0 {
		return "", fmt.Errorf("page has no %s field", name)
	}
	rest := page[i+len(marker):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return "", fmt.Errorf("page has a broken %s field", name)
	}
	return html.UnescapeString(rest[:j]), nil
}

// prepareFlood takes the flood card through the banner-accepted identity
// check (the roster matches it) and returns the profile form: its state is
// used once (a profile post hashes the password with argon2id, which is
// what an enrollment flood makes the gateway do); the flood gets a fresh
// state for each post by running the identity check again (floodIdentity).
func prepareFlood(ctx context.Context, c *http.Client, base, cookie string) (url.Values, error) {
	hdr := http.Header{"Accept": {browserAccept}, "User-Agent": {browserAgent}, "Cookie": {consentCookie + "=" + cookie}}
	status, page, _, err := do(ctx, c, http.MethodGet, base+"/.cacgate/enroll/new", hdr, "")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("enrollment identity page: HTTP %d", status)
	}
	csrf, err := formValue(page, "csrf")
	if err != nil {
		return nil, err
	}
	post := hdr.Clone()
	post.Set("Content-Type", formContent)
	post.Set("Origin", base)
	status, page, _, err = do(ctx, c, http.MethodPost, base+"/.cacgate/enroll/new", post,
		url.Values{"csrf": {csrf}, "idtype": {"ssn"}, "ssn": {floodSSN}, "dob": {floodDOB}}.Encode())
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("enrollment identity check: HTTP %d", status)
	}
	state, err := formValue(page, "state")
	if err != nil {
		return nil, fmt.Errorf("identity check did not lead to the profile form: %w", err)
	}
	if csrf, err = formValue(page, "csrf"); err != nil {
		return nil, err
	}
	return url.Values{
		"csrf": {csrf}, "state": {state},
		"email": {"frank.flood@example.com"}, "organization": {"USA"}, "location": {"North America"},
		"password": {floodPassword}, "confirm": {floodPassword},
	}, nil
}

// floodIdentity is the identity form of the flood card, with form's CSRF
// token: posted before each profile post, it gives a fresh state.
func floodIdentity(form url.Values) string {
	return url.Values{"csrf": {form.Get("csrf")}, "idtype": {"ssn"}, "ssn": {floodSSN}, "dob": {floodDOB}}.Encode()
}
