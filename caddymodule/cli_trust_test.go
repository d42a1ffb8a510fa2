package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/internal/testpki"
	"github.com/cacgate/cacgate/internal/trustbundle"
)

func trustCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := trustCommand()
	cmd.SilenceUsage = true
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestTrustInspect: the committed DISA-style bundle lists its CAs; against
// a previous bundle the added and removed CAs are named; a bundle without
// a usable CA fails, naming why.
func TestTrustInspect(t *testing.T) {
	committed := filepath.Join("..", "testdata", "pki", filepath.FromSlash(testpki.DISAZip))
	out, err := trustCLI(t, "inspect", committed)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"2 CA certificates", "CN=TEST DOD ID CA-70,OU=PKI,OU=DoD,O=U.S. Government,C=US", "(self-signed root)", "2046-", "SUBJECT"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	p := testPKI(t)
	dir := t.TempDir()
	prev := filepath.Join(dir, "prev.pem")
	// The committed root, and a root this release dropped.
	rootPEM, err := os.ReadFile(filepath.Join("..", "testdata", "pki", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prev, append(rootPEM, trustbundle.EncodePEM([]*x509.Certificate{p.RogueRoot.Cert})...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = trustCLI(t, "inspect", committed, "--previous", prev, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep trustbundle.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.CAs) != 2 || len(rep.Added) != 1 || !strings.Contains(rep.Added[0].Subject, "CA-70") ||
		len(rep.Removed) != 1 || rep.Removed[0].SHA256 != fingerprintOf(p.RogueRoot.Cert) {
		t.Errorf("report: %+v", rep)
	}
	if len(rep.CAs[1].Policies) != 0 || rep.CAs[0].NotAfter.IsZero() {
		t.Errorf("entries: %+v", rep.CAs)
	}
	out, _ = trustCLI(t, "inspect", committed, "--previous", prev)
	if !strings.Contains(out, "1 added, 1 removed") || !strings.Contains(out, "Removed:") {
		t.Errorf("text diff:\n%s", out)
	}

	leafOnly := filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(leafOnly, trustbundle.EncodePEM([]*x509.Certificate{card(t, "doe.john.quincy").Cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = trustCLI(t, "inspect", leafOnly)
	if err == nil || !strings.Contains(err.Error(), "no usable CA") || !strings.Contains(out, "not a CA certificate") {
		t.Errorf("leaf-only bundle: %v\n%s", err, out)
	}
}

func fingerprintOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
