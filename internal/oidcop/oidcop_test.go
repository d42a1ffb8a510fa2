package oidcop

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/cacgate/cacgate/internal/store"
)

const longSecret = "0123456789abcdef0123456789abcdef"

func TestCompileClient(t *testing.T) {
	ok := ClientConfig{ID: "app", Secret: longSecret, RedirectURIs: []string{"https://app.example.mil/cb"}}
	c, err := ok.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if c.Config().Secret != "" || !strings.HasPrefix(c.Config().SecretHash, "sha256:") || c.Config().AuthMethod != AuthSecretBasic {
		t.Fatalf("compiled: %+v", c.Config())
	}
	if !c.CheckSecret(longSecret) || c.CheckSecret(longSecret+"x") || c.CheckSecret("") {
		t.Fatal("secret check")
	}
	if !slices.Equal(c.scopes, []string{"openid", "profile", "email"}) || slices.Contains(c.GrantTypes(), oidc.GrantTypeRefreshToken) {
		t.Fatalf("defaults: %v %v", c.scopes, c.GrantTypes())
	}
	for name, bad := range map[string]ClientConfig{
		"short secret":     {ID: "a", Secret: "short", RedirectURIs: ok.RedirectURIs},
		"both secrets":     {ID: "a", Secret: longSecret, SecretHash: HashSecret(longSecret), RedirectURIs: ok.RedirectURIs},
		"bad hash":         {ID: "a", SecretHash: "md5:00", RedirectURIs: ok.RedirectURIs},
		"no redirect":      {ID: "a", Secret: longSecret},
		"http redirect":    {ID: "a", Secret: longSecret, RedirectURIs: []string{"http://app.example.mil/cb"}},
		"fragment":         {ID: "a", Secret: longSecret, RedirectURIs: []string{"https://app.example.mil/cb#x"}},
		"wildcard":         {ID: "a", Secret: longSecret, RedirectURIs: []string{"https://*.example.mil/cb"}},
		"relative":         {ID: "a", Secret: longSecret, RedirectURIs: []string{"/cb"}},
		"unknown scope":    {ID: "a", Secret: longSecret, RedirectURIs: ok.RedirectURIs, Scopes: []string{"openid", "admin"}},
		"unknown claim":    {ID: "a", Secret: longSecret, RedirectURIs: ok.RedirectURIs, Claims: []string{"ssn"}},
		"offline no ttl":   {ID: "a", Secret: longSecret, RedirectURIs: ok.RedirectURIs, Scopes: []string{"openid", "offline_access"}},
		"basic no secret":  {ID: "a", AuthMethod: AuthSecretBasic, RedirectURIs: ok.RedirectURIs},
		"none with secret": {ID: "a", AuthMethod: AuthNone, Secret: longSecret, RedirectURIs: ok.RedirectURIs},
		"jwt no keys":      {ID: "a", AuthMethod: AuthPrivateKeyJWT, RedirectURIs: ok.RedirectURIs},
		"unknown method":   {ID: "a", AuthMethod: "tls_client_auth", Secret: longSecret, RedirectURIs: ok.RedirectURIs},
		"colon in id":      {ID: "a:b", Secret: longSecret, RedirectURIs: ok.RedirectURIs},
		"ttl too short":    {ID: "a", Secret: longSecret, RedirectURIs: ok.RedirectURIs, AccessTokenTTL: Duration(time.Second)},
		"refresh too long": {ID: "a", Secret: longSecret, RedirectURIs: ok.RedirectURIs, RefreshTTL: Duration(365 * 24 * time.Hour)},
		"private jwks":     {ID: "a", RedirectURIs: ok.RedirectURIs, JWKS: json.RawMessage(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)},
	} {
		if _, err := bad.Compile(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	pub, err := ClientConfig{ID: "cli", RedirectURIs: []string{"http://127.0.0.1:8000/cb"}, RefreshTTL: Duration(time.Hour)}.Compile()
	if err != nil || !pub.Public() || !slices.Contains(pub.scopes, oidc.ScopeOfflineAccess) {
		t.Fatalf("public client: %v %+v", err, pub)
	}
}

func TestDurationJSON(t *testing.T) {
	var c ClientConfig
	if err := json.Unmarshal([]byte(`{"client_id":"a","access_token_ttl":"5m","id_token_ttl":60000000000}`), &c); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.AccessTokenTTL) != 5*time.Minute || time.Duration(c.IDTokenTTL) != time.Minute {
		t.Fatalf("%+v", c)
	}
	b, _ := json.Marshal(c.AccessTokenTTL)
	if string(b) != `"5m0s"` {
		t.Fatal(string(b))
	}
	if _, err := DecodeClient([]byte(`{"client_id":"a","bogus":1}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

// Release: scopes asked and allowed, the client's claim list, and the DoD
// ID only on request.
func TestClaimRelease(t *testing.T) {
	snap := &Snapshot{Username: "john.q.doe", EDIPI: "1234567890", GivenName: "John", FamilyName: "Doe", Email: "john@example.mil",
		Affiliation: "Army", Groups: []string{"ops"}}
	all, _ := ClientConfig{ID: "a", Secret: longSecret, RedirectURIs: []string{"https://a.example.mil/cb"},
		Scopes: []string{"openid", "profile", "email", "groups", "cac"}}.Compile()
	var u oidc.UserInfo
	all.fillUserinfo(&u, "sub", KindCAC, snap, []string{"openid", "profile", "cac"})
	if u.PreferredUsername != "john.q.doe" || u.Name != "John Doe" || u.Email != "" || u.Claims["groups"] != nil ||
		u.Claims["affiliation"] != "Army" || u.Claims["edipi"] != nil || u.Claims["credential_kind"] != KindCAC {
		t.Fatalf("default release: %+v %v", u.UserInfoProfile, u.Claims)
	}
	listed, _ := ClientConfig{ID: "b", Secret: longSecret, RedirectURIs: []string{"https://a.example.mil/cb"},
		Scopes: []string{"openid", "profile", "cac"}, Claims: []string{"edipi"}}.Compile()
	var v oidc.UserInfo
	listed.fillUserinfo(&v, "sub", KindPassword, snap, []string{"openid", "profile", "cac"})
	if v.PreferredUsername != "" || v.Claims["edipi"] != "1234567890" || v.Claims["affiliation"] != nil || v.Claims["credential_kind"] != KindPassword {
		t.Fatalf("listed release: %+v %v", v.UserInfoProfile, v.Claims)
	}
	if !slices.Equal(AMR(KindCAC), []string{"hwk", "sc", "mfa"}) || !slices.Equal(AMR(KindPassword), []string{"pwd"}) ||
		!slices.Equal(AMR("piv"), []string{"hwk", "sc", "mfa"}) || !slices.Equal(AMR(KindECA), []string{"pop"}) {
		t.Fatal("amr")
	}
}

func TestSubject(t *testing.T) {
	a := &store.Account{ID: 42, Username: "john.q.doe", EDIPI: "1234567890"}
	key := []byte("0123456789abcdef0123456789abcdef")
	s1, s2 := subjectOf(SubjectOpaque, key, a), subjectOf(SubjectOpaque, key, &store.Account{ID: 42, Username: "renamed"})
	if s1 != s2 || s1 == "" || strings.Contains(s1, "1234567890") || s1 == subjectOf(SubjectOpaque, []byte("other"), a) {
		t.Fatalf("opaque subject: %q %q", s1, s2)
	}
	if subjectOf(SubjectEDIPI, key, a) != "1234567890" || subjectOf(SubjectUsername, key, a) != "john.q.doe" {
		t.Fatal("configured subjects")
	}
}

// The continue page replaces a redirect only for the gateway's own pages.
func TestNavigationWriter(t *testing.T) {
	redirect := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://app.example.mil/cb?code=x&state=<s>", http.StatusFound)
	}
	r := httptest.NewRequest("GET", "/.cacgate/oidc/authorize", nil)
	w := httptest.NewRecorder()
	redirect(NavigationWriter(w, r), r)
	if w.Code != http.StatusFound {
		t.Fatalf("cross-site: %d", w.Code)
	}
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	w = httptest.NewRecorder()
	redirect(NavigationWriter(w, r), r)
	body := w.Body.String()
	if w.Code != http.StatusOK || w.Header().Get("Location") != "" || !strings.Contains(body, `http-equiv="refresh"`) ||
		!strings.Contains(body, "state=%3cs%3e") && !strings.Contains(body, "state=&lt;s&gt;") || strings.Contains(body, "<s>") || strings.Contains(body, "Found") {
		t.Fatalf("same-origin: %d %v\n%s", w.Code, w.Header(), body)
	}
}
