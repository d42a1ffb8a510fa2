package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserCertificatesPage: a browser without a card follows the
// no-card page's link to the certificates page, which lists the CAs of
// the site's DISA bundle with the downloads and instructions, readable
// without JavaScript.
func TestBrowserCertificatesPage(t *testing.T) {
	requireBrowser(t)
	g := startBundleGateway(t)
	ctx := startBrowser(t, newBrowserProfile(t, g.url("given", ""), nil))

	navCtx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	resp, err := chromedp.Run(navCtx, chromedp.NavigateResponse(g.url("given", "/app")))
	if err != nil {
		t.Fatalf("navigating without a card: %v", err)
	}
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("HTTP status = %d, want 401", resp.Status)
	}
	link := `//a[starts-with(normalize-space(.), "Get the DoD certificates this site uses")]`
	if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(link)), chromedp.Click(chromedp.Search(link))); err != nil {
		t.Fatalf("no-card page: the certificates link: %v\npage text:\n%s", err, pageText(ctx))
	}
	if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(`//h1[normalize-space(.)="DoD certificates for this site"]`))); err != nil {
		t.Fatalf("certificates page not reached: %v\nlocation %s\npage text:\n%s", err, evalOr(ctx, `document.location.href`), pageText(ctx))
	}
	if got := evalOr(ctx, `document.location.pathname`); got != "/.cacgate/certificates" {
		t.Errorf("ended at %q", got)
	}
	checkPageBasics(t, ctx, "certificates page")
	for _, sel := range []string{
		`//table[@class="certificates"]//td[normalize-space(.)="TEST DOD ID CA-70"]`,
		`//a[@href="/.cacgate/certificates/dod-certificates.p7b"][@download]`,
		`//a[@href="/.cacgate/certificates/dod-certificates.pem"][@download]`,
		`//h3[normalize-space(.)="Windows (Edge, Chrome)"]`,
		`//th[@scope="col"][normalize-space(.)="SHA-256 fingerprint"]`,
	} {
		if err := doWithin(ctx, browserStep, chromedp.WaitVisible(chromedp.Search(sel))); err != nil {
			t.Errorf("certificates page: %s is not visible: %v", sel, err)
		}
	}
	text := pageText(ctx)
	if !strings.Contains(text, "macOS") || !strings.Contains(text, "Firefox") {
		t.Errorf("instructions missing; page text:\n%s", text)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveScreenshot(t, "certificates.png", shot)
}
