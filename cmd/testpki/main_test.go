package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWritesDemoPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var out bytes.Buffer
	if err := run([]string{dir}, &out); err != nil {
		t.Fatal(err)
	}
	want := "Test PKI written to " + dir + " (see " + dir + "/README.md). .p12 password: cacgate-test\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	for _, f := range []string{"root.pem", "intermediate.pem", "server.pem", "server-key.pem", "rogue-root.pem", "manifest.json", "README.md",
		"cards/doe.john.quincy.pem", "cards/doe.john.quincy-key.pem", "cards/doe.john.quincy.p12", "cards/expired.edward.pem",
		"federal/roots.pem", "federal/cards/piv.federal.jane.p12", "federal/cards/eca.contractor.carl.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("testpki did not write %s", f)
		}
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil || !strings.Contains(string(readme), "go run ./cmd/testpki") {
		t.Errorf("README.md does not say how to regenerate the PKI (%v)", err)
	}
}

// -federal writes the federal cards alone, leaving the DoD set untouched.
func TestWritesFederalOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var out bytes.Buffer
	if err := run([]string{"-federal", dir}, &out); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"federal/roots.pem", "federal/cards/piv.federal.jane.pem", "federal/cards/pivi.partner.pat-key.pem", "federal/cards/eca.contractor.carl.p12"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("testpki -federal did not write %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "root.pem")); err == nil {
		t.Error("testpki -federal wrote the DoD set too")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {""}, {"a", "b"}} {
		var out bytes.Buffer
		if err := run(args, &out); !errors.Is(err, errUsage) || out.Len() != 0 {
			t.Errorf("run(%q) = %v, output %q; want the usage error and no output", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); err != nil || !strings.Contains(out.String(), "usage: go run ./cmd/testpki [-federal] <dir>") {
		t.Errorf("run(-h) = %v, output %q", err, out.String())
	}
}
