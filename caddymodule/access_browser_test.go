package caddymodule

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAccessDenied: a card holder who accepted the banner but lacks
// the site's group sees the 403 page in Chromium, naming what is missing,
// whom to ask, and nothing about the gateway's internals.
func TestBrowserAccessDenied(t *testing.T) {
	requireBrowser(t)
	g := startGateway(t, "", "allow group ops-admins")
	g.createAccount("1234567890", "john.q.doe")
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), card(t, "doe.john.quincy")))

	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/reports"))); err != nil {
		t.Fatalf("navigating: %v", err)
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
		t.Fatalf("clicking I Accept: %v\npage text:\n%s", err, pageText(ctx))
	}
	heading := `//h1[normalize-space(.)="You do not have access to this page"]`
	if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(heading))); err != nil {
		t.Fatalf("no 403 heading after the banner: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if got := evalOr(ctx, `document.location.pathname`); got != "/reports" {
		t.Errorf("refused at %q, want the page asked for (/reports)", got)
	}
	text := pageText(ctx)
	for _, want := range []string{
		"This site is limited to: members of group ops-admins.",
		"You are signed in as john.q.doe.",
		"ask the site's administrators for access: tell them your username",
		"Test Help Desk",
		"access_denied",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("403 page does not show %q; page text:\n%s", want, text)
		}
	}
	for _, leak := range []string{"allow group", "rule", g.dir} {
		if strings.Contains(text, leak) {
			t.Errorf("403 page shows %q:\n%s", leak, text)
		}
	}
	checkPageBasics(t, ctx, "403 access page")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveScreenshot(t, "access-denied.png", shot)
	if n := g.backend.count(); n != 0 {
		t.Fatalf("the backend saw %d requests from a refused card holder", n)
	}
}
