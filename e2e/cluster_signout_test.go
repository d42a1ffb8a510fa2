package e2e

import (
	"crypto/tls"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cacgate/cacgate/internal/testpki"
)

// TestClusterSignOut: a password session signed out on node A is refused on
// node B at once, even a copy of its cookie that node B had already
// verified and cached.
func TestClusterSignOut(t *testing.T) {
	c := startCluster(t, 0)
	a, b := c.nodes[0], c.nodes[1]
	card, err := c.pki.Intermediate.IssueCard(testpki.CardSpec{Name: "tanaka", Family: "TANAKA", Given: "KEN", Middle: "R", EDIPI: "1234567801", Affiliation: "USN"})
	if err != nil {
		t.Fatal(err)
	}
	// The account gets its password by enrolling with the card.
	if page := enroll(t, c.browser(t, card), a, "900-33-0001", "1981-02-03"); !strings.Contains(page, "ken.r.tanaka") {
		t.Fatalf("enrollment:\n%s", page)
	}

	// Someone without a card reader signs in with the password on node A.
	pw := c.cardless(t)
	_, page := get(t, pw, "https://"+a.site+"/.cacgate/login?next=%2F", "text/html")
	m := regexp.MustCompile(`name="csrf" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("sign-in page without a CSRF field:\n%s", page)
	}
	resp, err := pw.PostForm("https://"+a.site+"/.cacgate/login", url.Values{"csrf": {html.UnescapeString(m[1])}, "next": {"/"},
		"username": {"ken.r.tanaka"}, "password": {"Correct.Horse~Bat9"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("password sign-in on node a: HTTP %d", resp.StatusCode)
	}
	if resp, body := acceptBanner(t, pw, a.site, "/"); resp.StatusCode != http.StatusOK || body != "user=ken.r.tanaka node=a" {
		t.Fatalf("node a after sign-in: HTTP %d %q", resp.StatusCode, body)
	}

	// A copy of the cookies, used on node B, which verifies and caches it.
	u, _ := url.Parse("https://" + a.site + "/")
	var cookies []string
	for _, ck := range pw.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	thief := c.cardless(t)
	thief.Jar = nil
	replay := func() (int, string) {
		req, _ := http.NewRequest("GET", "https://"+b.site+"/", nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Cookie", strings.Join(cookies, "; "))
		resp, err := thief.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Status
	}
	if code, status := replay(); code != http.StatusOK {
		t.Fatalf("copied session on node b before sign-out: %s", status)
	}

	// Signed out on node A: node B refuses the copy at once.
	resp, err = pw.Post("https://"+a.site+"/.cacgate/logout", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on node a: HTTP %d", resp.StatusCode)
	}
	start := time.Now()
	waitFor(t, "node b refuses the signed-out session", func() (bool, string) {
		code, status := replay()
		return code == http.StatusUnauthorized, status
	})
	t.Logf("sign-out on node a took effect on node b after %v (session cache 10m)", time.Since(start).Round(time.Millisecond))

	data, err := os.ReadFile(filepath.Join(c.dir, "audit-a.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"event":"signout.password"`) || !strings.Contains(string(data), `"session_ended_in_store":true`) {
		t.Errorf("node a's audit log has no recorded sign-out:\n%s", lastLines(string(data), 5))
	}
}

// cardless is a browser without a card: it keeps cookies across the nodes
// and does not follow redirects.
func (c *cluster) cardless(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar, Timeout: requestTimeout,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots, ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
