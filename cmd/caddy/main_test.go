package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestPKI: the gateway binary must not link the test-PKI generator
// (it writes private keys meant to be public); cmd/testpki is its program.
func TestNoTestPKI(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasSuffix(pkg, "/internal/testpki") {
			t.Errorf("the caddy binary links %s", pkg)
		}
	}
}
