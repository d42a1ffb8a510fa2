package caddymodule

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/forward"
	"github.com/cacgate/cacgate/internal/gateway"
	"github.com/cacgate/cacgate/internal/testpki"
)

func TestNoCertificate(t *testing.T) {
	g := startGateway(t, "", "")
	c := g.client(nil)

	resp, body := request(t, c, "GET", g.url("main", "/app"), browser, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Insert your CAC") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser without card: HTTP %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(body, "Test Help Desk") {
		t.Errorf("401 page does not name the contact:\n%s", body)
	}

	resp, body = request(t, c, "GET", g.url("main", "/api/items"), http.Header{"Accept": {"application/json"}}, nil)
	var problem struct{ Error, Message string }
	if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal([]byte(body), &problem) != nil || problem.Error != "certificate_required" {
		t.Fatalf("API client without card: HTTP %d %s", resp.StatusCode, body)
	}
	if g.backend.count() != 0 {
		t.Fatal("a request without a certificate reached the backend")
	}

	// The stylesheet and the JWKS are public: the 401 page and backends need them.
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/assets/style.css"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("stylesheet: HTTP %d", resp.StatusCode)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/.cacgate/jwks.json"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("jwks: HTTP %d", resp.StatusCode)
	}
}

func TestCertificateRefusals(t *testing.T) {
	g := startGateway(t, "", "")
	p := testPKI(t)
	noPolicy, err := p.Intermediate.IssueCard(testpki.CardSpec{
		Name: "nopolicy.nick", Family: "NOPOLICY", Given: "NICK", EDIPI: "1234567897",
		Policies: []asn1.ObjectIdentifier{},
	})
	if err != nil {
		t.Fatal(err)
	}
	notCAC, err := p.Intermediate.IssueCard(testpki.CardSpec{
		Name: "not.a.cac", CommonName: "webserver.example.mil", EDIPI: "1234567803", UPN: "-",
	})
	if err != nil {
		t.Fatal(err)
	}
	noSmartcard, err := p.Intermediate.IssueCard(testpki.CardSpec{
		Name: "nosc.sam", Family: "NOSC", Given: "SAM", EDIPI: "1234567898", NoSmartcardLogon: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, site string
		card       *testpki.Card
		code       string
	}{
		{"missing a required EKU", "strict", noSmartcard, "certificate_usage"},
		{"not a CAC identity", "main", notCAC, "certificate_invalid"},
		{"expired card", "strict", card(t, "expired.edward"), "certificate_expired"},
		{"no clientAuth EKU", "strict", card(t, "noeku.nancy"), "certificate_usage"},
		{"untrusted root with a legit-looking DN", "strict", card(t, "rogue.john.quincy"), "certificate_untrusted"},
		{"missing required policy", "strict", noPolicy, "certificate_policy"},
		{"chain not verified by anyone", "bare", card(t, "doe.john.quincy"), "certificate_not_verified"},
		{"issuer not allowed", "pinned", card(t, "doe.john.quincy"), "certificate_issuer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := g.client(tc.card)
			resp, body := request(t, c, "GET", g.url(tc.site, "/"), http.Header{"Accept": {"application/json"}}, nil)
			var problem struct{ Error, Message string }
			if resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(body), &problem) != nil || problem.Error != tc.code {
				t.Fatalf("HTTP %d %s; want 403 %s", resp.StatusCode, body, tc.code)
			}
			if problem.Message == "" || strings.Contains(problem.Message, "cacid:") {
				t.Errorf("refusal reason for the card holder: %q", problem.Message)
			}
			resp, body = request(t, c, "GET", g.url(tc.site, "/"), browser, nil)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cannot be used here") || !strings.Contains(body, tc.code) {
				t.Fatalf("browser: HTTP %d\n%s", resp.StatusCode, body)
			}
		})
	}
	// With verify_if_given the TLS handshake itself refuses an untrusted card.
	if _, err := g.client(card(t, "rogue.john.quincy")).Get(g.url("main", "/")); err == nil {
		t.Error("main site accepted a handshake with a rogue card")
	}
	if g.backend.count() != 0 {
		t.Fatal("a refused certificate reached the backend")
	}
	// A good card passes the strict site's checks (and lands on the banner).
	resp, _ := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("strict", "/"), browser, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("good card on strict site: HTTP %d", resp.StatusCode)
	}
}

