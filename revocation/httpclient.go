package revocation

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// maxRedirects is generous for OCSP and CRL servers, which rarely redirect
// at all.
const maxRedirects = 3

// newDefaultHTTPClient returns the client used when Config.HTTPClient is
// nil. It does not read HTTP_PROXY and friends: a gateway's environment
// often carries a proxy meant for something else, and a revocation check
// silently detoured through it, or failing because of it, is hard to
// diagnose. Sites that need a proxy pass their own client. Overall time
// limits come from each request's context.
func newDefaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: time.Minute,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("redirect to a non-http(s) URL")
			}
			return nil
		},
	}
}
