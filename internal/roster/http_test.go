package roster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newService starts a loopback roster service and a source that asks it.
func newService(t *testing.T, timeout time.Duration, handler http.HandlerFunc) *HTTP {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	h, err := NewHTTP(HTTPConfig{URL: srv.URL + "/verify", Timeout: timeout, Header: http.Header{"X-Api-Key": {"k1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// reply answers every request with status 200 and body as JSON.
func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func TestHTTPMatch(t *testing.T) {
	h := newService(t, 0, reply(`{"match":true,"records":[
		{"category":"Army Retired","last":"SMITH","first":"ROBERT"},
		{"edipi":"5678901234","category":"DA Civilian","last":"SMITH","first":"ROBERT","middle":"E","organization":"AMC"}]}`))
	res, err := h.Verify(context.Background(), claimFor(retired))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{EDIPI: "5678901234", Category: "Army Retired", Last: "SMITH", First: "ROBERT"},
		{EDIPI: "5678901234", Category: "DA Civilian", Last: "SMITH", First: "ROBERT", Middle: "E", Organization: "AMC"},
	}
	if !res.Match || len(res.Records) != 2 || res.Records[0] != want[0] || res.Records[1] != want[1] {
		t.Fatalf("Verify = %+v, want a match of %+v", res, want)
	}
}

func TestHTTPNoMatch(t *testing.T) {
	for _, body := range []string{`{"match":false}`, `{"match":false,"records":[]}`, `{"match":false,"records":null}`} {
		h := newService(t, 0, reply(body))
		res, err := h.Verify(context.Background(), claimFor(john))
		if err != nil || res.Match || res.Records != nil {
			t.Errorf("%s: Verify = %+v, %v; want no match", body, res, err)
		}
	}
}

func TestHTTPRequest(t *testing.T) {
	tests := []struct {
		name  string
		claim Claim
		want  map[string]string
	}{
		{"SSN, no PEBD", claimFor(john), map[string]string{"edipi": "1234567890", "ssn": "512345678", "dob": "1980-02-29"}},
		{"FIN and PEBD, normalized", Claim{EDIPI: "3456789012", FIN: "de-4471k09", DOB: " 1990-01-31", PEBD: "2010-05-06 "},
			map[string]string{"edipi": "3456789012", "fin": "DE4471K09", "dob": "1990-01-31", "pebd": "2010-05-06"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]string
			h := newService(t, 0, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/verify" || r.URL.RawQuery != "" {
					t.Errorf("request %s %s", r.Method, r.URL)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if key := r.Header.Get("X-Api-Key"); key != "k1" {
					t.Errorf("X-Api-Key %q", key)
				}
				if r.ContentLength <= 0 {
					t.Errorf("Content-Length %d; the body should have a known length", r.ContentLength)
				}
				dec := json.NewDecoder(r.Body)
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Errorf("request body: %v", err)
				}
				reply(`{"match":false}`)(w, r)
			})
			if _, err := h.Verify(context.Background(), tt.claim); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("body %v, want exactly %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("body %v, want exactly %v", got, tt.want)
				}
			}
		})
	}
}

func TestHTTPRefusesMalformedClaimsWithoutAsking(t *testing.T) {
	var asked atomic.Bool
	h := newService(t, 0, func(w http.ResponseWriter, r *http.Request) { asked.Store(true) })
	claim := claimFor(john)
	claim.SSN = "666-12-3456"
	_, err := h.Verify(context.Background(), claim)
	var input *InputError
	if !errors.As(err, &input) || input.Field != "ssn" || asked.Load() {
		t.Fatalf("Verify = %v (asked: %v), want an *InputError and no request", err, asked.Load())
	}
}

// deadlineRecorder is a transport that notes, as each request leaves, how
// much time its context still gives it.
type deadlineRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	left []time.Duration
}

func (d *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if deadline, ok := req.Context().Deadline(); ok {
		d.mu.Lock()
		d.left = append(d.left, time.Until(deadline))
		d.mu.Unlock()
	}
	return d.next.RoundTrip(req)
}

