package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserLastSignIn: in Chromium, a card holder's second logon shows
// the last sign-in notice (accessible, no JavaScript) before the
// application, and the account page's notice choices work by their labels.
func TestBrowserLastSignIn(t *testing.T) {
	requireBrowser(t)
	rosterPath := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(testRoster+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "roster csv "+rosterPath, "")
	var a AccountJSON
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567890", "username": "john.q.doe", "email": "john.doe@example.mil"}, &a); code != 201 {
		t.Fatalf("creating the account: HTTP %d", code)
	}
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), card(t, "doe.john.quincy")))
	accept := func() {
		t.Helper()
		if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/reports"))); err != nil {
			t.Fatalf("navigating: %v", err)
		}
		if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
			t.Fatalf("clicking I Accept: %v\npage text:\n%s", err, pageText(ctx))
		}
	}
	// First logon: nothing to tell, straight to the application.
	accept()
	if _, err := waitForBody(ctx, browserStep, "/reports", "legacy app: GET /reports"); err != nil {
		t.Fatalf("first logon: %v\nlocation %s", err, evalOr(ctx, `document.location.href`))
	}
	// Sign out, and in again.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/logout"))); err != nil {
		t.Fatal(err)
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Sign out"]`))); err != nil {
		t.Fatalf("clicking Sign out: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/logout", "You have signed out"); err != nil {
		t.Fatal(err)
	}
	accept()
	text, err := waitForBody(ctx, browserStep, "/.cacgate/last-signin", "Previous successful sign-in")
	if err != nil {
		t.Fatalf("second logon: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), text)
	}
	for _, want := range []string{"Date and time", "From", "Failed sign-in attempts since then"} {
		if !strings.Contains(text, want) {
			t.Errorf("last sign-in page lacks %q:\n%s", want, text)
		}
	}
	checkPageBasics(t, ctx, "last sign-in page")
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//a[normalize-space(.)="Continue"]`))); err != nil {
		t.Fatalf("clicking Continue: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/reports", "legacy app: GET /reports"); err != nil {
		t.Fatalf("after Continue: %v\nlocation %s", err, evalOr(ctx, `document.location.href`))
	}

	// The account page: the previous sign-in, and the notice choices.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/account"))); err != nil {
		t.Fatal(err)
	}
	text = pageText(ctx)
	if !strings.Contains(text, "Previous sign-in") || !strings.Contains(text, "E-mail notices") {
		t.Fatalf("account page:\n%s", text)
	}
	checkPageBasics(t, ctx, "account page")
	box := fmt.Sprintf(`//input[@id=//label[normalize-space(.)=%q]/@for]`, "Account approved")
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(box)),
		chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Save notice choices"]`))); err != nil {
		t.Fatalf("changing notice choices: %v\npage text:\n%s", err, pageText(ctx))
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/account/notices", "Your e-mail notice choices were saved."); err != nil {
		t.Fatalf("after saving: %v\npage text:\n%s", err, pageText(ctx))
	}
}
