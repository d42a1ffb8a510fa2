package admin

import (
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cacgate/cacgate/cacid"
)

func TestFingerprintArg(t *testing.T) {
	c := testCard(t, "doe.john.quincy")
	fp := cacid.Fingerprint(c.Cert.Raw)
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "card.pem")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}), 0o600)
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	colons := ""
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			colons += ":"
		}
		colons += strings.ToUpper(fp[i : i+2])
	}
	for _, arg := range []string{fp, strings.ToUpper(fp), colons, pemFile} {
		if got, err := FingerprintArg(arg); err != nil || got != fp {
			t.Errorf("FingerprintArg(%.30q) = %q, %v", arg, got, err)
		}
	}
	for arg, want := range map[string]string{
		filepath.Join(dir, "missing"): "is neither a SHA-256 fingerprint nor a readable certificate file",
		keyFile:                       "holds no PEM certificate",
	} {
		if _, err := FingerprintArg(arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FingerprintArg(%q): %v, want %q", arg, err, want)
		}
	}
	big := filepath.Join(dir, "big.pem")
	os.WriteFile(big, make([]byte, MaxPEM+1), 0o600)
	if _, err := ReadSmallFile(big, MaxPEM); err == nil || !strings.Contains(err.Error(), "is larger than 16384 bytes") {
		t.Errorf("ReadSmallFile of a large file: %v", err)
	}
}

// WriteExportFile replaces a file whole, with mode 0600, and leaves the old
// one alone if the export fails.
func TestWriteExportFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	os.WriteFile(out, []byte("old export\n"), 0o644)
	os.Chmod(out, 0o644)
	if err := WriteExportFile(out, true, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced export: mode %v, %v; want 0600", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(out); string(data) != "new" {
		t.Errorf("replaced export holds %q", data)
	}

	// A failed export keeps the previous file and leaves no temporary one.
	os.WriteFile(out, []byte("old export\n"), 0o600)
	boom := errors.New("boom")
	err := WriteExportFile(out, true, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("WriteExportFile = %v, want boom", err)
	}
	if data, _ := os.ReadFile(out); string(data) != "old export\n" {
		t.Errorf("after a failed export the file holds %q", data)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "out.csv" && strings.Contains(e.Name(), "out.csv") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	// Without --force an existing file is refused, and a new one is made.
	if err := WriteExportFile(out, false, func(io.Writer) error { return nil }); !errors.Is(err, os.ErrExist) {
		t.Errorf("existing file without force: %v", err)
	}
	fresh := filepath.Join(dir, "fresh.csv")
	if err := WriteExportFile(fresh, false, func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new export: %v %v", fi.Mode(), err)
	}
}
