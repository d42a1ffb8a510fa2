package caddymodule

// End-to-end tests that drive a real headless Chromium through the gateway's
// pages, with a test CAC certificate in the browser's NSS database. They
// follow the recipe in shared/BROWSER-TESTS.md and skip when Chromium or the
// NSS tools are not installed (apt-get install chromium libnss3-tools).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/cacgate/cacgate/internal/testpki"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// browserTimeout bounds a whole browser session: launch, every page
	// and shutdown. A hung TLS handshake (for instance a client
	// certificate prompt nobody answers) fails the test instead of
	// hanging it.
	browserTimeout = 5 * time.Minute
	// browserStep bounds one step in the browser: a navigation, a click,
	// a page awaited, a script evaluated. Like browserTimeout it turns a
	// hang into a failure and is no budget: a step takes well under a
	// second, but Chromium on a busy machine can take tens of seconds.
	browserStep = time.Minute
	// bannerOpening is the first sentence of the DoD notice and consent banner.
	bannerOpening = "You are accessing a U.S. Government (USG) Information System (IS)"
)

func TestBrowserConsentFlow(t *testing.T) {
	requireBrowser(t)
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	doe := card(t, "doe.john.quincy")
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), doe))

	// 1. The first visit lands on the banner, keeping the target.
	start := time.Now()
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/reports?q=1"))); err != nil {
		t.Fatalf("navigating to /reports?q=1: %v (a stalled TLS handshake means Chromium did not select the card: check the auto_select_certificate preference)", err)
	}
	loc := mustEval[string](t, ctx, `document.location.href`)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/.cacgate/consent" || u.Query().Get("next") != "/reports?q=1" {
		t.Fatalf("first visit ended at %s, want the banner at /.cacgate/consent?next=/reports?q=1", loc)
	}
	t.Logf("banner reached in %v", time.Since(start).Round(time.Millisecond))

	if title := mustEval[string](t, ctx, `document.title`); title != "U.S. Government Information System — Notice and Consent" {
		t.Errorf("banner page title = %q", title)
	}
	if h1 := mustEval[string](t, ctx, `document.querySelector("h1") ? document.querySelector("h1").innerText.trim() : ""`); h1 != "U.S. Government Information System" {
		t.Errorf("banner heading = %q", h1)
	}
	// Visible, not merely present: WaitVisible checks the box model, and
	// innerText only holds rendered text.
	bannerXPath := fmt.Sprintf(`//*[self::p or self::li][contains(normalize-space(.), %q)]`, bannerOpening)
	acceptXPath := `//button[normalize-space(.)="I Accept"]`
	for _, sel := range []string{bannerXPath, acceptXPath} {
		if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(sel))); err != nil {
			t.Fatalf("banner page: %s is not visible: %v\npage text:\n%s", sel, err, pageText(ctx))
		}
	}
	text := pageText(ctx)
	for _, want := range []string{bannerOpening, "John Q. Doe"} {
		if !strings.Contains(text, want) {
			t.Errorf("banner page does not show %q; page text:\n%s", want, text)
		}
	}

	// 2. Accessibility and no-JavaScript basics.
	checkPageBasics(t, ctx, "banner page")

	// 4. (before leaving the page) A screenshot for people to look at.
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveScreenshot(t, "consent-banner.png", shot)

	// 3. "I Accept" posts the form and the browser ends at the application.
	if g.backend.count() != 0 {
		t.Fatal("the backend was reached before the banner was accepted")
	}
	start = time.Now()
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(acceptXPath))); err != nil {
		t.Fatalf("clicking I Accept: %v", err)
	}
	const want = "legacy app: GET /reports?q=1"
	body, err := waitForBody(ctx, browserStep, "/reports", want)
	if err != nil {
		t.Fatalf("after I Accept: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), body)
	}
	if strings.TrimSpace(body) != want {
		t.Errorf("application page = %q, want %q", body, want)
	}
	if got := evalOr(ctx, `document.location.pathname + document.location.search`); got != "/reports?q=1" {
		t.Errorf("browser ended at %q, want /reports?q=1", got)
	}
	t.Logf("consent accepted and application reached in %v", time.Since(start).Round(time.Millisecond))
	h := g.backend.last(t)
	if got := h.Get("X-Remote-User"); got != "john.q.doe" {
		t.Errorf("backend X-Remote-User = %q, want john.q.doe", got)
	}
	if got := h.Get("X-Cac-Edipi"); got != "1234567890" {
		t.Errorf("backend X-Cac-Edipi = %q, want 1234567890", got)
	}

	// 5. Signing out with the card: the gateway's page, its button, the
	// logoff message, and the banner again before the application.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/logout"))); err != nil {
		t.Fatalf("opening the sign-out page: %v", err)
	}
	checkPageBasics(t, ctx, "card sign-out page")
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Sign out"]`))); err != nil {
		t.Fatalf("clicking Sign out: %v\npage text:\n%s", err, pageText(ctx))
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/logout", "You have signed out"); err != nil {
		t.Fatalf("after Sign out: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/reports"))); err != nil {
		t.Fatalf("navigating after sign-out: %v", err)
	}
	if got := evalOr(ctx, `document.location.pathname`); got != "/.cacgate/consent" {
		t.Errorf("after signing out the browser reached %q, want the banner", got)
	}
}

