package caddymodule

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/testpki"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "cacgate",
		Usage: "<testpki|accounts> ...",
		Short: "Manages cacgate accounts and test certificates",
		Long: `
Commands for the cacgate CAC gateway.

  caddy cacgate testpki <dir>
      Writes a complete test PKI (DoD-style root and intermediate, a
      localhost server certificate, and test CAC certificates with .p12
      files, password "` + testpki.DemoP12Password + `") into <dir>.

  caddy cacgate accounts list|show|create|disable|enable|approve|link|unlink ...
      Manages accounts through the running server's admin API (the address
      comes from --address, else from --config, else localhost:2019).

  caddy cacgate revocation
      Shows the revocation checker's state: CRLs, their freshness and the
      memory their indexes take, and the OCSP cache.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(testPKICommand(), accountsCommand(), revocationCommand())
		},
	})
}

func testPKICommand() *cobra.Command {
	return &cobra.Command{
		Use:   "testpki <dir>",
		Short: "Writes a test PKI with DoD-style CAC certificates (for testing only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := testpki.WriteDemo(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Test PKI written to %s (see %s/README.md). .p12 password: %s\n", args[0], args[0], testpki.DemoP12Password)
			return nil
		},
	}
}

// adminClient talks to the running server's admin API.
type adminClient struct {
	address, config, adapter string
}

func (c *adminClient) do(method, uri string, body any) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(c.address, nil, c.config, c.adapter)
	if err != nil {
		return nil, fmt.Errorf("finding the admin API address: %w", err)
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, http.Header{}, reader)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

func accountsCommand() *cobra.Command {
	client := &adminClient{}
	accounts := &cobra.Command{
		Use:   "accounts",
		Short: "Lists, creates, disables and enables accounts and links cards",
	}
	pf := accounts.PersistentFlags()
	pf.StringVar(&client.address, "address", "", "admin API address (default: from --config, else localhost:2019)")
	pf.StringVarP(&client.config, "config", "c", "", "config file, to find the admin API address")
	pf.StringVarP(&client.adapter, "adapter", "a", "", "config adapter for --config")

	writeOut := func(cmd *cobra.Command, out []byte) {
		cmd.OutOrStdout().Write(out)
	}
	simple := func(use, short string, nargs int, method func(args []string) (string, string, any, error)) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(nargs),
			RunE: func(cmd *cobra.Command, args []string) error {
				m, uri, body, err := method(args)
				if err != nil {
					return err
				}
				out, err := client.do(m, uri, body)
				if err != nil {
					return err
				}
				writeOut(cmd, out)
				return nil
			},
		}
	}
	userPath := func(u string) string { return "/cacgate/accounts/" + url.PathEscape(u) }

	var offset, limit int
	var status string
	list := simple("list", "Lists accounts as JSON", 0, func([]string) (string, string, any, error) {
		uri := fmt.Sprintf("/cacgate/accounts?offset=%d&limit=%d", offset, limit)
		if status != "" {
			uri += "&status=" + url.QueryEscape(status)
		}
		return http.MethodGet, uri, nil, nil
	})
	list.Flags().IntVar(&offset, "offset", 0, "skip this many accounts")
	list.Flags().IntVar(&limit, "limit", 100, "list at most this many accounts (1-1000)")
	list.Flags().StringVar(&status, "status", "", "only accounts in this status: active, disabled or pending")

	var req NewAccountRequest
	create := simple("create", "Creates an account (its cards link on first use by DoD ID)", 0, func([]string) (string, string, any, error) {
		if req.EDIPI == "" || req.Username == "" {
			return "", "", nil, errors.New("--edipi and --username are required")
		}
		return http.MethodPost, "/cacgate/accounts", req, nil
	})
	cf := create.Flags()
	cf.StringVar(&req.EDIPI, "edipi", "", "10-digit DoD ID number (required)")
	cf.StringVar(&req.Username, "username", "", "username, e.g. john.q.doe (required)")
	cf.StringVar(&req.GivenName, "given-name", "", "given name")
	cf.StringVar(&req.MiddleName, "middle-name", "", "middle name")
	cf.StringVar(&req.FamilyName, "family-name", "", "family name")
	cf.StringVar(&req.Suffix, "suffix", "", "name suffix, e.g. Jr")
	cf.StringVar(&req.Email, "email", "", "email address")
	cf.StringVar(&req.Affiliation, "affiliation", "", "affiliation, e.g. USA")
	cf.StringVar(&req.Status, "status", "", "active (default), disabled or pending")

	accounts.AddCommand(
		list,
		simple("show <username>", "Shows one account and its cards", 1, func(a []string) (string, string, any, error) {
			return http.MethodGet, userPath(a[0]), nil, nil
		}),
		create,
		simple("disable <username>", "Disables an account (effective at once on this node)", 1, func(a []string) (string, string, any, error) {
			return http.MethodPost, userPath(a[0]) + "/disable", nil, nil
		}),
		simple("enable <username>", "Re-enables an account", 1, func(a []string) (string, string, any, error) {
			return http.MethodPost, userPath(a[0]) + "/enable", nil, nil
		}),
		simple("approve <username>", "Approves an account waiting for approval", 1, func(a []string) (string, string, any, error) {
			return http.MethodPost, userPath(a[0]) + "/approve", nil, nil
		}),
		simple("link <username> <cert.pem>", "Registers a card (its certificate PEM) to an account", 2, func(a []string) (string, string, any, error) {
			pemBytes, err := os.ReadFile(a[1])
			if err != nil {
				return "", "", nil, err
			}
			return http.MethodPost, userPath(a[0]) + "/cards", LinkCardRequest{Certificate: string(pemBytes)}, nil
		}),
		simple("unlink <username> <sha256|cert.pem>", "Clears a card's registration", 2, func(a []string) (string, string, any, error) {
			fp, err := fingerprintArg(a[1])
			if err != nil {
				return "", "", nil, err
			}
			return http.MethodDelete, userPath(a[0]) + "/cards/" + fp, nil, nil
		}),
	)
	return accounts
}

// fingerprintArg accepts a card's hex SHA-256 (colons allowed) or the path
// of its PEM certificate.
func fingerprintArg(arg string) (string, error) {
	clean := strings.ToLower(strings.ReplaceAll(arg, ":", ""))
	if sha256Pattern.MatchString(clean) {
		return clean, nil
	}
	data, err := os.ReadFile(arg)
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
	return certFingerprint(block.Bytes), nil
}

func revocationCommand() *cobra.Command {
	client := &adminClient{}
	cmd := &cobra.Command{
		Use:   "revocation",
		Short: "Shows CRL freshness, CRL index memory and the OCSP cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := client.do(http.MethodGet, "/cacgate/revocation", nil)
			if err != nil {
				return err
			}
			cmd.OutOrStdout().Write(out)
			return nil
		},
	}
	cmd.Flags().StringVar(&client.address, "address", "", "admin API address (default: from --config, else localhost:2019)")
	cmd.Flags().StringVarP(&client.config, "config", "c", "", "config file, to find the admin API address")
	cmd.Flags().StringVarP(&client.adapter, "adapter", "a", "", "config adapter for --config")
	return cmd
}
