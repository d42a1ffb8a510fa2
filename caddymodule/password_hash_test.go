package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/credential"
)

// TestPasswordHashPBKDF2: with password_hash pbkdf2, enrollment stores the
// password and the security answers as PBKDF2-HMAC-SHA-512 hashes with the
// configured iterations, and the password signs in.
func TestPasswordHashPBKDF2(t *testing.T) {
	g := startEnrollGatewayWith(t, "password_hash pbkdf2 100000", "password_login on")
	enrollJohnson(t, g)
	ctx := context.Background()
	db := g.openStore(t)
	acct, err := db.AccountByUsername(ctx, "robert.e.johnson")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := db.Credentials(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "$" + credential.PBKDF2SHA512 + "$i=100000$"
	if !strings.HasPrefix(creds.PasswordHash, prefix) {
		t.Errorf("password stored as %.24s…, want %s…", creds.PasswordHash, prefix)
	}
	for i, a := range creds.Answers {
		if !strings.HasPrefix(a.Hash, prefix) {
			t.Errorf("answer %d stored as %.24s…, want %s…", i+1, a.Hash, prefix)
		}
	}
	if resp, page := signIn(t, g, g.client(nil), "robert.e.johnson", "Correct.Horse~Bat9"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with a PBKDF2 password: HTTP %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := signIn(t, g, g.client(nil), "robert.e.johnson", "Wrong.Horse~Bat99"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: HTTP %d", resp.StatusCode)
	}
}

func TestPasswordHashConfig(t *testing.T) {
	for _, c := range []struct {
		algorithm  string
		iterations int
		want       credential.Params
		wantErr    string
	}{
		{"", 0, credential.DefaultParams, ""},
		{"argon2id", 0, credential.DefaultParams, ""},
		{"pbkdf2-sha512", 0, credential.DefaultPBKDF2Params, ""},
		{"pbkdf2-sha512", 600000, credential.Params{Algorithm: credential.PBKDF2SHA512, Iterations: 600000, SaltLen: 16, KeyLen: 32}, ""},
		{"pbkdf2-sha512", 99999, credential.Params{}, "between 100000 and 10000000"},
		{"", 300000, credential.Params{}, "needs password_hash"},
		{"md5", 0, credential.Params{}, "must be"},
	} {
		app := &App{PasswordHash: c.algorithm, PBKDF2Iterations: c.iterations}
		got, err := app.hashParams()
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q/%d: error %v, want %q", c.algorithm, c.iterations, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q/%d: %+v, %v; want %+v", c.algorithm, c.iterations, got, err, c.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%q: %v", c.algorithm, err)
		}
	}
}
