package oidcop

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/revocation"
)

// A card sign-in's refresh is judged again at each refresh, the card's
// revocation status included: a card on the CRL (revoked after it signed
// in) is refused, a good one passes. checkGrant is what the refresh and
// code exchanges call.
func TestCheckGrantRevocation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pki, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(dir, "ca.crl")
	if err := os.WriteFile(crl, pki.CRL, 0o600); err != nil {
		t.Fatal(err)
	}
	checker, err := revocation.New(revocation.Config{Mode: revocation.ModeCRL, CRLFiles: []string{crl}, CRLIssuers: []*x509.Certificate{pki.Intermediate.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := checker.Start(cctx); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "cacgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p, err := New(ctx, Config{Store: st, Revocation: checker, Audit: audit.Nop(), Logger: zap.NewNop(), KeyRotation: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	grantFor := func(name, username, edipi string) *grant {
		t.Helper()
		c := pki.Card(name)
		fp := cacid.Fingerprint(c.Cert.Raw)
		a := &store.Account{Username: username, EDIPI: edipi, GivenName: "A", FamilyName: "B", Status: store.StatusActive,
			Cards: []store.Card{{Fingerprint: fp, Subject: c.Cert.Subject.String(), Issuer: c.Cert.Issuer.String(), Serial: c.Cert.SerialNumber.Text(16), NotAfter: c.Cert.NotAfter}}}
		if err := st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
		return &grant{ID: "g-" + username, ClientID: "app", AccountID: a.ID, Kind: KindCAC, Fingerprint: fp,
			Chain: [][]byte{c.Cert.Raw, pki.Intermediate.Cert.Raw}, Snapshot: Snapshot{Username: username}}
	}
	good := grantFor("doe.john.quincy", "john.q.doe", "1234567890")
	if err := p.checkGrant(ctx, good); err != nil {
		t.Fatalf("good card: %v", err)
	}
	revoked := grantFor("revoked.ronald", "ronald.revoked", "1234567899")
	if err := p.checkGrant(ctx, revoked); reasonOf(err) != "card_revoked" {
		t.Fatalf("revoked card: %v, want card_revoked", err)
	}
	if _, err := st.SetStatus(ctx, "john.q.doe", store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if err := p.checkGrant(ctx, good); reasonOf(err) != "account_disabled" {
		t.Fatalf("disabled account: %v", err)
	}
}