func (d *deadlineRecorder) lefts() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.left)
}

// hangingService starts a roster service that runs start and then never
// finishes its answer (until the test ends), and a source with a 200ms
// timeout that asks it through a deadlineRecorder.
func hangingService(t *testing.T, start func(w http.ResponseWriter)) (*HTTP, *deadlineRecorder) {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start(w)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: frees a handler Close would wait for
	rec := &deadlineRecorder{next: newDefaultHTTPClient().Transport}
	h, err := NewHTTP(HTTPConfig{URL: srv.URL + "/verify", Timeout: 200 * time.Millisecond, Client: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	return h, rec
}

// verifyReturns is h.Verify, failing the test if it has not returned
// after a minute (it waits for a service that never answers).
func verifyReturns(t *testing.T, h *HTTP, claim Claim) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := h.Verify(context.Background(), claim)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatal("Verify still waits for the service after a minute")
		return nil
	}
}

// The service never answers, so Verify ending at all is the timeout's
// doing; the request carried a deadline at most the configured 200ms away
// (never the 5s default), and Verify did not give up before it. Nothing
// here depends on how busy the machine is.
func TestHTTPTimeout(t *testing.T) {
	h, rec := hangingService(t, func(http.ResponseWriter) {})
	start := time.Now()
	err := verifyReturns(t, h, claimFor(john))
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify = %v, want ErrUnavailable after a deadline", err)
	}
	if took < 200*time.Millisecond {
		t.Errorf("Verify gave up after %v, before the 200ms timeout", took)
	}
	if left := rec.lefts(); len(left) != 1 || left[0] > 200*time.Millisecond {
		t.Errorf("the requests left with %v before their deadline, want one with at most 200ms", left)
	}
	if !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Errorf("error %q does not say what happened", err)
	}
}

