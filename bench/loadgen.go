package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// mode is how the load generator uses connections.
type mode string

const (
	// modeKeepAlive reuses connections: the steady state of a busy app.
	modeKeepAlive mode = "keep-alive"
	// modeNewConn opens a connection per request with neither keep-alive
	// nor session resumption: every request pays a full handshake.
	modeNewConn mode = "new-conn"
	// modeResumed opens a connection per request but resumes the TLS
	// session (TLS 1.3 PSK): what browsers do on reconnecting.
	modeResumed mode = "resumed"
)

// target is what a cell sends requests to.
type target struct {
	base string // https://localhost:port, or http://127.0.0.1:port for the backend
	// cards are the client certificates, used round-robin, one client (and
	// so one connection pool) each; nil for plain HTTP.
	cards []*benchCard
	// cookies are the consent cookie per card (or per request for plain
	// HTTP: cookies[0]). Bare servers get them too, so every scenario
	// sends the same bytes.
	cookies []string
	// wantUser: every answer must carry the identity the backend received.
	wantUser bool
	// extra headers the client sends (b-hdr: the identity headers).
	extra http.Header
}

// loadClients holds one client and one header set per card.
type loadClients struct {
	url     string
	clients []*http.Client
	headers []http.Header
}

func newLoadClients(p *benchPKI, t target, m mode, concurrency int) *loadClients {
	lc := &loadClients{url: t.base + benchPath}
	n := max(len(t.cards), 1)
	for i := range n {
		tr := &http.Transport{
			DialContext:           loopbackDial,
			DisableCompression:    true,
			MaxIdleConns:          0,
			MaxIdleConnsPerHost:   concurrency,
			IdleConnTimeout:       10 * time.Minute,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			DisableKeepAlives:     m != modeKeepAlive,
		}
		if len(t.cards) > 1 {
			// One card per connection: two workers rarely need the same
			// card at once.
			tr.MaxIdleConnsPerHost = 2
		}
		if t.cards != nil {
			cfg := &tls.Config{
				RootCAs:      p.roots,
				ServerName:   "localhost",
				Certificates: []tls.Certificate{t.cards[i].tls},
			}
			switch m {
			case modeNewConn:
				cfg.SessionTicketsDisabled = true
			case modeResumed:
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			tr.TLSClientConfig = cfg
		}
		lc.clients = append(lc.clients, &http.Client{
			Transport:     tr,
			Timeout:       20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
		cookie := "theme=dark; lang=en"
		if i < len(t.cookies) && t.cookies[i] != "" {
			cookie = "theme=dark; " + consentCookie + "=" + t.cookies[i] + "; lang=en"
		}
		// Read-only once built: shared by every request of this card.
		hdr := http.Header{
			"Accept":          {browserAccept},
			"User-Agent":      {browserAgent},
			"Accept-Language": {browserLang},
			"Cookie":          {cookie},
		}
		for k, v := range t.extra {
			hdr[k] = v
		}
		lc.headers = append(lc.headers, hdr)
	}
	return lc
}

func (lc *loadClients) close() {
	for _, c := range lc.clients {
		closeClient(c)
	}
}

// Phases of a cell.
const (
	phaseWarm int32 = iota
	phaseMeasure
	phaseStop
)

// workerStats is one worker's count of the measured phase.
type workerStats struct {
	lat          hist
	ok, bad, err int64
	resumed      int64  // answers on a resumed TLS session
	problem      string // the first bad answer or error
}

// loadRun is a closed-loop load: a fixed number of workers, each sending
// its next request when the previous one is answered.
type loadRun struct {
	lc       *loadClients
	wantUser bool
	phase    atomic.Int32
	next     atomic.Uint64 // round-robin over the cards
	sent     atomic.Uint64 // requests answered in any phase
	stats    []*workerStats
	wg       sync.WaitGroup
}

func startLoad(ctx context.Context, lc *loadClients, wantUser bool, workers int) *loadRun {
	lr := &loadRun{lc: lc, wantUser: wantUser}
	for range workers {
		ws := &workerStats{}
		lr.stats = append(lr.stats, ws)
		lr.wg.Add(1)
		go func() {
			defer lr.wg.Done()
			lr.work(ctx, ws)
		}()
	}
	return lr
}

func (lr *loadRun) work(ctx context.Context, ws *workerStats) {
	n := uint64(len(lr.lc.clients))
	for ctx.Err() == nil {
		if lr.phase.Load() == phaseStop {
			return
		}
		i := (lr.next.Add(1) - 1) % n
		start := time.Now()
		problem, resumed := lr.one(ctx, int(i))
		took := time.Since(start)
		lr.sent.Add(1)
		if lr.phase.Load() != phaseMeasure {
			continue
		}
		switch {
		case problem == "":
			ws.ok++
			ws.lat.add(took)
			if resumed {
				ws.resumed++
			}
		case problem[0] == 'E':
			ws.err++
		default:
			ws.bad++
		}
		if problem != "" && ws.problem == "" {
			ws.problem = problem
		}
	}
}

// one sends a request with card i and reports what was wrong with it, if
// anything ("E..." for a transport error), and whether its TLS session was
// resumed.
func (lr *loadRun) one(ctx context.Context, i int) (problem string, resumed bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, lr.lc.url, nil)
	if err != nil {
		return "E" + err.Error(), false
	}
	req.Header = lr.lc.headers[i]
	resp, err := lr.lc.clients[i].Do(req)
	if err != nil {
		return "E" + err.Error(), false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return "E" + err.Error(), false
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("HTTP %d (Location %q)", resp.StatusCode, resp.Header.Get("Location")), false
	case lr.wantUser && (resp.Header.Get(echoHeader) == "" || resp.Header.Get(echoHeader) == noUser[0]):
		return "backend received no X-Remote-User", false
	}
	return "", resp.TLS != nil && resp.TLS.DidResume
}

// stop ends the load and waits for the workers' last requests.
func (lr *loadRun) stop() {
	lr.phase.Store(phaseStop)
	lr.wg.Wait()
}

// totals merges the workers' counts.
func (lr *loadRun) totals() (h hist, ok, bad, errs, resumed int64, problem string) {
	for _, ws := range lr.stats {
		h.merge(&ws.lat)
		ok += ws.ok
		resumed += ws.resumed
		bad += ws.bad
		errs += ws.err
		if problem == "" {
			problem = ws.problem
		}
	}
	return h, ok, bad, errs, resumed, problem
}
