package caddymodule

import (
	"fmt"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/internal/admin"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "cacgate",
		Usage: "<accounts|oidc-clients|revocation|trust> ...",
		Short: "Manages cacgate accounts and shows revocation state",
		Long: `
Commands for the cacgate CAC gateway. (The test PKI generator is a
separate program, kept out of this binary: go run ./cmd/testpki <dir>.)

  caddy cacgate accounts list|search|show|create|approve|disable|enable|unlock|
                         groups add|rm|list|link|unlink|import|export ...
      Administers accounts: directly in the account database the config
      names (--config, default ./Caddyfile), or through a running server's
      admin API with --address (or --api). See "caddy cacgate accounts --help".

  caddy cacgate oidc-clients list|put <client.json>|remove <client_id>
      Manages the OpenID Connect relying parties registered in the account
      database (clients in the Caddyfile are managed there). put
      --generate-secret makes the client's secret and prints it once.
  caddy cacgate announcements list|add|rm
      Manages the announcements (outages, notices) every page shows, in
      the account database or through a running server's admin API.

  caddy cacgate revocation
      Shows the revocation checker's state: CRLs, their freshness and the
      memory their indexes take, the CRL files and downloads refused and
      why (failing_sources, last_error), and the OCSP cache.

  caddy cacgate mail test <address> [--config <file>] [--api|--address <addr>]
      Sends a test e-mail through the relay of the config's mail block (or
      through the running server) and says whether the relay accepted it.

  caddy cacgate trust inspect <bundle>... [--previous <bundle>] [--json]
      Lists every CA of a trust bundle (DISA .zip or .p7b, PEM files,
      directories) with subject, issuer, SHA-256, expiry and policies, the
      certificates and files it refuses, and what changed since --previous.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(accountsCommand(), announcementsCommand(), oidcClientsCommand(), revocationCommand(), trustCommand(), mailCommand())
		},
	})
}

// revocationCommand shows the running server's revocation state: there is
// none without a server.
func revocationCommand() *cobra.Command {
	var address, config, adapter string
	cmd := &cobra.Command{
		Use:   "revocation",
		Short: "Shows CRL freshness, CRL index memory and the OCSP cache of the running server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
			if err != nil {
				return fmt.Errorf("finding the admin API address: %w", err)
			}
			st, err := adminClient(addr).RevocationStats(cmd.Context())
			if err != nil {
				return err
			}
			return admin.PrintJSON(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().StringVar(&address, "address", "", "admin API address (default: from --config, else localhost:2019)")
	cmd.Flags().StringVarP(&config, "config", "c", "", "config file, to find the admin API address")
	cmd.Flags().StringVarP(&adapter, "adapter", "a", "", "config adapter for --config")
	return cmd
}
