package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// hardenedExample is the production-shaped config the README's compliance
// table refers to.
const hardenedExample = "../examples/hardened.Caddyfile"

// TestHardenedExample keeps examples/hardened.Caddyfile from rotting: it must
// adapt without warnings, keep the settings its comments claim (loopback
// admin, PostgreSQL DSN from the environment, fail-closed revocation with a
// local CRL cache, the audit trail in its own log and out of the default
// one), and provision — every module, the TLS policies, the log files —
// with the DoD files replaced by the test PKI and the store by SQLite, as
// the test has no PostgreSQL server.
func TestHardenedExample(t *testing.T) {
	raw, err := os.ReadFile(hardenedExample)
	if err != nil {
		t.Fatal(err)
	}
	src := rewriteExamplePaths(t, string(raw), t.TempDir())

	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": hardenedExample})
	if err != nil {
		t.Fatalf("adapting %s: %v", hardenedExample, err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.String())
	}

	var cfg struct {
		Admin struct {
			Listen string `json:"listen"`
		} `json:"admin"`
		Logging struct {
			Logs map[string]struct {
				Include []string `json:"include"`
				Exclude []string `json:"exclude"`
			} `json:"logs"`
		} `json:"logging"`
		Apps struct {
			Cacgate struct {
				Store         json.RawMessage   `json:"store"`
				Revocation    *RevocationConfig `json:"revocation"`
				PasswordHash  string            `json:"password_hash"`
				InactiveAfter caddy.Duration    `json:"inactive_after"`
				Mail          *MailConfig       `json:"mail"`
			} `json:"cacgate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}

	if cfg.Admin.Listen != "127.0.0.1:2019" {
		t.Errorf("admin listens on %q, want loopback only", cfg.Admin.Listen)
	}

	var store struct {
		Backend string `json:"backend"`
	}
	if err := json.Unmarshal(cfg.Apps.Cacgate.Store, &store); err != nil {
		t.Fatal(err)
	}
	if store.Backend != "postgres" {
		t.Errorf("store backend %q, want postgres", store.Backend)
	}
	// The DSN (with its password) stays a placeholder in the config and
	// is expanded only when the store opens.
	if !bytes.Contains(cfg.Apps.Cacgate.Store, []byte("{env.CACGATE_PG_DSN}")) {
		t.Errorf("store config %s does not take the DSN from {env.CACGATE_PG_DSN}", cfg.Apps.Cacgate.Store)
	}

	rev := cfg.Apps.Cacgate.Revocation
	switch {
	case rev == nil:
		t.Error("no revocation settings")
	case rev.FailOpen:
		t.Error("revocation fails open")
	case rev.Mode != "ocsp_then_crl" || len(rev.CRLFiles) == 0 || len(rev.CRLIssuers) == 0:
		t.Errorf("revocation %+v: want OCSP with a local CRL cache", *rev)
	case !rev.Intermediates:
		t.Error("the issuing CAs' revocation status is not checked")
	}

	if cfg.Apps.Cacgate.PasswordHash != "pbkdf2-sha512" {
		t.Errorf("password_hash %q, want the NIST-approved pbkdf2-sha512", cfg.Apps.Cacgate.PasswordHash)
	}

	audit, ok := cfg.Logging.Logs["cacgate_audit"]
	if !ok || !slices.Contains(audit.Include, auditLogName) {
		t.Errorf("no log includes %s: %+v", auditLogName, cfg.Logging.Logs)
	}
	if def := cfg.Logging.Logs["default"]; !slices.Contains(def.Exclude, auditLogName) {
		t.Errorf("the default log does not exclude %s", auditLogName)
	}
	if !bytes.Contains(out, []byte(`"handler":"cacgate"`)) {
		t.Error("no cacgate handler in the site")
	}

	if cfg.Apps.Cacgate.InactiveAfter != caddy.Duration(35*24*time.Hour) {
		t.Errorf("inactive_after %s, want the STIG's 35 days", time.Duration(cfg.Apps.Cacgate.InactiveAfter))
	}
	if m := cfg.Apps.Cacgate.Mail; m == nil || m.TLS != "starttls" || m.Password != "{env.CACGATE_SMTP_PASSWORD}" {
		t.Errorf("mail block %+v: want STARTTLS and the password from the environment", m)
	}

	// Provision everything, as `caddy validate` does, on a SQLite store
	// (the relay's credentials from the environment, as deployed).
	t.Setenv("CACGATE_SMTP_USER", "app-gateway")
	t.Setenv("CACGATE_SMTP_PASSWORD", "example-secret")
	var full map[string]any
	if err := json.Unmarshal(out, &full); err != nil {
		t.Fatal(err)
	}
	full["apps"].(map[string]any)["cacgate"].(map[string]any)["store"] = map[string]any{
		"backend": "sqlite",
		"path":    filepath.Join(t.TempDir(), "cacgate.db"),
	}
	validated, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	var caddyCfg caddy.Config
	if err := caddy.StrictUnmarshalJSON(validated, &caddyCfg); err != nil {
		t.Fatalf("config does not unmarshal strictly: %v", err)
	}
	if err := caddy.Validate(&caddyCfg); err != nil {
		t.Fatalf("%s does not provision: %v", hardenedExample, err)
	}
}

// examplePath matches the deployment paths the example uses.
var examplePath = regexp.MustCompile(`/(etc|var)/[A-Za-z0-9._/-]+`)

// rewriteExamplePaths replaces the example's deployment paths with stand-ins
// under dir: the test PKI for the DoD certificates and CRLs, dir for logs.
// A path it does not know fails the test, so a new file in the example
// comes with its stand-in.
func rewriteExamplePaths(t *testing.T, src, dir string) string {
	t.Helper()
	copyFile := func(from, to string) string {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return to
	}
	crls := filepath.Join(dir, "crls")
	crlFiles, err := filepath.Glob("../testdata/pki/crl/*.crl")
	if err != nil || len(crlFiles) == 0 {
		t.Fatalf("no test CRLs: %v", err)
	}
	for _, f := range crlFiles {
		copyFile(f, filepath.Join(crls, filepath.Base(f)))
	}
	standIns := map[string]string{
		"/etc/caddy/certs/app.pem":             copyFile("../testdata/pki/server.pem", filepath.Join(dir, "app.pem")),
		"/etc/caddy/certs/app-key.pem":         copyFile("../testdata/pki/server-key.pem", filepath.Join(dir, "app-key.pem")),
		"/etc/caddy/pki/dod-roots.pem":         copyFile("../testdata/pki/root.pem", filepath.Join(dir, "dod-roots.pem")),
		"/etc/caddy/pki/dod-intermediates.pem": copyFile("../testdata/pki/intermediate.pem", filepath.Join(dir, "dod-intermediates.pem")),
		"/var/lib/cacgate/crls":                crls,
		"/var/log/caddy/cacgate-audit.log":     filepath.Join(dir, "log", "cacgate-audit.log"),
		"/var/log/caddy/app-access.log":        filepath.Join(dir, "log", "app-access.log"),
	}
	// Only lines that are not comments: the comments may name paths
	// (e.g. the stand-ins' list at the top) without using them.
	lines := strings.Split(src, "\n")
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		lines[i] = examplePath.ReplaceAllStringFunc(line, func(p string) string {
			standIn, ok := standIns[p]
			if !ok {
				t.Errorf("%s uses %s: give it a stand-in in rewriteExamplePaths", hardenedExample, p)
				return p
			}
			return standIn
		})
	}
	return strings.Join(lines, "\n")
}
