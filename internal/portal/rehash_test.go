package portal

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/selfservice"
	"github.com/cacgate/cacgate/internal/store"
)

// TestRehashOnSignIn: after a site moves to another algorithm
// (password_hash pbkdf2), a correct password signs in against its old
// argon2id hash and is stored again with the new algorithm, without
// counting as a password change; a wrong one changes nothing.
func TestRehashOnSignIn(t *testing.T) {
	h := newStoreHarness(t, selfservice.Config{})
	h.addAccount("john.q.doe", "1234567890", testPassword)
	storedHash := func() string {
		t.Helper()
		c, err := h.db.Credentials(t.Context(), h.account("john.q.doe").ID)
		if err != nil {
			t.Fatal(err)
		}
		return c.PasswordHash
	}
	old := storedHash()
	if !strings.HasPrefix(old, "$argon2id$") {
		t.Fatalf("the harness stores %.12s…", old)
	}
	changedAt := h.account("john.q.doe").PasswordChangedAt

	// The site switches to PBKDF2.
	pbkdf2 := credential.Params{Algorithm: credential.PBKDF2SHA512, Iterations: 10_000, SaltLen: 16, KeyLen: 32}
	h.deps.Hasher = credential.NewHasher(pbkdf2, 1)
	h.rebuild()

	login := func(password string) bool {
		t.Helper()
		signedIn := false
		r := httptest.NewRequest(http.MethodPost, PathLogin, strings.NewReader(url.Values{
			"csrf": {"csrf-token"}, "username": {"john.q.doe"}, "password": {password}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		if err := h.flow.ServeLogin(w, r, Login{CSRF: fakeCSRF{}, Next: "/", SignIn: func(*store.Account, string) error { signedIn = true; return nil }}); err != nil {
			t.Fatal(err)
		}
		return signedIn
	}
	if login(testWrongPassword) || storedHash() != old {
		t.Fatal("a wrong password signed in or touched the stored hash")
	}
	if !login(testPassword) {
		t.Fatal("the right password does not sign in against its argon2id hash")
	}
	if got := storedHash(); !strings.HasPrefix(got, "$pbkdf2-sha512$i=10000$") {
		t.Fatalf("after the sign-in the hash is %.24s…, want PBKDF2", got)
	}
	if !h.account("john.q.doe").PasswordChangedAt.Equal(changedAt) {
		t.Error("the rehash counted as a password change")
	}
	if c, _ := h.db.Credentials(t.Context(), h.account("john.q.doe").ID); len(c.History) != 0 {
		t.Errorf("the rehash put %d hashes in the password history", len(c.History))
	}
	rehashed := storedHash()
	if !login(testPassword) || storedHash() != rehashed {
		t.Fatal("the PBKDF2 hash does not sign in, or was rehashed again")
	}
}
