package caddymodule

// A real headless Chromium walking a federal PIV card (no EDIPI, no
// personnel record) through sponsored enrollment: banner, choice page,
// straight to the profile (no identity form), security questions, and the
// "waiting for approval" page; then, approved, the application.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cacgate/cacgate/internal/credential"
)

func TestBrowserSponsoredEnrollment(t *testing.T) {
	requireBrowser(t)
	f := federalPKI(t)
	rosterPath := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(testRoster+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startKindsGateway(t, "roster csv "+rosterPath, "enroll {\n sponsor\n }")
	ctx := startBrowser(t, newBrowserProfile(t, g.url("all", ""), f.PIV))

	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("all", "/records"))); err != nil {
		t.Fatalf("navigating to /records: %v (a stalled TLS handshake means Chromium did not select the card)", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/consent", bannerOpening); err != nil {
		t.Fatalf("first visit: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
		t.Fatalf("clicking I Accept: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll", "Create a new account"); err != nil {
		t.Fatalf("after I Accept: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//a[normalize-space(.)="Create a new account"]`))); err != nil {
		t.Fatalf("clicking Create a new account: %v", err)
	}

	// No identity form: the profile at once, naming the credential.
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/new", "Self registration: 1 of 2"); err != nil {
		t.Fatalf("profile page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	checkPageBasics(t, ctx, "sponsored profile page")
	text := pageText(ctx)
	for _, want := range []string{"federal PIV card", "Federal PIV holder", "approval"} {
		if !strings.Contains(text, want) {
			t.Errorf("profile page does not show %q; page text:\n%s", want, text)
		}
	}
	if strings.Contains(text, "DoD ID") || strings.Contains(text, "Social Security") {
		t.Errorf("profile page of a PIV holder speaks of a DoD ID or an SSN:\n%s", text)
	}
	const password = "Sponsored.Card~2026"
	typeIntoLabelled(t, ctx, "External email address", "jane.federal@example.gov")
	chooseLabelled(t, ctx, "Organization", "USMC")
	chooseLabelled(t, ctx, "Geographic location", "North America")
	typeIntoLabelled(t, ctx, "New password", password)
	typeIntoLabelled(t, ctx, "Confirm the new password", password)
	clickButton(t, ctx, "Next")

	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/profile", "Self registration: 2 of 2"); err != nil {
		t.Fatalf("after the profile page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	checkPageBasics(t, ctx, "sponsored questions page")
	qs := credential.Questions()
	for i, answer := range []string{"Mrs Henderson", "Sergeant Biscuit", "Camp Pendleton 1984"} {
		fieldset := fmt.Sprintf(`//fieldset[legend[normalize-space(.)="Security question %d"]]`, i+1)
		inSet := func(tag, label string) string {
			return fmt.Sprintf(`%s//%s[@id=ancestor::fieldset[1]//label[normalize-space(.)=%s]/@for]`, fieldset, tag, xpathLiteral(label))
		}
		chooseOptionText(t, ctx, inSet("select", "Question"), qs[i].Text)
		typeInto(t, ctx, inSet("input", "Answer"), answer)
		typeInto(t, ctx, inSet("input", "Answer again"), answer)
	}
	clickButton(t, ctx, "Complete registration")
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/questions", "Your account is waiting for approval"); err != nil {
		t.Fatalf("after the questions page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	checkPageBasics(t, ctx, "waiting-for-approval page")
	if g.backend.count() != 0 {
		t.Fatal("the backend was reached before the account was approved")
	}

	// The sponsor approves; the holder reaches the application as a PIV holder.
	if code := g.adminDo("POST", "/cacgate/accounts/jane.q.federal/approve", nil, nil); code != http.StatusOK {
		t.Fatalf("approving jane.q.federal: HTTP %d", code)
	}
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("all", "/records"))); err != nil {
		t.Fatalf("navigating after approval: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/records", "legacy app: GET /records"); err != nil {
		t.Fatalf("after approval: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if h := g.backend.last(t); h.Get("X-Remote-User") != "jane.q.federal" || h.Get("X-Cac-Credential") != "piv" || h.Get("X-Cac-Edipi") != "" {
		t.Errorf("backend headers after approval: %v", h)
	}
}

// TestBrowserPIVRosterEnrollment: a federal PIV card that the roster lists
// by its card UUID walks the pages a CAC holder walks (identity form
// naming the credential, profile, questions) and reaches the application
// at once, no approval needed.
func TestBrowserPIVRosterEnrollment(t *testing.T) {
	requireBrowser(t)
	f := federalPKI(t)
	rows := strings.SplitN(testRoster, "\n", 2)[0] + ",card_uuid,email\n"
	for _, line := range strings.Split(strings.TrimSpace(testRoster), "\n")[1:] {
		rows += line + ",,\n"
	}
	rows += ",900-11-1901,,1979-02-14,,FEDERAL,JANE,Q,Federal Civilian,Department of Testing," + cardUUID(t, f.PIV) + ",\n"
	rosterPath := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(rosterPath, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startKindsGateway(t, "roster csv "+rosterPath, "enroll {\n sponsor\n }")
	ctx := startBrowser(t, newBrowserProfile(t, g.url("all", ""), f.PIV))

	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("all", "/records"))); err != nil {
		t.Fatalf("navigating to /records: %v (a stalled TLS handshake means Chromium did not select the card)", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/consent", bannerOpening); err != nil {
		t.Fatalf("first visit: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//button[normalize-space(.)="I Accept"]`))); err != nil {
		t.Fatalf("clicking I Accept: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll", "Create a new account"); err != nil {
		t.Fatalf("after I Accept: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(`//a[normalize-space(.)="Create a new account"]`))); err != nil {
		t.Fatalf("clicking Create a new account: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/new", "Confirm who you are"); err != nil {
		t.Fatalf("identity page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	checkPageBasics(t, ctx, "PIV identity page")
	if text := pageText(ctx); !strings.Contains(text, "personnel records for your federal PIV card") || strings.Contains(text, "DoD ID") {
		t.Errorf("identity page of a PIV holder:\n%s", text)
	}
	typeIntoLabelled(t, ctx, "Social Security Number", "900-11-1901")
	setLabelled(t, ctx, "input", "Date of birth", "1979-02-14")
	clickButton(t, ctx, "Next")

	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/new", "Self registration: 1 of 2"); err != nil {
		t.Fatalf("profile page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	checkPageBasics(t, ctx, "PIV profile page")
	if text := pageText(ctx); !strings.Contains(text, "Federal Civilian") || !strings.Contains(text, "personnel records confirmed") ||
		strings.Contains(text, "approval") || strings.Contains(text, "900-11-1901") {
		t.Errorf("profile page after the roster check:\n%s", text)
	}
	const password = "Rostered.Card~2026"
	typeIntoLabelled(t, ctx, "External email address", "jane.federal@example.gov")
	chooseLabelled(t, ctx, "Organization", "USMC")
	chooseLabelled(t, ctx, "Geographic location", "North America")
	typeIntoLabelled(t, ctx, "New password", password)
	typeIntoLabelled(t, ctx, "Confirm the new password", password)
	clickButton(t, ctx, "Next")

	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/profile", "Self registration: 2 of 2"); err != nil {
		t.Fatalf("after the profile page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	qs := credential.Questions()
	for i, answer := range []string{"Mrs Henderson", "Sergeant Biscuit", "Camp Pendleton 1984"} {
		fieldset := fmt.Sprintf(`//fieldset[legend[normalize-space(.)="Security question %d"]]`, i+1)
		inSet := func(tag, label string) string {
			return fmt.Sprintf(`%s//%s[@id=ancestor::fieldset[1]//label[normalize-space(.)=%s]/@for]`, fieldset, tag, xpathLiteral(label))
		}
		chooseOptionText(t, ctx, inSet("select", "Question"), qs[i].Text)
		typeInto(t, ctx, inSet("input", "Answer"), answer)
		typeInto(t, ctx, inSet("input", "Answer again"), answer)
	}
	clickButton(t, ctx, "Complete registration")
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/questions", "jane.q.federal"); err != nil {
		t.Fatalf("after the questions page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if text := pageText(ctx); strings.Contains(text, "waiting for approval") {
		t.Errorf("a rostered PIV holder waits for approval:\n%s", text)
	}
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("all", "/records"))); err != nil {
		t.Fatalf("navigating to the application: %v", err)
	}
	if _, err := waitForBody(ctx, browserStep, "/records", "legacy app: GET /records"); err != nil {
		t.Fatalf("the application: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if h := g.backend.last(t); h.Get("X-Remote-User") != "jane.q.federal" || h.Get("X-Cac-Credential") != "piv" || h.Get("X-Cac-Edipi") != "" {
		t.Errorf("backend headers: %v", h)
	}
}
