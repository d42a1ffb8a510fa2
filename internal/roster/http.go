package roster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// defaultHTTPTimeout bounds one verification by the service when
// HTTPConfig.Timeout is zero: the card holder is waiting on the page.
const defaultHTTPTimeout = 5 * time.Second

// HTTPConfig configures an HTTP roster source.
type HTTPConfig struct {
	// URL receives the POSTs. It must be https, or http to a loopback host
	// (a sidecar on the same machine, or a test), since the request body
	// carries an SSN. It must not hold a user name or password: put
	// credentials in Header, which is never logged.
	URL string
	// Timeout bounds each verification, reply included. Default 5s.
	Timeout time.Duration
	// Client sends the requests; nil means a client that ignores proxy
	// environment variables (pass your own client for a proxy or a private
	// CA). Redirects are never followed, whatever the client says: a
	// redirect would resend the SSN to another address.
	Client *http.Client
	// Header is added to every request, e.g. an API key.
	Header http.Header
	// Keys are the non-DoD keys the service answers for: KeyCardUUID,
	// KeyEmail or both (the EDIPI always). A service that was written for
	// EDIPIs alone is never sent another key: holders of those
	// credentials go to sponsorship instead.
	Keys []KeyKind
}

// HTTP is a roster kept by an ops service. For each verification it POSTs
//
//	{"edipi":"1234567890","ssn":"123456789","dob":"1980-02-29","pebd":"2001-06-01"}
//
// with "fin" in place of "ssn" for a FIN claim and "pebd" only when the
// card holder entered one; values are sent normalized (SSN as 9 digits, FIN
// upper-cased, dates YYYY-MM-DD). The service answers 200 with
// Content-Type application/json and either
//
//	{"match":true,"records":[{"category":"Active Army","last":"DOE","first":"JOHN","middle":"Q","organization":"1st Cavalry Division"}]}
//
// (each record may also carry "edipi", which must then be the one asked
// about) or {"match":false}.
//
// A service configured with Keys is also asked about the holders of
// non-DoD credentials: the request then carries "card_uuid" (a federal PIV
// or PIV-I card's UUID, lower case) or "email" (an ECA certificate's
// address, lower case) in place of "edipi", and a record in the reply may
// carry that key, which must be the one asked about. For such a request the
// service may answer {"match":false,"known":false} when it holds no record
// of the key at all, so the holder is offered sponsorship rather than told
// that what they typed is wrong. A reply to an EDIPI request never carries
// "known". It never sends SSNs back. Anything else, an
// unknown field, a reply over 64 KiB, another status, a redirect or no
// answer within the timeout, is ErrUnavailable: nothing is issued on a
// reply the gateway does not fully understand.
type HTTP struct {
	url     string
	timeout time.Duration
	client  *http.Client
	header  http.Header
	keys    map[KeyKind]bool
}

// NewHTTP checks cfg and returns a source. It makes no request.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	target, err := checkServiceURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, errors.New("roster: negative service timeout")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultHTTPTimeout
	}

	client := newDefaultHTTPClient()
	if cfg.Client != nil {
		own := *cfg.Client // a copy, so changing its redirect policy does not change the caller's client
		client = &own
	}
	client.CheckRedirect = refuseRedirects

	header := cfg.Header.Clone()
	if header == nil {
		header = make(http.Header)
	}
	header.Set("Content-Type", "application/json")
	header.Set("Accept", "application/json")
	keys := make(map[KeyKind]bool)
	for _, k := range cfg.Keys {
		if k != KeyCardUUID && k != KeyEmail && k != KeyEDIPI {
			return nil, fmt.Errorf("roster: the service's keys are card_uuid and email, not %q", k)
		}
		keys[k] = true
	}
	keys[KeyEDIPI] = true
	return &HTTP{url: target, timeout: timeout, client: client, header: header, keys: keys}, nil
}

// checkServiceURL enforces the transport rules of HTTPConfig.URL. Its
// errors do not quote the URL, whose query may hold an API key.
func checkServiceURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", errors.New("roster: the service URL must be an absolute https URL")
	}
	if u.User != nil {
		return "", errors.New("roster: the service URL must not hold credentials; send them in a header")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return "", errors.New("roster: the service URL must be https (http is allowed for loopback hosts only): the requests carry SSNs")
	default:
		return "", fmt.Errorf("roster: the service URL's scheme must be https, not %q", u.Scheme)
	}
	return u.String(), nil
}

// isLoopbackHost reports whether host names this machine: "localhost" or
// a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// newDefaultHTTPClient returns the client used when HTTPConfig.Client is
// nil. It does not read HTTP_PROXY and friends: a gateway's environment
// often carries a proxy meant for something else, and SSNs silently sent
// through it would be a leak. Time limits come from each request's context.
func newDefaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
	}
}

// refuseRedirects hands a redirect back as the reply, which Verify then
// refuses: following it would send the request body, SSN and all,
// somewhere nobody configured.
func refuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Verify implements Source by asking the service.
func (h *HTTP) Verify(ctx context.Context, claim Claim) (Result, error) {
	var n normalizedClaim
	defer n.wipe()
	if err := n.parse(claim, time.Now()); err != nil {
		return Result{}, err
	}
	if !h.keys[n.keyKind] {
		// Never ask a service about a key it was not said to know.
		return Result{}, ErrInvalidKey
	}
	kind, key := n.keyKind, n.keyValue
	body := newRequestBody(&n)
	n.wipe() // the body now holds the only copy
	// The transport closes, and so erases, the body when it is done with
	// it; closing again here covers a transport that forgot.
	defer body.Close()
	if body.overflow {
		return Result{}, unavailable("the request does not fit its buffer", nil)
	}

	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, body)
	if err != nil {
		return Result{}, unavailable("cannot build the request", nil)
	}
	req.ContentLength = int64(body.n)
	req.Header = h.header.Clone()

	resp, err := h.client.Do(req)
	if err != nil {
		return Result{}, h.requestError(ctx, err)
	}
	defer resp.Body.Close()
	reply, err := readReply(resp)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, h.requestError(ctx, ctx.Err())
		}
		return Result{}, err
	}
	return reply.result(kind, key)
}

// requestError explains a failed request without the URL, which
// *url.Error would repeat and whose query may hold an API key.
func (h *HTTP) requestError(ctx context.Context, err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return unavailable(fmt.Sprintf("the roster service did not answer within %s", h.timeout), context.DeadlineExceeded)
	}
	if ctx.Err() != nil {
		return unavailable("verification abandoned", ctx.Err())
	}
	return unavailable("request to the roster service failed", err)
}

// NeedsPEBD implements Source: always PEBDOptional. The service alone
// knows whether the person's record has a PEBD; the form asks for it "if
// you have one", sends what is typed (nothing, for an empty field), and the
// service decides whether it must match.
func (h *HTTP) NeedsPEBD(context.Context, string) (PEBDNeed, error) { return PEBDOptional, nil }

// Lookup implements KeyedSource: Known for the keys the service was
// configured to answer for, the PEBD asked "if you have one". The service
// is not asked: it tells whether it knows the key when it answers the
// identity form ("known":false). A key that is not well formed is not known.
func (h *HTTP) Lookup(_ context.Context, kind KeyKind, value string) (Presence, error) {
	if _, ok := normalizeKey(kind, value); !ok || !h.keys[kind] {
		return Presence{}, nil
	}
	return Presence{Known: true, PEBD: PEBDOptional}, nil
}
