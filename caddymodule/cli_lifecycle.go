package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/internal/admin"
)

// utilityCommands are the accounts subcommands for utility accounts and
// the non-person certificates registered to them.
func utilityCommands(r runner) []*cobra.Command {
	var name, email, affiliation, sponsor, expires, match string
	create := &cobra.Command{
		Use:   "create-utility <username> --name <what> --sponsor <username> --expires <YYYY-MM-DD>",
		Short: "Creates a utility (non-person) account, sponsored by a person's account, with an expiry",
		Args:  cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			exp, err := time.Parse("2006-01-02", expires)
			if err != nil {
				return fmt.Errorf("--expires must be a date, YYYY-MM-DD: %w", err)
			}
			acct, err := s.CreateUtility(ctx, s.who, admin.NewUtilityRequest{Username: args[0], Name: name, Email: email,
				Affiliation: affiliation, Sponsor: sponsor, ExpiresAt: exp.Add(24*time.Hour - time.Second)})
			if err != nil {
				return err
			}
			return r.changed(cmd, s, acct, "Created utility account %s (sponsor %s, expires %s).", acct.Username, sponsor, expires)
		}),
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "what the system is, e.g. \"Logistics batch feed\" (required)")
	f.StringVar(&email, "email", "", "where its notices go (a team mailbox)")
	f.StringVar(&affiliation, "affiliation", "", "organization")
	f.StringVar(&sponsor, "sponsor", "", "username of the person's account that answers for it (required)")
	f.StringVar(&expires, "expires", "", "last day it works, YYYY-MM-DD, within a year (required)")

	register := &cobra.Command{
		Use:   "register-npe <username> <cert.pem> [--match fingerprint|subject]",
		Short: "Registers a system's DoD non-person certificate to a utility account",
		Args:  cobra.ExactArgs(2),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			pemBytes, err := admin.ReadSmallFile(args[1], admin.MaxPEM)
			if err != nil {
				return err
			}
			certs, err := s.RegisterNPE(ctx, s.who, args[0], admin.NPERequest{Certificate: string(pemBytes), Match: match})
			if err != nil {
				return err
			}
			return r.changed(cmd, s, certs, "Registered the certificate to %s (%d registrations).", args[0], len(certs))
		}),
	}
	register.Flags().StringVar(&match, "match", admin.MatchFingerprint, "fingerprint (this certificate) or subject (its subject from its issuer, renewals included)")

	var umatch string
	unregister := &cobra.Command{
		Use:   "unregister-npe <username> <cert.pem> [--match fingerprint|subject]",
		Short: "Removes a non-person certificate's registration",
		Args:  cobra.ExactArgs(2),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			pemBytes, err := admin.ReadSmallFile(args[1], admin.MaxPEM)
			if err != nil {
				return err
			}
			if err := s.UnregisterNPE(ctx, s.who, args[0], admin.NPERequest{Certificate: string(pemBytes), Match: umatch}); err != nil {
				return err
			}
			return r.changed(cmd, s, nil, "Removed the registration from %s.", args[0])
		}),
	}
	unregister.Flags().StringVar(&umatch, "match", admin.MatchFingerprint, "how it was registered: fingerprint or subject")

	list := &cobra.Command{
		Use:   "npe <username>",
		Short: "Lists the non-person certificates registered to a utility account",
		Args:  cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			certs, err := s.NPECerts(ctx, args[0])
			if err != nil {
				return err
			}
			if r.opt.json {
				return admin.PrintJSON(cmd.OutOrStdout(), certs)
			}
			for _, c := range certs {
				fmt.Fprintf(cmd.OutOrStdout(), "%-11s %s\n            issuer %s\n            sha256 %s\n", c.Match, c.Subject, c.Issuer, orDash(c.SHA256))
			}
			return nil
		}),
	}
	var rsponsor, rexpires string
	renew := &cobra.Command{
		Use:   "renew-utility <username> --expires <YYYY-MM-DD> [--sponsor <username>]",
		Short: "Gives a utility account a new expiry (and sponsor); enable it after if it was disabled",
		Args:  cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			exp, err := time.Parse("2006-01-02", rexpires)
			if err != nil {
				return fmt.Errorf("--expires must be a date, YYYY-MM-DD: %w", err)
			}
			acct, err := s.RenewUtility(ctx, s.who, args[0], admin.RenewUtilityRequest{Sponsor: rsponsor, ExpiresAt: exp.Add(24*time.Hour - time.Second)})
			if err != nil {
				return err
			}
			return r.changed(cmd, s, acct, "Renewed utility account %s until %s (status %s).", acct.Username, rexpires, acct.Status)
		}),
	}
	renew.Flags().StringVar(&rexpires, "expires", "", "last day it works, YYYY-MM-DD, within a year (required)")
	renew.Flags().StringVar(&rsponsor, "sponsor", "", "a new sponsor (username of an active person's account)")
	return []*cobra.Command{create, renew, register, unregister, list}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// mailCommand is "caddy cacgate mail test <address>".
func mailCommand() *cobra.Command {
	var config, adapter, address string
	var api bool
	mailCmd := &cobra.Command{Use: "mail", Short: "E-mail notices: send a test message"}
	test := &cobra.Command{
		Use:   "test <address>",
		Short: "Sends a test message through the relay the config names (or, with --api/--address, the running server's)",
		Long: `
Sends a test message to <address> at once, not through the outbox, and says
whether the relay took it. By default it reads the mail block of the config
(--config, default ./Caddyfile) and connects to the relay itself, with the
same TLS and authentication the server would use; with --api or --address
the running server sends it (POST /cacgate/mail/test).
`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), cliTimeout)
			defer cancel()
			if api || address != "" {
				addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
				if err != nil {
					return fmt.Errorf("finding the admin API address: %w", err)
				}
				if err := adminClient(addr).MailTest(ctx, args[0]); err != nil {
					return err
				}
			} else if err := directMailTest(ctx, config, adapter, args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "Sent a test message to %s: the relay accepted it.\n", args[0])
			return err
		},
	}
	f := test.Flags()
	f.StringVarP(&config, "config", "c", "", "config file (Caddyfile or JSON) with the mail settings; default ./Caddyfile")
	f.StringVarP(&adapter, "adapter", "a", "", "config adapter for --config")
	f.StringVar(&address, "address", "", "have the running server at this admin API address send it")
	f.BoolVar(&api, "api", false, "have the running server send it (admin API address from the config)")
	mailCmd.AddCommand(test)
	return mailCmd
}

// directMailTest sends the test message with the config's mail settings.
func directMailTest(ctx context.Context, config, adapter, to string) error {
	cfgJSON, file, err := loadCLIConfig(config, adapter)
	if err != nil {
		return err
	}
	var cfg struct {
		Apps struct {
			Cacgate *App `json:"cacgate"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return fmt.Errorf("config %s: %w", file, err)
	}
	if cfg.Apps.Cacgate == nil || cfg.Apps.Cacgate.Mail == nil {
		return errors.New("config " + file + " has no mail settings (the cacgate global option's mail block)")
	}
	a := &App{Mail: cfg.Apps.Cacgate.Mail, life: &lifecycleState{}}
	if err := a.buildMail(nil); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	return sendTest(ctx, a.life.client, a.life.notifier, to)
}