func TestBrowserNoCertificate(t *testing.T) {
	requireBrowser(t)
	g := startGateway(t, "", "")
	// The profile trusts the test root but holds no client certificate, so
	// Chromium has nothing to offer and answers the certificate request
	// with an empty certificate, without prompting.
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), nil))

	start := time.Now()
	navCtx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	resp, err := chromedp.Run(navCtx, chromedp.NavigateResponse(g.url("main", "/app")))
	if err != nil {
		t.Fatalf("navigating without a card: %v", err)
	}
	t.Logf("401 page reached in %v", time.Since(start).Round(time.Millisecond))
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("HTTP status = %d, want 401", resp.Status)
	}
	if h1 := mustEval[string](t, ctx, `document.querySelector("h1") ? document.querySelector("h1").innerText.trim() : ""`); h1 != "Insert your CAC to continue" {
		t.Errorf("heading = %q, want %q\npage text:\n%s", h1, "Insert your CAC to continue", pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(`//*[contains(normalize-space(.), "Test Help Desk")]`))); err != nil {
		t.Errorf("401 page does not show the contact: %v", err)
	}
	checkPageBasics(t, ctx, "401 page")
	if g.backend.count() != 0 {
		t.Fatal("a browser without a card reached the backend")
	}
}

// requireBrowser skips the test when Chromium or the NSS tools are missing
// on a developer machine. In CI (CI set) their absence is a failure: .ci/run
// installs them, and a skipped browser test there would hide a broken page.
func requireBrowser(t *testing.T) {
	t.Helper()
	missing := t.Skipf
	if os.Getenv("CI") != "" {
		missing = t.Fatalf
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing("browser test needs Chromium at %s (apt-get install chromium libnss3-tools): %v", chromiumPath, err)
	}
	for _, tool := range []string{"certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing("browser test needs %s from the NSS tools (apt-get install libnss3-tools): %v", tool, err)
		}
	}
}

// browserProfile is a throw-away HOME (holding the NSS database Chromium
// reads client certificates and trust from) and user-data-dir.
type browserProfile struct {
	home, userData string
}

// newBrowserProfile prepares a profile that trusts the test root and, when c
// is not nil, holds c's certificate and key and selects it automatically
// for origin (scheme://host:port).
func newBrowserProfile(t *testing.T, origin string, c *testpki.Card) browserProfile {
	t.Helper()
	p := browserProfile{home: t.TempDir(), userData: t.TempDir()}
	work := t.TempDir()
	nssDB := filepath.Join(p.home, ".pki", "nssdb")
	if err := os.MkdirAll(nssDB, 0o700); err != nil {
		t.Fatal(err)
	}
	db := "sql:" + nssDB
	// An empty database password: with one, Chromium would prompt for it
	// and hang.
	runTool(t, "certutil", "-N", "-d", db, "--empty-password")

	rootFile := filepath.Join(work, "root.pem")
	if err := os.WriteFile(rootFile, testPKI(t).Root.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// Trusted for TLS servers, so the gateway's certificate verifies.
	runTool(t, "certutil", "-A", "-d", db, "-n", "test-root", "-t", "C,,", "-i", rootFile)

	if c != nil {
		const password = "browser-test"
		p12, err := pkcs12.LegacyDES.Encode(c.Key, c.Cert, c.Chain[1:], password)
		if err != nil {
			t.Fatalf("encoding %s as PKCS#12: %v", c.Name, err)
		}
		p12File := filepath.Join(work, c.Name+".p12")
		if err := os.WriteFile(p12File, p12, 0o600); err != nil {
			t.Fatal(err)
		}
		runTool(t, "pk12util", "-i", p12File, "-d", db, "-W", password, "-K", "")

		// Headless Chromium never picks a client certificate by itself
		// (the handshake would stall): select one for this origin.
		prefs := map[string]any{"profile": map[string]any{"content_settings": map[string]any{"exceptions": map[string]any{
			"auto_select_certificate": map[string]any{
				origin + ",*": map[string]any{
					"last_modified": "13370000000000000",
					"setting":       map[string]any{"filters": []any{map[string]any{}}},
				},
			},
		}}}}
		data, err := json.Marshal(prefs)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(p.userData, "Default"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p.userData, "Default", "Preferences"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// runTool runs an NSS command-line tool with a timeout and no input, so a
// prompt fails the test instead of waiting.
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserStep)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = nil
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startBrowser launches headless Chromium with profile p and returns a
// chromedp context for one tab. Everything done with it is bounded by
// browserTimeout; the browser is stopped when the test ends, before its
// temporary directories are removed.
func startBrowser(t *testing.T, p browserProfile) context.Context {
	t.Helper()
	out := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(p.userData),
		chromedp.Env("HOME="+p.home),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.CombinedOutput(out),
	)
	timeoutCtx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeoutCtx, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
		if output := out.Bytes(); t.Failed() && len(output) > 0 {
			t.Logf("chromium output:\n%s", tail(output, 30))
		}
	})
	start := time.Now()
	// The first action starts the browser.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return ctx
}

