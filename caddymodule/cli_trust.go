package caddymodule

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/trustbundle"
)

// trustCommand is `caddy cacgate trust`: the trust bundle tools.
func trustCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Inspects trust bundles (DISA PKCS#7 .p7b/.zip, PEM files and directories)",
	}
	cmd.AddCommand(trustInspectCommand())
	return cmd
}

// inspectReport is `trust inspect --json`'s output.
type inspectReport struct {
	Files   []string              `json:"files"`
	Digest  string                `json:"digest"`
	CAs     []trustbundle.Entry   `json:"cas"`
	Refused []trustbundle.Refusal `json:"refused"`
	// Previous, Added and Removed are set with --previous.
	Previous []string            `json:"previous,omitempty"`
	Added    []trustbundle.Entry `json:"added,omitempty"`
	Removed  []trustbundle.Entry `json:"removed,omitempty"`
}

func trustInspectCommand() *cobra.Command {
	var previous []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect <bundle>... [--previous <bundle>]",
		Short: "Lists every CA of a bundle and, given the previous bundle, what was added and removed",
		Long: `
Loads a bundle the way trust_pool cacgate_bundle does (DISA .zip with its
checksum list, .p7b in DER or PEM, PEM/DER certificate files, directories)
and lists every CA it accepts: subject, issuer, SHA-256, expiry and the
certificate policies it may issue under; then every certificate and file
it refused, and why. With --previous, also the CAs added and removed since
that bundle: review them before deploying a new DISA release.

Exits non-zero when the bundle has no usable CA.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			cur, err := trustbundle.Load(args, now)
			if cur == nil {
				return err
			}
			loadErr := err
			rep := inspectReport{Files: args, Digest: cur.Digest, CAs: cur.Describe(), Refused: cur.Refused}
			if rep.Refused == nil {
				rep.Refused = []trustbundle.Refusal{}
			}
			if len(previous) > 0 {
				prev, err := trustbundle.Load(previous, now)
				if prev == nil || (err != nil && !errors.Is(err, trustbundle.ErrNoCA)) {
					return fmt.Errorf("previous bundle: %w", err)
				}
				rep.Previous = previous
				rep.Added, rep.Removed = trustbundle.Diff(prev, cur)
				if rep.Added == nil {
					rep.Added = []trustbundle.Entry{}
				}
				if rep.Removed == nil {
					rep.Removed = []trustbundle.Entry{}
				}
			}
			if asJSON {
				err = admin.PrintJSON(cmd.OutOrStdout(), rep)
			} else {
				err = printInspect(cmd.OutOrStdout(), rep)
			}
			if loadErr != nil {
				return loadErr
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&previous, "previous", nil, "the bundle deployed before, to list the CAs added and removed (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printInspect(w io.Writer, rep inspectReport) error {
	fmt.Fprintf(w, "%d CA certificates in %s (digest %s)\n\n", len(rep.CAs), strings.Join(rep.Files, ", "), rep.Digest)
	if err := printEntries(w, rep.CAs); err != nil {
		return err
	}
	if len(rep.Refused) > 0 {
		fmt.Fprintf(w, "\nRefused (%d):\n", len(rep.Refused))
		for _, r := range rep.Refused {
			fmt.Fprintf(w, "  %s\n", printable(r.String()))
		}
	}
	if rep.Previous != nil {
		fmt.Fprintf(w, "\nCompared with %s: %d added, %d removed\n", strings.Join(rep.Previous, ", "), len(rep.Added), len(rep.Removed))
		if len(rep.Added) > 0 {
			fmt.Fprintf(w, "\nAdded:\n")
			if err := printEntries(w, rep.Added); err != nil {
				return err
			}
		}
		if len(rep.Removed) > 0 {
			fmt.Fprintf(w, "\nRemoved:\n")
			if err := printEntries(w, rep.Removed); err != nil {
				return err
			}
		}
	}
	return nil
}

// printEntries prints CAs as a table.
func printEntries(w io.Writer, entries []trustbundle.Entry) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUBJECT\tISSUER\tEXPIRES\tSHA-256\tPOLICIES")
	for _, e := range entries {
		issuer := printable(e.Issuer)
		if e.Root {
			issuer = "(self-signed root)"
		}
		policies := strings.Join(e.Policies, " ")
		if policies == "" {
			policies = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable(e.Subject), issuer, e.NotAfter.Format(time.DateOnly), e.SHA256, policies)
	}
	return tw.Flush()
}

// printable keeps a certificate's text (which whoever made the bundle
// chose) from writing control sequences to the terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
