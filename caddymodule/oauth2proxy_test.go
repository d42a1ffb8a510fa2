package caddymodule

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The real relying party: oauth2-proxy, built from its own module (its
// own go.mod: ours is untouched) once per test run and kept in the user's
// cache directory under its version.
const oauth2ProxyModule = "github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6"

// The developer's environment as the test binary started, before TestMain
// points HOME and the XDG directories at a temporary one: the Go command
// that builds oauth2-proxy must find its module and build caches.
var (
	originalHome   = os.Getenv("HOME")
	originalXDG    = map[string]string{"XDG_CONFIG_HOME": os.Getenv("XDG_CONFIG_HOME"), "XDG_DATA_HOME": os.Getenv("XDG_DATA_HOME"), "XDG_CACHE_HOME": os.Getenv("XDG_CACHE_HOME")}
	originalCache  = func() string { d, _ := os.UserCacheDir(); return d }()
	oauth2ProxyBin = sync.OnceValues(buildOAuth2Proxy)
)

func buildOAuth2Proxy() (string, error) {
	if originalCache == "" {
		return "", fmt.Errorf("no user cache directory to build oauth2-proxy in")
	}
	version := oauth2ProxyModule[strings.LastIndexByte(oauth2ProxyModule, '@')+1:]
	dir := filepath.Join(originalCache, "cacgate-oauth2-proxy", version)
	bin := filepath.Join(dir, "oauth2-proxy")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "oauth2-proxy-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	cmd := exec.Command("go", "install", oauth2ProxyModule)
	cmd.Dir = work // outside this module
	env := []string{"GOBIN=" + dir, "HOME=" + originalHome, "GOFLAGS=-mod=mod"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "GOBIN" || k == "GOFLAGS" || strings.HasPrefix(k, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range originalXDG {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", oauth2ProxyModule, err, out)
	}
	return bin, nil
}

// startOAuth2Proxy runs oauth2-proxy on addr in front of upstream, with the
// gateway's main site as its OIDC issuer (client "proxy").
func startOAuth2Proxy(t *testing.T, g *testGateway, addr, upstream string) {
	t.Helper()
	bin, err := oauth2ProxyBin()
	if err != nil {
		t.Fatalf("building oauth2-proxy: %v", err)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, bin,
		"--provider=oidc",
		"--oidc-issuer-url="+g.url("main", ""),
		"--provider-ca-file="+filepath.Join(g.dir, "root.pem"),
		"--client-id=proxy",
		"--client-secret="+oidcSecret,
		"--redirect-url=http://"+addr+"/oauth2/callback",
		"--http-address="+addr,
		"--upstream=http://"+upstream+"/",
		"--cookie-secret="+base64.RawURLEncoding.EncodeToString(secret),
		"--cookie-secure=false",
		"--email-domain=*",
		"--code-challenge-method=S256",
		"--skip-provider-button=true",
		"--scope=openid profile email",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = []string{"HOME=" + t.TempDir()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy log:\n%s", tail(logs.Bytes(), 40))
		}
	})
	// Ready when it answers its ping (it discovers the issuer first).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling for readiness, bounded by the deadline
	}
}

// TestOIDCWithOAuth2Proxy: a real RP binary (oauth2-proxy) in front of a
// test backend, with cacgate as its issuer. A card holder reaches the
// backend through it; a disabled account, a revoked card and a refused
// access rule do not.
func TestOIDCWithOAuth2Proxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := ln.Addr().String()
	ln.Close()
	app := startBackend(t)
	block := fmt.Sprintf(`oidc {
				client proxy {
					secret %s
					redirect_uri http://%s/oauth2/callback
				}
			}
			deny edipi 1234567891`, oidcSecret, proxyAddr)
	g := startGateway(t, "", block)
	g.createAccount("1234567890", "john.q.doe")
	g.createAccount("1234567891", "jane.smith")
	startOAuth2Proxy(t, g, proxyAddr, app.addr)

	// visit follows a browser with card c from the proxied app through the
	// sign-in; it returns the final status and body.
	visit := func(t *testing.T, cardName string) (int, string) {
		t.Helper()
		c := g.client(card(t, cardName))
		next := "http://" + proxyAddr + "/dashboard"
		for hop := 0; hop < 12; hop++ {
			resp, body := request(t, c, "GET", next, browser, nil)
			loc := resp.Header.Get("Location")
			switch {
			case loc == "":
				return resp.StatusCode, body
			case strings.HasPrefix(loc, "/.cacgate/consent"):
				_, body = request(t, c, "GET", g.url("main", loc), browser, nil)
				form := fmt.Sprintf("csrf=%s&next=%s&accept=yes", formValue(t, body, "csrf"), url.QueryEscape(formValue(t, body, "next")))
				resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/consent"), http.Header{
					"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}, strings.NewReader(form))
				next = g.url("main", resp.Header.Get("Location"))
			case strings.HasPrefix(loc, "/"):
				u := resp.Request.URL
				next = u.Scheme + "://" + u.Host + loc
			default:
				next = loc
			}
		}
		t.Fatal("too many redirects")
		return 0, ""
	}

	before := app.count()
	if status, body := visit(t, "doe.john.quincy"); status != http.StatusOK || !strings.Contains(body, "legacy app: GET /dashboard") {
		t.Fatalf("card holder through oauth2-proxy: HTTP %d\n%s", status, body)
	}
	if got := app.last(t).Get("X-Forwarded-Email"); got == "" {
		t.Errorf("oauth2-proxy passed no e-mail to the app: %v", app.last(t))
	}
	for _, c := range []struct{ name, card string }{
		{"access rule", "smith.jane"},
		{"revoked card", "revoked.ronald"},
	} {
		if status, _ := visit(t, c.card); status != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403 from the gateway", c.name, status)
		}
	}
	g.adminDo("POST", "/cacgate/accounts/john.q.doe/disable", nil, nil)
	if status, _ := visit(t, "doe.john.quincy"); status != http.StatusForbidden {
		t.Errorf("disabled account: HTTP %d, want 403 from the gateway", status)
	}
	if n := app.count(); n != before+1 {
		t.Errorf("the app saw %d requests, want only the card holder's", n-before)
	}
}