// doWithin runs steps with a deadline shorter than the browser's own.
func doWithin(ctx context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

func mustEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// evalOr evaluates js, returning the error as text: for diagnostics, and
// for checks whose failure message is the error.
func evalOr(ctx context.Context, js string) string {
	ctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return v
}

func pageText(ctx context.Context) string {
	return evalOr(ctx, `document.body ? document.body.innerText : ""`)
}

// waitForBody polls until the current document's path is path and its
// text contains want, across the navigations a form post and redirect
// cause (chromedp.Poll does not survive a navigation). It returns the text.
func waitForBody(ctx context.Context, d time.Duration, path, want string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type state struct {
		Path  string `json:"path"`
		Ready string `json:"ready"`
		Text  string `json:"text"`
	}
	var last state
	for {
		// Errors are expected while a navigation replaces the document.
		s, err := chromedp.Run(ctx, chromedp.Evaluate[state](`({path: document.location.pathname, ready: document.readyState, text: document.body ? document.body.innerText : ""})`))
		if err == nil {
			last = s
			if s.Path == path && s.Ready == "complete" && strings.Contains(s.Text, want) {
				return s.Text, nil
			}
		}
		select {
		case <-ctx.Done():
			return last.Text, fmt.Errorf("waiting for %s to show %q: %w (last seen: path %q, readyState %q)", path, want, ctx.Err(), last.Path, last.Ready)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkPageBasics checks what every gateway page must have: a language, one
// h1, a label for every visible form field, the shared stylesheet loaded,
// and no scripts (the pages work without JavaScript).
func checkPageBasics(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	type basics struct {
		Lang       string   `json:"lang"`
		H1         int      `json:"h1"`
		Scripts    int      `json:"scripts"`
		Unlabelled []string `json:"unlabelled"`
		Sheets     int      `json:"sheets"`
		SheetHrefs []string `json:"sheetHrefs"`
		Rules      int      `json:"rules"`
	}
	b := mustEval[basics](t, ctx, `(() => {
		const unlabelled = [];
		for (const el of document.querySelectorAll('input:not([type="hidden"]), select, textarea')) {
			if (!el.id || !document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) {
				unlabelled.push(el.outerHTML);
			}
		}
		const sheets = Array.from(document.styleSheets);
		let rules = 0;
		for (const s of sheets) {
			try { rules += s.cssRules.length; } catch (e) { rules = -1; }
		}
		return {
			lang: document.documentElement.getAttribute("lang") || "",
			h1: document.querySelectorAll("h1").length,
			scripts: document.querySelectorAll("script").length,
			unlabelled: unlabelled,
			sheets: sheets.length,
			sheetHrefs: sheets.map(s => s.href ? new URL(s.href).pathname : "(inline)"),
			rules: rules,
		};
	})()`)
	if b.Lang != "en" {
		t.Errorf("%s: <html lang=%q>, want \"en\"", page, b.Lang)
	}
	if b.H1 != 1 {
		t.Errorf("%s has %d <h1> elements, want exactly one", page, b.H1)
	}
	if b.Scripts != 0 {
		t.Errorf("%s has %d <script> elements; gateway pages must work without JavaScript", page, b.Scripts)
	}
	for _, el := range b.Unlabelled {
		t.Errorf("%s: form field without a <label for>: %s", page, el)
	}
	if b.Sheets < 1 || !contains(b.SheetHrefs, "/.cacgate/assets/style.css") {
		t.Errorf("%s: stylesheets %v, want /.cacgate/assets/style.css", page, b.SheetHrefs)
	}
	// A stylesheet that failed to load has no rules.
	if b.Rules <= 0 {
		t.Errorf("%s: the stylesheet has %d CSS rules; did it load?", page, b.Rules)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// saveScreenshot writes a PNG under the test's temporary directory and,
// when CACGATE_SCREENSHOT_DIR is set, copies it there for a person to see.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("CACGATE_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, name)
	if err := os.WriteFile(keep, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", keep)
}

// lockedBuffer collects the browser's output, which arrives from another
// goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