func TestConsentFlow(t *testing.T) {
	g := startGateway(t, "", "")
	doe := card(t, "doe.john.quincy")
	c := g.client(doe)

	// API clients cannot click "I Accept".
	resp, body := request(t, c, "POST", g.url("main", "/api/items"), http.Header{"Accept": {"application/json"}}, strings.NewReader("{}"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"consent_required"`) {
		t.Fatalf("API POST before consent: HTTP %d %s", resp.StatusCode, body)
	}
	resp, body = request(t, c, "GET", g.url("main", "/api/items"), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"consent_required"`) {
		t.Fatalf("API GET before consent: HTTP %d %s", resp.StatusCode, body)
	}

	// A browser is sent to the banner, keeping where it was going.
	resp, _ = request(t, c, "GET", g.url("main", "/reports/q3?year=2026&x=a%20b"), browser, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/.cacgate/consent?next="+url.QueryEscape("/reports/q3?year=2026&x=a%20b") {
		t.Fatalf("browser before consent: HTTP %d Location %q", resp.StatusCode, loc)
	}
	resp, page := request(t, c, "GET", g.url("main", loc), browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("banner: HTTP %d", resp.StatusCode)
	}
	for _, want := range []string{"You are accessing a U.S. Government (USG) Information System (IS)", "See User Agreement for details.", "I Accept", "John Q. Doe"} {
		if !strings.Contains(page, want) {
			t.Errorf("banner page lacks %q", want)
		}
	}
	csrf := formValue(t, page, "csrf")
	next := formValue(t, page, "next")
	form := func(v url.Values) *strings.Reader { return strings.NewReader(v.Encode()) }
	post := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}

	// Without (or with a wrong) CSRF token, nothing is accepted.
	for _, bad := range []string{"", "AAAA", csrf[:len(csrf)-2] + "xx"} {
		resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/consent"), post, form(url.Values{"csrf": {bad}, "next": {"/"}}))
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Fatalf("POST with csrf %q: HTTP %d, cookies %v", bad, resp.StatusCode, resp.Cookies())
		}
	}
	// A cross-site post is refused even with a valid token.
	crossSite := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://evil.example"}}
	if resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/consent"), crossSite, form(url.Values{"csrf": {csrf}})); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST: HTTP %d", resp.StatusCode)
	}
	// Another card cannot use this card's token.
	if resp, _ = request(t, g.client(card(t, "smith.jane")), "POST", g.url("main", "/.cacgate/consent"), post, form(url.Values{"csrf": {csrf}})); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CSRF token of another card: HTTP %d", resp.StatusCode)
	}

	resp, _ = request(t, c, "POST", g.url("main", "/.cacgate/consent"), post, form(url.Values{"csrf": {csrf}, "next": {next}, "accept": {"yes"}}))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/reports/q3?year=2026&x=a%20b" {
		t.Fatalf("accept: HTTP %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	setCookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{consent.CookieName + "=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(setCookie, want) {
			t.Errorf("consent cookie %q lacks %q", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Expires") || strings.Contains(setCookie, "Max-Age") {
		t.Errorf("consent cookie %q is not a browser-session cookie", setCookie)
	}

	// Consented but not registered: to enrollment, which names the contact.
	resp, _ = request(t, c, "GET", g.url("main", "/reports/q3"), browser, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/.cacgate/enroll?next=") {
		t.Fatalf("unregistered card: HTTP %d Location %q", resp.StatusCode, loc)
	}
	resp, page = request(t, c, "GET", g.url("main", "/.cacgate/enroll?next=%2Freports%2Fq3"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not registered") || !strings.Contains(page, "1234567890") || !strings.Contains(page, "Test Help Desk") {
		t.Fatalf("enroll page: HTTP %d\n%s", resp.StatusCode, page)
	}
	resp, body = request(t, c, "GET", g.url("main", "/api/items"), nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"not_registered"`) {
		t.Fatalf("API client, unregistered card: HTTP %d %s", resp.StatusCode, body)
	}

	// Once an account exists, the same browser gets through.
	g.createAccount("1234567890", "john.q.doe")
	resp, _ = request(t, c, "GET", g.url("main", "/reports/q3"), browser, nil)
	if resp.StatusCode != http.StatusOK || g.backend.last(t).Get("X-Remote-User") != "john.q.doe" {
		t.Fatalf("registered card after consent: HTTP %d", resp.StatusCode)
	}
}

func TestConsentCookieIsBoundToTheCard(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	g.createAccount("1234567891", "jane.smith")
	a := g.client(card(t, "doe.john.quincy"))
	g.accept(t, a, "main")
	cookies := a.Jar.Cookies(&url.URL{Scheme: "https", Host: "localhost"})
	if len(cookies) != 1 {
		t.Fatalf("want one consent cookie, got %v", cookies)
	}
	stolen := cookies[0].Value

	b := g.client(card(t, "smith.jane"))
	resp, _ := request(t, b, "GET", g.url("main", "/"), http.Header{"Accept": {"text/html"}, "Cookie": {consent.CookieName + "=" + stolen}}, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/consent") {
		t.Fatalf("card B with card A's consent cookie: HTTP %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Tampered tokens: altered payload, altered signature, alg "none", HS256 signed with a guessed key.
	parts := strings.Split(stolen, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	json.Unmarshal(claims, &m)
	m["sub"] = fingerprint(card(t, "smith.jane"))
	forged, _ := json.Marshal(m)
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	guessed, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(m)).SignedString([]byte("secret"))
	for name, tok := range map[string]string{
		"payload swapped":   parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2],
		"signature flipped": parts[0] + "." + parts[1] + "." + flipLast(parts[2]),
		"alg none":          noneHeader + "." + base64.RawURLEncoding.EncodeToString(forged) + ".",
		"guessed key":       guessed,
	} {
		resp, _ := request(t, b, "GET", g.url("main", "/"), http.Header{"Accept": {"text/html"}, "Cookie": {consent.CookieName + "=" + tok}}, nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/consent") {
			t.Errorf("%s: HTTP %d, want the banner", name, resp.StatusCode)
		}
	}
	if n := g.backend.count(); n != 0 {
		t.Fatalf("backend saw %d requests from forged consent", n)
	}
}

func flipLast(s string) string {
	if strings.HasSuffix(s, "A") {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

func TestNextCannotLeaveTheSite(t *testing.T) {
	g := startGateway(t, "", "")
	c := g.client(card(t, "doe.john.quincy"))
	resp, page := request(t, c, "GET", g.url("main", "/.cacgate/consent"), browser, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	csrf := formValue(t, page, "csrf")
	for _, next := range []string{"//evil.example", "//evil.example/path", "https://evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)", "/%2F%2Fevil.example", "evil.example", "/ok\r\nLocation: https://evil.example"} {
		form := url.Values{"csrf": {csrf}, "next": {next}}
		resp, _ := request(t, c, "POST", g.url("main", "/.cacgate/consent"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form.Encode()))
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
			t.Errorf("next=%q: HTTP %d Location %q, want /", next, resp.StatusCode, loc)
		}
		// The banner page itself must not carry the hostile value either.
		_, page := request(t, c, "GET", g.url("main", "/.cacgate/consent?next="+url.QueryEscape(next)), browser, nil)
		if v := formValue(t, page, "next"); v != "/" {
			t.Errorf("banner for next=%q carries next=%q", next, v)
		}
	}
}

// TestNoAssertionByDefault: without header assertion on, the backend gets
// the eight plain identity headers and no assertion, and a client-sent
// X-Cac-Assertion is still taken out (a backend that once verified it
// must never see a forged one).
func TestNoAssertionByDefault(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	resp, body := request(t, c, "GET", g.url("main", "/app"), http.Header{
		"Accept": {"text/html"}, "X-Cac-Assertion": {"forged"}, "x_cac_assertion": {"forged"},
	}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enrolled card: HTTP %d %s", resp.StatusCode, body)
	}
	got := g.backend.last(t)
	for k, v := range got {
		if forward.SameName(k, defaultAssertionHeader) {
			t.Errorf("the backend got %s: %q", k, v)
		}
	}
	// A CAC holder at a CAC site: every default header but
	// X-Cac-Credential (sent where the site accepts other kinds) and
	// X-Cac-Account-Type (a utility account's).
	for i, name := range defaultHeaderNames {
		want := i != gateway.FieldCredential && i != gateway.FieldAccountType
		if sent := got.Get(name) != ""; sent != want {
			t.Errorf("default header %s sent: %v, want %v", name, sent, want)
		}
	}
}

func TestIdentityHeadersAndAssertion(t *testing.T) {
	g := startGateway(t, "", "header assertion on")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")

	spoof := http.Header{
		"Accept":             {"text/html"},
		"X-Remote-User":      {"admin", "root"},
		"x-remote-user":      {"admin2"},
		"X-REMOTE-USER":      {"admin3"},
		"X_Remote_User":      {"admin4"},
		"x-cac-edipi":        {"0000000000"},
		"X-Cac-Email":        {"evil@example.com"},
		"X-Cac-Assertion":    {"forged"},
		"X-From-Placeholder": {"forged"},
	}
	resp, _ := request(t, c, "GET", g.url("main", "/app?q=1"), spoof, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enrolled card: HTTP %d", resp.StatusCode)
	}
	got := g.backend.last(t)
	want := map[string]string{
		"X-Remote-User":      "john.q.doe",
		"X-Cac-Edipi":        "1234567890",
		"X-Cac-Given-Name":   "John",
		"X-Cac-Family-Name":  "Doe",
		"X-Cac-Affiliation":  "USA",
		"X-Cac-Cert-Sha256":  fingerprint(card(t, "doe.john.quincy")),
		"X-From-Placeholder": "john.q.doe/1234567890",
	}
	for k, v := range want {
		if vals := got.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("backend header %s = %q, want exactly [%q]", k, vals, v)
		}
	}
	if email := got.Values("X-Cac-Email"); len(email) != 1 || email[0] == "evil@example.com" {
		t.Errorf("X-Cac-Email = %q", email)
	}
	for k := range got {
		if forward.SameName(k, "x-remote-user") && k != "X-Remote-User" {
			t.Errorf("spoofed header variant %q reached the backend", k)
		}
	}

	// The assertion verifies against the served JWKS.
	asrt := got.Get("X-Cac-Assertion")
	resp, jwks := request(t, c, "GET", g.url("main", "/.cacgate/jwks.json"), nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	key := parseJWKS(t, jwks)
	var claims struct {
		jwt.RegisteredClaims
		EDIPI      string `json:"edipi"`
		CertSHA256 string `json:"cert_sha256"`
	}
	tok, err := jwt.ParseWithClaims(asrt, &claims, func(tok *jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("localhost"), jwt.WithIssuer("cacgate"), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		t.Fatalf("assertion does not verify against the JWKS: %v", err)
	}
	if claims.Subject != "john.q.doe" || claims.EDIPI != "1234567890" || claims.CertSHA256 != fingerprint(card(t, "doe.john.quincy")) {
		t.Errorf("assertion claims: %+v", claims)
	}

	// The assertion is cached, not signed per request.
	request(t, c, "GET", g.url("main", "/again"), browser, nil)
	if again := g.backend.last(t).Get("X-Cac-Assertion"); again != asrt {
		t.Error("assertion was re-signed for the next request")
	}
}

// parseJWKS returns the single P-256 key of a JWKS document.
func parseJWKS(t *testing.T, doc string) *ecdsa.PublicKey {
	t.Helper()
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg string }
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", doc, err)
	}
	k := set.Keys[0]
	if k.Kty != "EC" || k.Crv != "P-256" || k.Alg != "ES256" || k.Kid == "" {
		t.Fatalf("unexpected JWK %+v", k)
	}
	x, _ := base64.RawURLEncoding.DecodeString(k.X)
	y, _ := base64.RawURLEncoding.DecodeString(k.Y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatalf("JWK is not a P-256 point: %v", err)
	}
	return pub
}

func TestAccountStates(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")

	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("active: HTTP %d", resp.StatusCode)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/disable", nil, nil); code != http.StatusOK {
		t.Fatalf("disable: HTTP %d", code)
	}
	resp, body := request(t, c, "GET", g.url("main", "/"), browser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("disabled account: HTTP %d\n%s", resp.StatusCode, body)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/enable", nil, nil); code != http.StatusOK {
		t.Fatalf("enable: HTTP %d", code)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("re-enabled: HTTP %d", resp.StatusCode)
	}

	var pending AccountJSON
	if code := g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567891", "username": "jane.smith", "status": "pending"}, &pending); code != http.StatusCreated || pending.Status != "pending" {
		t.Fatalf("create pending: HTTP %d %+v", code, pending)
	}
	// A new card of a disabled account is not linked, and is told why.
	var disabled AccountJSON
	g.adminDo("POST", "/cacgate/accounts", map[string]string{"edipi": "1234567895", "username": "mary.k.obrien-smith", "status": "disabled"}, &disabled)
	mary := g.client(card(t, "obrien-smith.mary.ann.k"))
	g.accept(t, mary, "main")
	resp, body = request(t, mary, "GET", g.url("main", "/"), http.Header{"Accept": {"application/json"}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "account_disabled") {
		t.Fatalf("card of a disabled account: HTTP %d %s", resp.StatusCode, body)
	}
	g.adminDo("GET", "/cacgate/accounts/mary.k.obrien-smith", nil, &disabled)
	if len(disabled.Cards) != 0 {
		t.Fatalf("card linked to a disabled account: %+v", disabled.Cards)
	}

	jane := g.client(card(t, "smith.jane"))
	g.accept(t, jane, "main")
	resp, body = request(t, jane, "GET", g.url("main", "/"), http.Header{"Accept": {"application/json"}}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "account_pending") {
		t.Fatalf("pending account: HTTP %d %s", resp.StatusCode, body)
	}

	// Approval: listed as pending, approved once, in at once; a disabled
	// account cannot be "approved" back in.
	var pendingPage AccountPageJSON
	if code := g.adminDo("GET", "/cacgate/accounts?status=pending", nil, &pendingPage); code != http.StatusOK || len(pendingPage.Accounts) != 1 || pendingPage.Accounts[0].Username != "jane.smith" {
		t.Fatalf("pending list: HTTP %d %+v", code, pendingPage)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/approve", nil, nil); code != http.StatusOK {
		t.Fatalf("approve: HTTP %d", code)
	}
	if resp, _ := request(t, jane, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("approved account: HTTP %d", resp.StatusCode)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/jane.smith/approve", nil, nil); code != http.StatusConflict {
		t.Errorf("approving an active account: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/mary.k.obrien-smith/approve", nil, nil); code != http.StatusConflict {
		t.Errorf("approving a disabled account: HTTP %d", code)
	}
	if code := g.adminDo("GET", "/cacgate/accounts?status=bogus", nil, nil); code != http.StatusBadRequest {
		t.Errorf("bad status filter: HTTP %d", code)
	}
}

func TestLinkByEDIPIAndUnlink(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	for _, name := range []string{"doe.john.quincy", "doe.john.quincy.piv"} {
		c := g.client(card(t, name))
		g.accept(t, c, "main")
		if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d", name, resp.StatusCode)
		}
	}
	var acct AccountJSON
	g.adminDo("GET", "/cacgate/accounts/john.q.doe", nil, &acct)
	if len(acct.Cards) != 2 {
		t.Fatalf("want both cards linked by EDIPI, got %+v", acct.Cards)
	}

	piv := card(t, "doe.john.quincy.piv")
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/cards/"+fingerprint(piv), nil, nil); code != http.StatusNoContent {
		t.Fatalf("unlink: HTTP %d", code)
	}
	g.adminDo("GET", "/cacgate/accounts/john.q.doe", nil, &acct)
	if len(acct.Cards) != 1 {
		t.Fatalf("after unlink: %+v", acct.Cards)
	}
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/cards/"+fingerprint(piv), nil, nil); code != http.StatusNotFound {
		t.Fatalf("unlinking twice: HTTP %d", code)
	}
	// The cleared card is refused at once, and link_by_edipi does not bring it back.
	c := g.client(piv)
	g.accept(t, c, "main")
	for i := 0; i < 2; i++ {
		resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/enroll") {
			t.Fatalf("cleared card, request %d: HTTP %d %q", i, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	g.adminDo("GET", "/cacgate/accounts/john.q.doe", nil, &acct)
	if len(acct.Cards) != 1 {
		t.Fatalf("cleared card was linked again: %+v", acct.Cards)
	}
	// The other card is unaffected.
	if resp, _ := request(t, g.client(card(t, "doe.john.quincy")), "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusSeeOther {
		// a new client has no consent cookie yet: the banner, not a refusal
		t.Fatalf("remaining card: HTTP %d", resp.StatusCode)
	}
}

func TestLinkByEDIPIOff(t *testing.T) {
	g := startGateway(t, "link_by_edipi off", "")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")
	resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.cacgate/enroll") {
		t.Fatalf("unlinked card with link_by_edipi off: HTTP %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := request(t, c, "GET", g.url("main", "/.cacgate/enroll"), browser, nil)
	if !strings.Contains(page, "An account exists for your DoD ID") {
		t.Errorf("enroll page does not say an account exists:\n%s", page)
	}
	// An admin links the card explicitly.
	var acct AccountJSON
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/cards", LinkCardRequest{Certificate: string(pemChain(card(t, "doe.john.quincy").Chain[:1]))}, &acct); code != http.StatusCreated || len(acct.Cards) != 1 {
		t.Fatalf("admin link: HTTP %d %+v", code, acct)
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/"), browser, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after admin link: HTTP %d", resp.StatusCode)
	}
	// A card of another person cannot be linked to this account.
	if code := g.adminDo("POST", "/cacgate/accounts/john.q.doe/cards", LinkCardRequest{Certificate: string(pemChain(card(t, "smith.jane").Chain[:1]))}, nil); code != http.StatusBadRequest {
		t.Fatalf("linking another person's card: HTTP %d", code)
	}
}

func TestExemptPaths(t *testing.T) {
	g := startGateway(t, "", "")
	c := g.client(nil)
	resp, _ := request(t, c, "GET", g.url("main", "/healthz"), http.Header{"X-Remote-User": {"admin"}, "x_cac_edipi": {"1"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exempt path: HTTP %d", resp.StatusCode)
	}
	seen := g.backend.last(t)
	for k := range seen {
		if forward.SameName(k, "x-remote-user") || forward.SameName(k, "x-cac-edipi") {
			t.Errorf("spoofed %s reached the backend on an exempt path", k)
		}
	}
	if resp, _ := request(t, c, "GET", g.url("main", "/static/app.css"), nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("exempt wildcard: HTTP %d", resp.StatusCode)
	}
	// Dot and empty segments are refused outright (see
	// TestAmbiguousPathsAgainstExempt), never passed as exempt.
	for _, sneaky := range []string{"/static/../secret", "/healthz/../secret", "//healthz/../secret"} {
		if resp, _ := request(t, c, "GET", g.url("main", sneaky), nil, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", sneaky, resp.StatusCode)
		}
	}
}

func TestAdminAPIValidation(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	cases := []struct {
		body any
		want int
	}{
		{map[string]string{"edipi": "1234567890", "username": "other.name"}, http.StatusConflict},
		{map[string]string{"edipi": "1234567899", "username": "john.q.doe"}, http.StatusConflict},
		{map[string]string{"edipi": "12345", "username": "a.b"}, http.StatusBadRequest},
		{map[string]string{"edipi": "1234567899", "username": "Robert'); DROP TABLE accounts;--"}, http.StatusBadRequest},
		{map[string]string{"edipi": "1234567899", "username": "ok.name", "email": "not an email"}, http.StatusBadRequest},
		{map[string]string{"edipi": "1234567899", "username": "ok.name", "status": "root"}, http.StatusBadRequest},
		{map[string]string{"edipi": "1234567899", "username": "ok.name", "given_name": "A\x00B"}, http.StatusBadRequest},
		{map[string]any{"edipi": "1234567899", "username": "ok.name", "is_admin": true}, http.StatusBadRequest},
		{"not an object", http.StatusBadRequest},
	}
	for _, tc := range cases {
		if got := g.adminDo("POST", "/cacgate/accounts", tc.body, nil); got != tc.want {
			t.Errorf("POST %v: HTTP %d, want %d", tc.body, got, tc.want)
		}
	}
	var page AccountPageJSON
	if code := g.adminDo("GET", "/cacgate/accounts", nil, &page); code != http.StatusOK || len(page.Accounts) != 1 || page.Accounts[0].Username != "john.q.doe" {
		t.Fatalf("list: HTTP %d %+v", code, page)
	}
	if code := g.adminDo("GET", "/cacgate/accounts/nobody", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown account: HTTP %d", code)
	}
	if code := g.adminDo("POST", "/cacgate/accounts/nobody/disable", nil, nil); code != http.StatusNotFound {
		t.Errorf("disable unknown: HTTP %d", code)
	}
	if code := g.adminDo("DELETE", "/cacgate/accounts/john.q.doe/cards/not-a-hash", nil, nil); code != http.StatusBadRequest {
		t.Errorf("unlink bad fingerprint: HTTP %d", code)
	}
}

// TestConcurrentFirstRequests sends many simultaneous first requests for a
// card that is not linked yet: all are admitted, the card is linked once,
// and the account has exactly one card.
func TestConcurrentFirstRequests(t *testing.T) {
	g := startGateway(t, "", "")
	g.createAccount("1234567890", "john.q.doe")
	c := g.client(card(t, "doe.john.quincy"))
	g.accept(t, c, "main")

	const n = 24
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			req, _ := http.NewRequest("GET", g.url("main", "/concurrent"), nil)
			req.Header.Set("Accept", "text/html")
			resp, err := c.Do(req)
			if err != nil {
				codes <- -1
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case code := <-codes:
			if code != http.StatusOK {
				t.Errorf("concurrent request: HTTP %d", code)
			}
		case <-time.After(requestTimeout):
			t.Fatalf("concurrent requests did not finish in %v", requestTimeout)
		}
	}
	var acct AccountJSON
	g.adminDo("GET", "/cacgate/accounts/john.q.doe", nil, &acct)
	if len(acct.Cards) != 1 {
		t.Fatalf("want the card linked once, got %+v", acct.Cards)
	}
}
