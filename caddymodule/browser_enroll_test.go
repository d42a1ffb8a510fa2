package caddymodule

// A real headless Chromium walking a card through self-enrollment: banner,
// choice page, identity, profile and security questions, then the
// application. It uses the helpers of browser_test.go and skips the same way
// when Chromium or the NSS tools are missing.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cacgate/cacgate/internal/credential"
)

func TestBrowserEnrollment(t *testing.T) {
	requireBrowser(t)
	g := startEnrollGateway(t, "")
	// Robert E. Johnson Jr.: in the roster twice (Marine Corps Reserve and
	// DoD Civilian), so enrollment makes one dual account.
	johnson := card(t, "johnson.robert.e.jr")
	// startBrowser bounds the whole browser session by browserTimeout;
	// every step below has its own deadline, browserStep.
	ctx := startBrowser(t, newBrowserProfile(t, g.url("main", ""), johnson))
	begin := time.Now()

	// 1. Banner, then the enrollment choice page.
	step := time.Now()
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/records"))); err != nil {
		t.Fatalf("navigating to /records: %v (a stalled TLS handshake means Chromium did not select the card)", err)
	}
	acceptXPath := `//button[normalize-space(.)="I Accept"]`
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/consent", bannerOpening); err != nil {
		t.Fatalf("first visit: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(acceptXPath))); err != nil {
		t.Fatalf("clicking I Accept: %v", err)
	}
	newAccountXPath := `//a[normalize-space(.)="Create a new account"]`
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll", "Create a new account"); err != nil {
		t.Fatalf("after I Accept: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	t.Logf("banner accepted, choice page %s reached in %v", evalOr(ctx, `document.location.pathname + document.location.search`), time.Since(step).Round(time.Millisecond))
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(newAccountXPath))); err != nil {
		t.Fatalf("clicking Create a new account: %v", err)
	}

	// 2. Identity: SSN and date of birth, checked against the roster.
	step = time.Now()
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/new", "Confirm who you are"); err != nil {
		t.Fatalf("identity page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	checkPageBasics(t, ctx, "identity page")
	ssnRadio := labelledXPath("input", "I have a Social Security Number")
	// Click the label, as a person does: that also proves it is wired to the radio.
	if err := doWithin(ctx, browserStep,
		chromedp.Click(chromedp.Search(`//label[normalize-space(.)="I have a Social Security Number"]`)),
	); err != nil {
		t.Fatalf("choosing the SSN radio by its label: %v\npage text:\n%s", err, pageText(ctx))
	}
	if checked := mustEval[bool](t, ctx, jsXPathNode(ssnRadio)+`.checked`); !checked {
		t.Fatal("clicking the label \"I have a Social Security Number\" did not check the SSN radio")
	}
	typeIntoLabelled(t, ctx, "Social Security Number", "900-11-1892")
	setLabelled(t, ctx, "input", "Date of birth", "1975-04-12")
	clickButton(t, ctx, "Next")

	// 3. Profile: contact details and a password.
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/new", "Self registration: 1 of 2"); err != nil {
		t.Fatalf("after the identity page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	t.Logf("identity confirmed in %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	checkPageBasics(t, ctx, "profile page")
	text := pageText(ctx)
	for _, want := range []string{"1234567892", "Marine Corps Reserve", "DoD Civilian"} {
		if !strings.Contains(text, want) {
			t.Errorf("profile page does not show %q (a dual account); page text:\n%s", want, text)
		}
	}
	const password = "Semper.Fi~Always7"
	typeIntoLabelled(t, ctx, "External email address", "r.johnson@example.org")
	chooseLabelled(t, ctx, "Organization", "USMC")
	chooseLabelled(t, ctx, "Geographic location", "North America")
	typeIntoLabelled(t, ctx, "New password", password)
	typeIntoLabelled(t, ctx, "Confirm the new password", password)
	clickButton(t, ctx, "Next")

	// 4. Three different security questions.
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/profile", "Self registration: 2 of 2"); err != nil {
		t.Fatalf("after the profile page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	t.Logf("profile accepted in %v", time.Since(step).Round(time.Millisecond))
	step = time.Now()
	checkPageBasics(t, ctx, "questions page")
	qs := credential.Questions()
	answers := []string{"Mrs Henderson", "Sergeant Biscuit", "Camp Pendleton 1984"}
	for i, answer := range answers {
		fieldset := fmt.Sprintf(`//fieldset[legend[normalize-space(.)="Security question %d"]]`, i+1)
		inSet := func(tag, label string) string {
			return fmt.Sprintf(`%s//%s[@id=ancestor::fieldset[1]//label[normalize-space(.)=%s]/@for]`, fieldset, tag, xpathLiteral(label))
		}
		chooseOptionText(t, ctx, inSet("select", "Question"), qs[i].Text)
		typeInto(t, ctx, inSet("input", "Answer"), answer)
		typeInto(t, ctx, inSet("input", "Answer again"), answer)
	}
	if g.backend.count() != 0 {
		t.Fatal("the backend was reached before enrollment was complete")
	}
	clickButton(t, ctx, "Complete registration")

	// 5. The confirmation page, with the new username.
	if _, err := waitForBody(ctx, browserStep, "/.cacgate/enroll/questions", "Account registration complete"); err != nil {
		t.Fatalf("after the questions page: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	t.Logf("enrollment completed in %v", time.Since(step).Round(time.Millisecond))
	username, err := chromedp.Run(ctx, chromedp.Text(chromedp.Search(`//dt[normalize-space(.)="Username"]/following-sibling::dd[1]`)))
	if err != nil {
		t.Fatalf("reading the username on the confirmation page: %v\npage text:\n%s", err, pageText(ctx))
	}
	if strings.TrimSpace(username) != "robert.e.johnson" {
		t.Errorf("confirmation page username = %q, want robert.e.johnson\npage text:\n%s", username, pageText(ctx))
	}
	if text := pageText(ctx); strings.Contains(text, password) || strings.Contains(text, answers[0]) {
		t.Errorf("the confirmation page shows the password or a security answer:\n%s", text)
	}
	shotCtx, shotCancel := context.WithTimeout(ctx, browserStep)
	shot, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(100))
	shotCancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveScreenshot(t, "enroll-complete.png", shot)

	// 6. The new account reaches the application.
	if err := doWithin(ctx, browserStep, chromedp.Navigate(g.url("main", "/records"))); err != nil {
		t.Fatalf("navigating to /records after enrollment: %v", err)
	}
	const want = "legacy app: GET /records"
	body, err := waitForBody(ctx, browserStep, "/records", want)
	if err != nil {
		t.Fatalf("after enrollment: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), body)
	}
	if strings.TrimSpace(body) != want {
		t.Errorf("application page = %q, want %q", body, want)
	}
	if got := g.backend.last(t).Get("X-Remote-User"); got != "robert.e.johnson" {
		t.Errorf("backend X-Remote-User = %q, want robert.e.johnson", got)
	}
	t.Logf("whole enrollment in the browser took %v", time.Since(begin).Round(time.Millisecond))
}

// labelledXPath is the XPath of the tag element that the label with exactly
// this text (whitespace normalized) points at with its for attribute.
func labelledXPath(tag, label string) string {
	return fmt.Sprintf(`//%s[@id=//label[normalize-space(.)=%s]/@for]`, tag, xpathLiteral(label))
}

// xpathLiteral quotes s as an XPath 1.0 string literal, which has no escapes.
func xpathLiteral(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	if !strings.Contains(s, `'`) {
		return `'` + s + `'`
	}
	parts := strings.Split(s, `"`)
	return `concat("` + strings.Join(parts, `", '"', "`) + `")`
}

// jsXPathNode is a JavaScript expression for the first node matching xpath.
func jsXPathNode(xpath string) string {
	return fmt.Sprintf(`document.evaluate(%q, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue`, xpath)
}

// typeInto types value into the visible input at xpath.
func typeInto(t *testing.T, ctx context.Context, xpath, value string) {
	t.Helper()
	if err := doWithin(ctx, browserStep, chromedp.SendKeys(chromedp.Search(xpath), value)); err != nil {
		t.Fatalf("typing into %s: %v\npage text:\n%s", xpath, err, pageText(ctx))
	}
}

// typeIntoLabelled types value into the input labelled label.
func typeIntoLabelled(t *testing.T, ctx context.Context, label, value string) {
	t.Helper()
	typeInto(t, ctx, labelledXPath("input", label), value)
}

// setLabelled sets the value of the tag element labelled label directly, for
// fields whose typing depends on the browser's locale (type=date).
func setLabelled(t *testing.T, ctx context.Context, tag, label, value string) {
	t.Helper()
	xpath := labelledXPath(tag, label)
	if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(xpath)), chromedp.SetValue(chromedp.Search(xpath), value)); err != nil {
		t.Fatalf("setting %s to %q: %v\npage text:\n%s", xpath, value, err, pageText(ctx))
	}
	if got := mustEval[string](t, ctx, jsXPathNode(xpath)+`.value`); got != value {
		t.Fatalf("%s holds %q after setting %q", xpath, got, value)
	}
}

// chooseLabelled picks the option with text optionText in the select labelled label.
func chooseLabelled(t *testing.T, ctx context.Context, label, optionText string) {
	t.Helper()
	chooseOptionText(t, ctx, labelledXPath("select", label), optionText)
}

// chooseOptionText picks, in the visible select at xpath, the option whose
// visible text is optionText.
func chooseOptionText(t *testing.T, ctx context.Context, xpath, optionText string) {
	t.Helper()
	optionXPath := fmt.Sprintf(`%s/option[normalize-space(.)=%s]`, xpath, xpathLiteral(optionText))
	if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(xpath))); err != nil {
		t.Fatalf("select %s is not visible: %v\npage text:\n%s", xpath, err, pageText(ctx))
	}
	valueCtx, cancel := context.WithTimeout(ctx, browserStep)
	value, err := chromedp.Run(valueCtx, chromedp.Value(chromedp.Search(optionXPath)))
	cancel()
	if err != nil {
		t.Fatalf("select %s has no option %q: %v", xpath, optionText, err)
	}
	if err := doWithin(ctx, browserStep, chromedp.SetValue(chromedp.Search(xpath), value)); err != nil {
		t.Fatalf("choosing %q in %s: %v", optionText, xpath, err)
	}
	if got := mustEval[string](t, ctx, jsXPathNode(xpath)+`.selectedOptions[0].text.trim()`); got != optionText {
		t.Fatalf("select %s shows %q after choosing %q", xpath, got, optionText)
	}
}

// clickButton clicks the form's button with exactly this text.
func clickButton(t *testing.T, ctx context.Context, button string) {
	t.Helper()
	xpath := fmt.Sprintf(`//button[normalize-space(.)=%s]`, xpathLiteral(button))
	if err := doWithin(ctx, browserStep, chromedp.Click(chromedp.Search(xpath))); err != nil {
		t.Fatalf("clicking %q: %v\npage text:\n%s", button, err, pageText(ctx))
	}
}
