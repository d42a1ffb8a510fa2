// Command testpki writes a complete test PKI into a directory: DoD-style
// root and intermediate CAs, a localhost server certificate, and test CAC
// certificates with .p12 files. FOR TESTING ONLY: every private key it
// writes is meant to be public.
//
//	go run ./cmd/testpki <dir>
//
// It is a program of its own, not a subcommand of the gateway's caddy
// binary, so the production binary does not carry the test-PKI generator.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cacgate/cacgate/internal/testpki"
)

const usage = "usage: go run ./cmd/testpki [-federal] <dir>\n\n" +
	"Writes a complete test PKI (DoD-style root and intermediate, a localhost\n" +
	"server certificate, and test CAC certificates with .p12 files, password\n" +
	"\"" + testpki.DemoP12Password + "\") into <dir>, and federal PIV, PIV-I and ECA\n" +
	"cards into <dir>/federal; with -federal, only the latter. For testing only.\n"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testpki:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, "\n"+usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("want exactly one argument, the directory to write")

func run(args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	federalOnly := len(args) == 2 && args[0] == "-federal"
	if federalOnly {
		args = args[1:]
	}
	if len(args) != 1 || args[0] == "" {
		return errUsage
	}
	dir := args[0]
	if federalOnly {
		// Only the federal PIV, PIV-I and ECA cards, into <dir>/federal:
		// the DoD set (and its keys) stay as they are.
		if err := testpki.WriteFederalDemo(filepath.Join(dir, testpki.FederalDir)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Federal test cards written to %s. .p12 password: %s\n", filepath.Join(dir, testpki.FederalDir), testpki.DemoP12Password)
		return nil
	}
	if err := testpki.WriteDemo(dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Test PKI written to %s (see %s/README.md). .p12 password: %s\n", dir, dir, testpki.DemoP12Password)
	return nil
}
