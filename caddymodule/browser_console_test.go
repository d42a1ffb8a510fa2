package caddymodule

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// axeSource is axe-core 4.14.1 (Deque Systems, MPL-2.0; licence in
// testdata/axe/LICENSE), from `npm pack axe-core@4`. It is injected into
// each page through the DevTools protocol, which the pages' CSP does not
// govern: the pages themselves carry no script.
//
//go:embed testdata/axe/axe.min.js
var axeSource string

// axeViolation is one rule axe-core found broken on a page.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// runAxe runs axe-core's WCAG 2 A/AA and best-practice rules on the page
// the browser shows, and returns the violations.
func runAxe(t *testing.T, ctx context.Context) []axeViolation {
	t.Helper()
	if !mustEval[bool](t, ctx, `typeof window.axe !== "undefined"`) {
		ctx2, cancel := context.WithTimeout(ctx, browserStep)
		defer cancel()
		if _, err := chromedp.Run(ctx2, chromedp.Evaluate[bool](axeSource+";true")); err != nil {
			t.Fatalf("injecting axe-core: %v", err)
		}
	}
	ctx2, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	type result struct {
		Violations []axeViolation `json:"violations"`
		Passed     int            `json:"passed"`
	}
	res, err := chromedp.Run(ctx2, chromedp.Evaluate[result](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}
	}).then(r => ({passed: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
		nodes: v.nodes.slice(0, 3).map(n => n.html)}))}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running axe-core: %v", err)
	}
	if res.Passed < 10 {
		// Sanity: axe-core ran its rules on a real page.
		t.Fatalf("axe-core passed only %d rules: did it run?", res.Passed)
	}
	return res.Violations
}

// checkAxe fails the test for any axe-core violation on the page.
func checkAxe(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	for _, v := range runAxe(t, ctx) {
		t.Errorf("%s: axe-core %s (%s): %s\n  %s", page, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
}

// clickAndWait clicks the element xpath finds and waits for the page to
// show want.
func clickAndWait(t *testing.T, ctx context.Context, xpath, path, want string) {
	t.Helper()
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(xpath))); err != nil {
		t.Fatalf("clicking %s: %v\npage text:\n%s", xpath, err, pageText(ctx))
	}
	if body, err := waitForBody(ctx, browserStep, path, want); err != nil {
		t.Fatalf("after clicking %s: %v\nlocation %s\npage text:\n%s", xpath, err, evalOr(ctx, `document.location.href`), body)
	}
}

