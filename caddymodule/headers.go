package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/cacgate/cacgate/internal/forward"
)

// sentCookiesVar holds, in the request's Caddy variables, the Cookie header
// as the browser sent it, once a cacgate handler has taken the hidden
// cookie out: a second cacgate handler further down the route (an inner
// block with its own access rules) still reads the session.
const sentCookiesVar = "cacgate.sent_cookies"

// hiddenCookies is what hideSessionCookie keeps: the header as sent, and
// the storage of the header the backend gets (one value, as HTTP/1.1 and
// Go's HTTP/2 server deliver cookies), in one allocation; a pointer in the
// request's variables costs no more.
type hiddenCookies struct {
	sent []string
	kept [1]string
}

// hideSessionCookie takes the hidden cookie out of the Cookie header the
// backend will get, keeping the header as sent for later cacgate handlers
// in the request's variables.
func hideSessionCookie(r *http.Request) {
	vals := r.Header["Cookie"]
	if !hasSessionCookie(vals) {
		// None sent, or an earlier cacgate handler hid them already.
		return
	}
	hc := &hiddenCookies{sent: vals}
	caddyhttp.SetVar(r.Context(), sentCookiesVar, hc)
	var kept []string
	if len(vals) == 1 {
		if v := forward.WithoutSessionCookie(vals[0]); v != "" {
			hc.kept[0] = v
			kept = hc.kept[:]
		}
	} else {
		for _, v := range vals {
			if v = forward.WithoutSessionCookie(v); v != "" {
				kept = append(kept, v)
			}
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = kept
}

func hasSessionCookie(vals []string) bool {
	for _, v := range vals {
		if forward.HasSessionCookie(v) {
			return true
		}
	}
	return false
}

// sentCookies is the Cookie header as the browser sent it, the hidden
// cookie included, even after an earlier cacgate handler hid it. The first
// handler finds them in the header itself, without asking the variables.
func sentCookies(r *http.Request) []string {
	vals := r.Header["Cookie"]
	if hasSessionCookie(vals) {
		return vals
	}
	if hc, ok := caddyhttp.GetVar(r.Context(), sentCookiesVar).(*hiddenCookies); ok {
		return hc.sent
	}
	return vals
}
