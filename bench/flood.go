package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// floodRun is an enrollment flood: workers posting the profile step of
// self-enrollment as fast as the gateway answers, each post one argon2id
// password hash. A sealed state is used once, so each profile post follows
// an identity check for a fresh state. The flood stands for many clients:
// each worker of each round posts from its own loopback address
// (floodSource), and the server's attempts_per_ip is raised too. It runs
// during the warm and measured phases of its cell.
type floodRun struct {
	measuring atomic.Bool
	ok, bad   atomic.Int64 // posts answered during the measured phase
	problem   atomic.Pointer[string]
	stopped   atomic.Bool
	wg        sync.WaitGroup
	clients   []*http.Client
}

func startFlood(ctx context.Context, p *benchPKI, base, cookie string, form url.Values, workers, round int) *floodRun {
	f := &floodRun{}
	identity := floodIdentity(form)
	hdr := http.Header{
		"Accept":       {browserAccept},
		"User-Agent":   {browserAgent},
		"Content-Type": {formContent},
		"Origin":       {base},
		"Cookie":       {consentCookie + "=" + cookie},
	}
	for w := range workers {
		c := browserClientVia(p, p.flood, loopbackDialFrom(floodSource(round, w)))
		f.clients = append(f.clients, c)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for ctx.Err() == nil && !f.stopped.Load() {
				status, page, _, err := do(ctx, c, http.MethodPost, base+"/.cacgate/enroll/new", hdr, identity)
				if err == nil && status != http.StatusOK {
					err = errors.New("flood identity check: HTTP " + strconv.Itoa(status))
				}
				var state string
				if err == nil {
					state, err = formValue(page, "state")
				}
				if err != nil {
					if !f.stopped.Load() && ctx.Err() == nil {
						f.fail(err.Error())
					}
					continue
				}
				post := url.Values{}
				for k, v := range form {
					post[k] = v
				}
				post.Set("state", state)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/.cacgate/enroll/profile", strings.NewReader(post.Encode()))
				if err != nil {
					f.fail(err.Error())
					return
				}
				req.Header = hdr
				resp, err := c.Do(req)
				ok := false
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					// 200 is the security-questions form: the password
					// was accepted, and hashed.
					ok = resp.StatusCode == http.StatusOK
					if !ok {
						f.fail("flood post: " + resp.Status)
					}
				} else if !f.stopped.Load() {
					f.fail(err.Error())
				}
				if f.measuring.Load() {
					if ok {
						f.ok.Add(1)
					} else {
						f.bad.Add(1)
					}
				}
			}
		}()
	}
	return f
}

func (f *floodRun) fail(msg string) {
	f.problem.CompareAndSwap(nil, &msg)
}

// endMeasure stops counting; stop then ends the flood.
func (f *floodRun) endMeasure() { f.measuring.Store(false) }

func (f *floodRun) stop() {
	f.stopped.Store(true)
	f.wg.Wait()
	for _, c := range f.clients {
		closeClient(c)
	}
}
