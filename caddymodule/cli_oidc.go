package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/internal/admin"
)

// oidcClientsCommand manages the relying parties registered in the account
// database (caddy cacgate oidc-clients ...), directly or through a running
// server's admin API, like the accounts commands.
func oidcClientsCommand() *cobra.Command {
	opt := &cliOptions{}
	r := runner{opt: opt}
	cmd := &cobra.Command{
		Use:   "oidc-clients",
		Short: "Lists, registers and removes OpenID Connect relying parties",
		Long: `
Manages the OpenID Connect relying parties registered in the account
database, which every node's provider reads. Clients configured in a site's
oidc block (Caddyfile/JSON) are managed there; the admin API refuses to
register a client ID a running server's configuration holds.

put reads the client's JSON (the oidc client fields: client_id,
redirect_uris, auth_method, scopes, claims, jwks, allow_password,
access_token_ttl, id_token_ttl, refresh_ttl, secret_hash). A secret is never
accepted in clear: --generate-secret makes one and prints it once.
`,
	}
	opt.addFlags(cmd)
	list := &cobra.Command{
		Use: "list", Short: "Lists the registered relying parties", Args: cobra.NoArgs,
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, _ []string) error {
			clients, err := s.OIDCClients(ctx)
			if err != nil {
				return err
			}
			if opt.json {
				return admin.PrintJSON(cmd.OutOrStdout(), clients)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tAUTH\tREDIRECT_URIS\tSCOPES\tREFRESH")
			for _, c := range clients {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.AuthMethod, strings.Join(c.RedirectURIs, " "), strings.Join(c.Scopes, " "), refreshText(c))
			}
			return tw.Flush()
		}),
	}
	var generate bool
	put := &cobra.Command{
		Use: "put <client.json|->", Short: "Registers a relying party, or replaces one of the same client_id", Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				var buf bytes.Buffer
				if _, err = buf.ReadFrom(cmd.InOrStdin()); err != nil {
					return err
				}
				data = buf.Bytes()
			} else if data, err = admin.ReadSmallFile(args[0], admin.MaxJSONBody); err != nil {
				return err
			}
			var req admin.OIDCClientRequest
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			req.GenerateSecret = req.GenerateSecret || generate
			c, err := s.PutOIDCClient(ctx, s.who, req)
			if err != nil {
				return err
			}
			if c.Secret != "" && !opt.json {
				fmt.Fprintf(cmd.ErrOrStderr(), "Client secret (shown once; give it to the application): %s\n", c.Secret)
			}
			return r.changed(cmd, s, c, "Registered %s", c.ID)
		}),
	}
	put.Flags().BoolVar(&generate, "generate-secret", false, "make the client's secret (printed once)")
	remove := &cobra.Command{
		Use: "remove <client_id>", Short: "Removes a registered relying party and its refresh tokens", Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			if err := s.DeleteOIDCClient(ctx, s.who, args[0]); err != nil {
				return err
			}
			return r.changed(cmd, s, map[string]string{"deleted": args[0]}, "Removed %s", args[0])
		}),
	}
	cmd.AddCommand(list, put, remove)
	return cmd
}

func refreshText(c admin.OIDCClient) string {
	if c.RefreshTTL == 0 {
		return "off"
	}
	return fmt.Sprint(c.RefreshTTL.String())
}
