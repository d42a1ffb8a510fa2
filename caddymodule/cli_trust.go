package caddymodule

import (
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
			rep, loadErr := trustbundle.Inspect(args, previous, time.Now())
			if rep == nil {
				return loadErr
			}
			var err error
			if asJSON {
				err = admin.PrintJSON(cmd.OutOrStdout(), rep)
			} else {
				err = rep.WriteText(cmd.OutOrStdout())
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
