package caddymodule

// A real headless Chromium without a card signing in with a password, then
// signing out through /.cacgate/logout and reading the logoff message.

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserPasswordSignOut(t *testing.T) {
	requireBrowser(t)
	g := startEnrollGateway(t, "password_login on")
	// The account gets its password by enrolling with the card.
	enrollJohnson(t, g)

	// startBrowser bounds the session, each step below is browserStep.
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), nil))

	// Sign in on the password page, as a person does.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/login?next=%2Fapp"))); err != nil {
		t.Fatalf("opening the sign-in page: %v", err)
	}
	typeIntoLabelled(t, ctx, "Username", "robert.e.johnson")
	typeIntoLabelled(t, ctx, "Password", "Correct.Horse~Bat9")
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Sign in"]`))); err != nil {
		t.Fatalf("clicking Sign in: %v", err)
	}
	// Then the banner, which a password session accepts too.
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/consent", bannerOpening); err != nil {
		t.Fatalf("after signing in: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
		t.Fatalf("clicking I Accept: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/app", "legacy app: GET /app"); err != nil {
		t.Fatalf("reaching the application: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if got := g.backend.last(t).Get("X-Remote-User"); got != "robert.e.johnson" {
		t.Fatalf("backend X-Remote-User = %q, want robert.e.johnson", got)
	}

	// The application's "Sign out" link leads to the gateway's page, whose
	// button posts the sign-out.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/.cacgate/logout"))); err != nil {
		t.Fatalf("opening the sign-out page: %v", err)
	}
	checkPageBasics(t, ctx, "sign-out page")
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Sign out"]`))); err != nil {
		t.Fatalf("clicking Sign out: %v\npage text:\n%s", err, pageText(ctx))
	}
	text, err := waitForBody(ctx, browserStep, "/.cacgate/logout", "You have signed out")
	if err != nil {
		t.Fatalf("after Sign out: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if !strings.Contains(text, "remove it from the reader") {
		t.Errorf("the logoff message does not tell card holders what to do:\n%s", text)
	}
	checkPageBasics(t, ctx, "signed-out page")
	// Requests the browser made while signed in (the favicon of each page
	// among them) reached the backend; none may from here on.
	reached := g.backend.count()
	if n := len(g.auditEntries(t, "signout.password")); n != 1 {
		t.Errorf("%d signout.password audit entries, want 1", n)
	}

	// The session is over: the application is out of reach again.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/app"))); err != nil {
		t.Fatalf("navigating after sign-out: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/app", "Insert your CAC"); err != nil {
		t.Fatalf("after sign-out: %v\npage text:\n%s", err, pageText(ctx))
	}
	if n := g.backend.count(); n != reached {
		t.Fatalf("the backend was reached %d more times after sign-out", n-reached)
	}
}
