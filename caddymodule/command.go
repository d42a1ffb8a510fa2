package caddymodule

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "cacgate",
		Usage: "<accounts|revocation> ...",
		Short: "Manages cacgate accounts and shows revocation state",
		Long: `
Commands for the cacgate CAC gateway. (The test PKI generator is a
separate program, kept out of this binary: go run ./cmd/testpki <dir>.)

  caddy cacgate accounts list|search|show|create|approve|disable|enable|unlock|
                         groups add|rm|list|link|unlink|import|export ...
      Administers accounts: directly in the account database the config
      names (--config, default ./Caddyfile), or through a running server's
      admin API with --address (or --api). See "caddy cacgate accounts --help".

  caddy cacgate revocation
      Shows the revocation checker's state: CRLs, their freshness and the
      memory their indexes take, and the OCSP cache.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(accountsCommand(), revocationCommand())
		},
	})
}

// fingerprintArg accepts a card's hex SHA-256 (colons allowed, any case)
// or the path of its PEM certificate.
func fingerprintArg(arg string) (string, error) {
	clean := strings.ToLower(strings.ReplaceAll(arg, ":", ""))
	if store.ValidFingerprint(clean) {
		return clean, nil
	}
	data, err := readSmallFile(arg, maxPEM)
	if err != nil {
		return "", fmt.Errorf("%q is neither a SHA-256 fingerprint nor a readable certificate file", arg)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s holds no PEM certificate", arg)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", err
	}
	return cacid.Fingerprint(block.Bytes), nil
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
			var st RevocationStatsJSON
			if err := (&apiBackend{address: addr}).call(cmd.Context(), http.MethodGet, "/cacgate/revocation", nil, "", &st); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().StringVar(&address, "address", "", "admin API address (default: from --config, else localhost:2019)")
	cmd.Flags().StringVarP(&config, "config", "c", "", "config file, to find the admin API address")
	cmd.Flags().StringVarP(&adapter, "adapter", "a", "", "config adapter for --config")
	return cmd
}