// TestBrowserConsoleWalk walks the help-desk console in Chromium as an
// administrator with a card: search → account → unlock → clear card →
// approve, with axe-core on every console page.
func TestBrowserConsoleWalk(t *testing.T) {
	requireBrowser(t)
	g := startGateway(t, "", consoleSite)
	g.createAccount("1234567890", "john.q.doe")
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/groups", map[string]any{"groups": []string{"helpdesk"}}, nil); code != http.StatusOK {
		t.Fatalf("adding the administrator to helpdesk: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]any{"edipi": "1234567896", "username": "luis.garcia",
		"given_name": "Luis", "family_name": "Garcia", "email": "luis.garcia@example.mil", "status": "pending"}, nil); code != http.StatusCreated {
		t.Fatalf("creating luis.garcia: HTTP %d", code)
	}
	garcia := card(t, "garcia.luis.a")
	if code := g.adminDo("POST", "/cacgate/accounts/luis.garcia/cards", map[string]any{"certificate": string(pemChain(garcia.Chain[:1]))}, nil); code != http.StatusCreated {
		t.Fatalf("linking garcia's card: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/announcements", map[string]any{"severity": "outage", "message": "The reports module is down until 18:00.",
		"end": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}, nil); code != http.StatusCreated {
		t.Fatalf("creating an announcement: HTTP %d", code)
	}
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), card(t, "doe.john.quincy")))

	// Through the banner, like any other page.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/admin"))); err != nil {
		t.Fatalf("opening the console: %v", err)
	}
	if got := evalOr(ctx, `document.location.pathname`); got != "/.cacgate/consent" {
		t.Fatalf("the console was reached at %s before the banner", got)
	}
	waitUntil(t, "the announcement on the banner", func() bool { return strings.Contains(pageText(ctx), "reports module is down") })
	checkPageBasics(t, ctx, "banner page")
	checkAxe(t, ctx, "banner page (with an announcement and the help desk)")
	clickAndWait(t, ctx, `//button[normalize-space(.)="I Accept"]`, "/.cacgate/admin", "Waiting for approval (1)")

	checkPageBasics(t, ctx, "console home")
	checkAxe(t, ctx, "console home")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		saveScreenshot(t, "console-home.png", shot)
	}

	// Search, through the field's label.
	search := `//input[@id=//label[normalize-space(.)="Find an account by name, username, DoD ID or e-mail"]/@for]`
	if err := doWithin(ctx, browserStep, chromedp.SendKeys(chromedp.Search(search), "garcia")); err != nil {
		t.Fatalf("typing the search: %v", err)
	}
	clickAndWait(t, ctx, `//button[normalize-space(.)="Search"]`, "/.cacgate/admin/accounts", "Accounts 1–1 of 1")
	checkPageBasics(t, ctx, "search results")
	checkAxe(t, ctx, "search results")

	// The account.
	clickAndWait(t, ctx, `//a[normalize-space(.)="luis.garcia"]`, "/.cacgate/admin/accounts/luis.garcia", "Registered cards")
	checkPageBasics(t, ctx, "account page")
	checkAxe(t, ctx, "account page")
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		saveScreenshot(t, "console-account.png", shot)
	}

	// Unlock, clear the card, approve: each lands on the account again
	// with what was done.
	clickAndWait(t, ctx, `//button[starts-with(normalize-space(.), "Unlock")]`, "/.cacgate/admin/accounts/luis.garcia", "The password lockout was lifted")
	checkAxe(t, ctx, "account page after unlock")
	clickAndWait(t, ctx, `//button[normalize-space(.)="Clear registration"]`, "/.cacgate/admin/accounts/luis.garcia", "registration was cleared")
	checkAxe(t, ctx, "account page after clearing the card")
	clickAndWait(t, ctx, `//button[normalize-space(.)="Approve"]`, "/.cacgate/admin/accounts/luis.garcia", "The account was approved")
	checkAxe(t, ctx, "account page after approval")
	var acct AccountJSON
	g.adminDo("GET", "/cacgate/accounts/luis.garcia", nil, &acct)
	if acct.Status != "active" || len(acct.Cards) != 0 {
		t.Errorf("after the walk: status %s, %d cards", acct.Status, len(acct.Cards))
	}

	// The other console pages.
	for _, p := range []struct{ path, want string }{
		{"/.cacgate/admin/announcements", "New announcement"},
		{"/.cacgate/admin/status", "CRLs per CA"},
	} {
		if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", p.path))); err != nil {
			t.Fatalf("opening %s: %v", p.path, err)
		}
		if !strings.Contains(pageText(ctx), p.want) {
			t.Fatalf("%s does not show %q:\n%s", p.path, p.want, pageText(ctx))
		}
		checkPageBasics(t, ctx, p.path)
		checkAxe(t, ctx, p.path)
	}
	// A refused announcement form, with its error summary.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/admin/announcements"))); err != nil {
		t.Fatalf("opening the announcements: %v", err)
	}
	if err := doWithin(ctx, browserStep, chromedp.SendKeys(chromedp.Search(`//textarea[@id=//label[normalize-space(.)="Message"]/@for]`), "Short notice")); err != nil {
		t.Fatalf("typing an announcement: %v", err)
	}
	clickAndWait(t, ctx, `//button[normalize-space(.)="Save announcement"]`, "/.cacgate/admin/announcements", "The announcement was not saved")
	checkAxe(t, ctx, "announcements page with errors")
	if !strings.Contains(evalOr(ctx, `document.querySelector("#message").value`), "Short notice") {
		t.Error("the refused announcement form lost the message")
	}
}

// TestBrowserAxeExistingPages runs axe-core on the pages outside the
// console that a person meets first: the no-card page and the
// not-registered page. (The banner is covered by TestBrowserConsoleWalk.)
func TestBrowserAxeExistingPages(t *testing.T) {
	requireBrowser(t)
	g := startGateway(t, "", consoleSite)
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), nil))
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/app"))); err != nil {
		t.Fatalf("navigating without a card: %v", err)
	}
	checkAxe(t, ctx, "no-card page")

	ctx = startBrowser(t, newBrowserProfile(t, g.url("main", ""), card(t, "smith.jane")))
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/app"))); err != nil {
		t.Fatalf("navigating with an unregistered card: %v", err)
	}
	checkAxe(t, ctx, fmt.Sprintf("banner page for an unregistered card (%s)", evalOr(ctx, `document.location.pathname`)))
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
		t.Fatalf("accepting: %v", err)
	}
	waitUntil(t, "the not-registered page", func() bool { return strings.Contains(pageText(ctx), "not registered") })
	checkAxe(t, ctx, "not-registered page")
}