// The timeout bounds the reply too: a service that starts its answer and
// never finishes it is given up on.
func TestHTTPSlowBodyTimesOut(t *testing.T) {
	h, rec := hangingService(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"match":`)
		w.(http.Flusher).Flush()
	})
	err := verifyReturns(t, h, claimFor(john))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify = %v, want ErrUnavailable at the timeout", err)
	}
	if left := rec.lefts(); len(left) != 1 || left[0] > 200*time.Millisecond {
		t.Errorf("the requests left with %v before their deadline, want one with at most 200ms", left)
	}
}

func TestHTTPCallerCancels(t *testing.T) {
	h := newService(t, 0, reply(`{"match":false}`))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Verify(ctx, claimFor(john))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want ErrUnavailable and context.Canceled", err)
	}
}

func TestHTTPServiceDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/verify?api_key=s3cret"
	srv.Close()
	h, err := NewHTTP(HTTPConfig{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Verify(context.Background(), claimFor(john))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q repeats the URL's query", err)
	}
}

func TestHTTPUnusableReplies(t *testing.T) {
	const ssn = "512345678" // john's, which a broken service might echo
	json := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	ok := func(body string) http.HandlerFunc { return json(200, "application/json", body) }
	record := `{"category":"Active Army","last":"DOE","first":"JOHN"}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"500", json(500, "application/json", `{"match":false}`)},
		{"404", json(404, "text/plain", "not found")},
		{"204", json(204, "application/json", "")},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}},
		{"HTML", json(200, "text/html", `<html>{"match":true}</html>`)},
		{"no content type", json(200, "", `{"match":false}`)},
		{"garbage", ok(`{"match":tru`)},
		{"not JSON at all", ok(`Service Unavailable`)},
		{"empty", ok(``)},
		{"an array", ok(`[{"match":false}]`)},
		{"no match field", ok(`{"records":[]}`)},
		{"null match", ok(`{"match":null}`)},
		{"match of the wrong type", ok(`{"match":"true","records":[` + record + `]}`)},
		{"unknown field", ok(`{"match":false,"ssn":"` + ssn + `"}`)},
		{"unknown field named like an SSN", ok(`{"match":false,"` + ssn + `":1}`)},
		{"unknown record field", ok(`{"match":true,"records":[{"category":"Active Army","last":"DOE","first":"JOHN","ssn":"` + ssn + `"}]}`)},
		{"two objects", ok(`{"match":false}{"match":true}`)},
		{"trailing garbage", ok(`{"match":false} x`)},
		{"oversized", ok(`{"match":false}` + strings.Repeat(" ", maxReplyBytes))},
		{"oversized record", ok(`{"match":true,"records":[{"category":"Active Army","last":"` + strings.Repeat("X", maxReplyBytes) + `","first":"JOHN"}]}`)},
		{"match without records", ok(`{"match":true}`)},
		{"match with no records", ok(`{"match":true,"records":[]}`)},
		{"no match with records", ok(`{"match":false,"records":[` + record + `]}`)},
		{"another EDIPI", ok(`{"match":true,"records":[{"edipi":"1234567891","category":"Active Army","last":"DOE","first":"JOHN"}]}`)},
		{"another EDIPI in the second record", ok(`{"match":true,"records":[` + record + `,{"edipi":"9999999999","category":"DA Civilian","last":"DOE","first":"JOHN"}]}`)},
		{"empty EDIPI", ok(`{"match":true,"records":[{"edipi":"","category":"Active Army","last":"DOE","first":"JOHN"}]}`)},
		{"record without a category", ok(`{"match":true,"records":[{"last":"DOE","first":"JOHN"}]}`)},
		{"record without a last name", ok(`{"match":true,"records":[{"category":"Active Army","first":"JOHN"}]}`)},
		{"null record", ok(`{"match":true,"records":[null]}`)},
		{"control character in a name", ok(`{"match":true,"records":[{"category":"Active Army","last":"DOE\u001b[31m","first":"JOHN"}]}`)},
		{"line break in a name", ok(`{"match":true,"records":[{"category":"Active Army","last":"DOE\nINFO forged log line","first":"JOHN"}]}`)},
		{"overlong name", ok(`{"match":true,"records":[{"category":"Active Army","last":"` + strings.Repeat("X", maxNameRunes+1) + `","first":"JOHN"}]}`)},
		{"repeated category", ok(`{"match":true,"records":[` + record + `,` + record + `]}`)},
		{"too many records", ok(`{"match":true,"records":[` + strings.TrimSuffix(strings.Repeat(`{"category":"C`+`","last":"DOE","first":"JOHN"},`, maxRecordsPerEDIPI+1), ",") + `]}`)},
		{"record of the wrong type", ok(`{"match":true,"records":["` + ssn + `"]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newService(t, 0, tt.handler)
			res, err := h.Verify(context.Background(), claimFor(john))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify = %+v, %v; want ErrUnavailable", res, err)
			}
			if res.Match || res.Records != nil {
				t.Fatalf("Verify returned %+v along with its error", res)
			}
			assertNoSecret(t, "error", err.Error(), ssn, john.SSN)
		})
	}
}

func TestHTTPNeverFollowsRedirects(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
		reply(`{"match":true,"records":[{"category":"Active Army","last":"DOE","first":"JOHN"}]}`)(w, r)
	}))
	defer target.Close()
	client := &http.Client{} // follows redirects, as http.Client does by default
	h := newServiceWithClient(t, client, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusPermanentRedirect)
	})
	if _, err := h.Verify(context.Background(), claimFor(john)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify = %v, want ErrUnavailable", err)
	}
	if followed.Load() {
		t.Fatal("the redirect was followed, sending the SSN elsewhere")
	}
	if client.CheckRedirect != nil {
		t.Fatal("NewHTTP changed the caller's client")
	}
}

func newServiceWithClient(t *testing.T, client *http.Client, handler http.HandlerFunc) *HTTP {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	h, err := NewHTTP(HTTPConfig{URL: srv.URL, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHTTPOverTLS(t *testing.T) {
	srv := httptest.NewTLSServer(reply(`{"match":true,"records":[{"category":"Active Army","last":"DOE","first":"JOHN"}]}`))
	defer srv.Close()
	h, err := NewHTTP(HTTPConfig{URL: srv.URL, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Verify(context.Background(), claimFor(john))
	if err != nil || !res.Match {
		t.Fatalf("Verify = %+v, %v; want a match", res, err)
	}
	// The default client does not trust the test server's certificate.
	h, err = NewHTTP(HTTPConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(context.Background(), claimFor(john)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with an untrusted certificate = %v, want ErrUnavailable", err)
	}
}

func TestNewHTTPURLRules(t *testing.T) {
	for _, url := range []string{
		"https://roster.example.mil/verify",
		"https://roster.example.mil:8443/v1/verify?client=gw",
		"http://127.0.0.1:8080/verify",
		"http://127.9.9.9/verify",
		"http://localhost:9000",
		"http://LOCALHOST:9000",
		"http://[::1]:9000/verify",
	} {
		if _, err := NewHTTP(HTTPConfig{URL: url}); err != nil {
			t.Errorf("NewHTTP(%q) = %v, want it accepted", url, err)
		}
	}
	for _, url := range []string{
		"",
		"http://roster.example.mil/verify",
		"http://10.0.0.5/verify",
		"http://localhost.example.mil/verify",
		"http://127.0.0.1.nip.io/verify",
		"http://[::ffff:10.0.0.5]/verify",
		"ftp://roster.example.mil/",
		"roster.example.mil/verify",
		"/verify",
		"https:///verify",
		"https://user:s3cret@roster.example.mil/verify",
		"https://roster.example.mil/%zz",
		"mailto:ops@example.mil",
	} {
		_, err := NewHTTP(HTTPConfig{URL: url})
		if err == nil {
			t.Errorf("NewHTTP(%q) accepted", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %q repeats the URL's password", err)
		}
	}
	if _, err := NewHTTP(HTTPConfig{URL: "https://roster.example.mil", Timeout: -time.Second}); err == nil {
		t.Error("a negative timeout was accepted")
	}
}

// The HTTP source cannot know whether a record has a PEBD: the form asks
// for it as optional, and a claim without one is sent without one.
func TestHTTPNeedsPEBDIsOptional(t *testing.T) {
	h, err := NewHTTP(HTTPConfig{URL: "https://roster.example.mil/verify"})
	if err != nil {
		t.Fatal(err)
	}
	need, err := h.NeedsPEBD(context.Background(), "1234567890")
	if need != PEBDOptional || err != nil {
		t.Fatalf("NeedsPEBD = %v, %v; want %v", need, err, PEBDOptional)
	}
	if !need.Asked() || PEBDNotAsked.Asked() || !PEBDRequired.Asked() {
		t.Error("Asked() is wrong")
	}
	var n normalizedClaim
	if err := n.parse(Claim{EDIPI: "1234567890", SSN: "219-09-9999", DOB: "1971-03-14"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	body := newRequestBody(&n)
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"edipi":"1234567890","ssn":"219099999","dob":"1971-03-14"}`; string(data) != want {
		t.Fatalf("body without a PEBD %s, want %s", data, want)
	}
}

func TestRequestBody(t *testing.T) {
	// The longest possible request fits.
	var n normalizedClaim
	if err := n.parse(Claim{EDIPI: "1234567890", FIN: "ABCDEF123456", DOB: "1980-02-29", PEBD: "2001-06-01"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	body := newRequestBody(&n)
	if body.overflow {
		t.Fatal("the longest request overflows its buffer")
	}
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"edipi":"1234567890","fin":"ABCDEF123456","dob":"1980-02-29","pebd":"2001-06-01"}`; string(data) != want {
		t.Fatalf("body %s, want %s", data, want)
	}
	body.Close()
	if body.buf != [maxRequestBytes]byte{} {
		t.Fatal("Close did not erase the body")
	}
	if _, err := body.Read(make([]byte, 10)); err == nil {
		t.Fatal("an erased body can still be read")
	}
}
