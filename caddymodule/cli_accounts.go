package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/internal/admin"
)

// Time limits of the accounts commands.
const (
	cliTimeout     = time.Minute
	cliBulkTimeout = time.Hour // import, export
)

// cliOptions are the flags every accounts command takes.
type cliOptions struct {
	config, adapter string
	address         string
	api             bool
	json            bool
	createDB        bool
}

// cliSession is what an accounts command runs against: the Backend, and who
// runs it, for the audit trail.
type cliSession struct {
	admin.Backend
	who admin.Actor
	// delayed: changes reach running servers only within their cache_ttl
	// (direct mode on a store that does not announce changes).
	delayed bool
	close   func() error
}

// open picks where the command runs: the admin API of a running server
// with --address or --api, else the database the config names.
func (o *cliOptions) open() (*cliSession, error) {
	who := admin.CLIActor()
	if o.address != "" || o.api {
		config := o.config
		if config == "" && o.address == "" {
			if _, err := os.Stat(defaultConfigFile); err == nil {
				config = defaultConfigFile
			}
		}
		addr, err := caddycmd.DetermineAdminAPIAddress(o.address, nil, config, o.adapter)
		if err != nil {
			return nil, fmt.Errorf("finding the admin API address: %w", err)
		}
		return &cliSession{Backend: adminClient(addr), who: who, close: func() error { return nil }}, nil
	}
	d, err := openDirect(directOptions{config: o.config, adapter: o.adapter, createDB: o.createDB})
	if err != nil {
		return nil, err
	}
	return &cliSession{Backend: d.svc, who: who, delayed: !d.announces, close: d.close}, nil
}

// adminClient is the admin API client of the server at addr.
func adminClient(addr string) *admin.Client {
	return &admin.Client{Address: addr, Send: func(method, uri string, header http.Header, body io.Reader) (*http.Response, error) {
		resp, err := caddycmd.AdminAPIRequest(addr, method, uri, header, body)
		if err != nil {
			return nil, apiCallError(addr, err)
		}
		return resp, nil
	}}
}

// apiErrorText is how caddycmd.AdminAPIRequest reports an error status.
var apiErrorText = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d{3}): (.*)$`)

// apiCallError turns the admin API's error answer, {"error": "..."}, into
// "HTTP <status>: <message>".
func apiCallError(address string, err error) error {
	m := apiErrorText.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("admin API at %s: %w (is the server running? without --address the CLI works on the database directly)", address, err)
	}
	status, _ := strconv.Atoi(m[1])
	var body caddy.APIError
	msg := strings.TrimSpace(m[2])
	if json.Unmarshal([]byte(msg), &body) == nil && body.Message != "" {
		msg = body.Message
	}
	return admin.Errorf(status, "HTTP %d: %s", status, msg)
}

// runner wraps a command's work: it opens the session, bounds the work in
// time, and closes the session.
type runner struct {
	opt *cliOptions
}

func (r runner) run(timeout time.Duration, fn func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		s, err := r.opt.open()
		if err != nil {
			return err
		}
		defer func() {
			if cerr := s.close(); err == nil {
				err = cerr
			}
		}()
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		return fn(ctx, s, cmd, args)
	}
}

// changed reports a change in a human line (or JSON), and in direct mode
// on a store that does not announce changes, when running servers will
// see it.
func (r runner) changed(cmd *cobra.Command, s *cliSession, v any, format string, args ...any) error {
	if s.delayed {
		defer fmt.Fprintln(cmd.ErrOrStderr(), admin.DirectChangeNote)
	}
	if r.opt.json {
		if v == nil {
			return nil
		}
		return admin.PrintJSON(cmd.OutOrStdout(), v)
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	return err
}

// addFlags gives cmd the flags every command on the account database
// takes (accounts, announcements, oidc-clients).
func (opt *cliOptions) addFlags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVarP(&opt.config, "config", "c", "", "config file (Caddyfile or JSON) naming the account store; default ./Caddyfile")
	pf.StringVarP(&opt.adapter, "adapter", "a", "", "config adapter for --config (caddyfile is inferred from the name)")
	pf.StringVar(&opt.address, "address", "", "work through the admin API at this address instead of the database")
	pf.BoolVar(&opt.api, "api", false, "work through the admin API at the address the config gives (default localhost:2019)")
	pf.BoolVar(&opt.json, "json", false, "print JSON (as the admin API answers) instead of tables")
	pf.BoolVar(&opt.createDB, "create-db", false, "direct mode: create the SQLite database if it does not exist")
}

func accountsCommand() *cobra.Command {
	opt := &cliOptions{}
	r := runner{opt: opt}
	accounts := &cobra.Command{
		Use:   "accounts",
		Short: "Lists, searches, creates, approves, disables, unlocks, groups, imports and exports accounts",
		Long: `
Administers cacgate accounts.

By default the commands work on the account database itself, as the config
names it (--config, default ./Caddyfile; apps.cacgate.store): no server
needs to run, which suits migrations and a server that is down. Run them as
the server's user (its HOME/XDG_DATA_HOME locate the default database).
Changes are audited to the config's audit log as "cli:<user>@<host>".

With --address (or --api, which takes the address from the config) they
go through a running server's admin API instead: changes then take effect
at once on that server, and are audited there.

Output is a table for people; --json prints what the admin API answers.
`,
	}
	opt.addFlags(accounts)

	accounts.AddCommand(
		searchCommand(r, "list", "Lists accounts, a page at a time", false),
		searchCommand(r, "search [text]", "Searches accounts by name, username, DoD ID or email", true),
		showCommand(r),
		createCommand(r),
		actionCommand(r, "approve", "Approves an account waiting for approval (pending -> active)", "Approved", admin.Backend.Approve),
		statusCommand(r, "disable", "Disables an account: its cards are refused", "Disabled", admin.Backend.DisableBecause),
		statusCommand(r, "enable", "Re-enables a disabled account", "Enabled", admin.Backend.EnableBecause),
		actionCommand(r, "require-password-reset", "Makes the account's password sign in no more until its holder chooses a new one", "New password required for", admin.Backend.RequirePasswordReset),
		eventsCommand(r),
		actionCommand(r, "unlock", "Lifts an account's password lockout", "Unlocked", admin.Backend.Unlock),
		groupsCommand(r),
		linkCommand(r),
		unlinkCommand(r),
		importCommand(r),
		exportCommand(r),
	)
	accounts.AddCommand(utilityCommands(r)...)
	return accounts
}

func searchCommand(r runner, use, short string, withText bool) *cobra.Command {
	var search admin.AccountSearch
	args := cobra.NoArgs
	if withText {
		args = cobra.MaximumNArgs(1)
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			q := search
			if len(args) == 1 {
				q.Text = args[0]
			}
			page, err := s.Search(ctx, q)
			if err != nil {
				return err
			}
			if r.opt.json {
				return admin.PrintJSON(cmd.OutOrStdout(), page)
			}
			return admin.PrintAccountPage(cmd.OutOrStdout(), page)
		}),
	}
	f := cmd.Flags()
	if withText {
		f.StringVar(&search.Username, "username", "", "only the account with exactly this username")
		f.StringVar(&search.EDIPI, "edipi", "", "only the account with exactly this DoD ID")
	}
	f.StringVar(&search.Status, "status", "", "only accounts in this status: active, disabled or pending")
	f.StringVar(&search.Group, "group", "", "only accounts in this group")
	f.IntVar(&search.Offset, "offset", 0, "skip this many accounts")
	f.IntVar(&search.Limit, "limit", admin.DefaultPageLimit, fmt.Sprintf("show at most this many accounts (1-%d)", admin.MaxPageLimit))
	return cmd
}

func showCommand(r runner) *cobra.Command {
	return &cobra.Command{
		Use: "show <username>", Short: "Shows one account and its cards", Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			acct, err := s.Show(ctx, args[0])
			if err != nil {
				return err
			}
			if r.opt.json {
				return admin.PrintJSON(cmd.OutOrStdout(), acct)
			}
			return admin.PrintAccount(cmd.OutOrStdout(), acct)
		}),
	}
}

func createCommand(r runner) *cobra.Command {
	var req admin.NewAccountRequest
	cmd := &cobra.Command{
		Use: "create", Short: "Creates an account (its cards link on first use by DoD ID)", Args: cobra.NoArgs,
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, _ []string) error {
			nonDoD := req.Credential != "" && req.Credential != "cac"
			switch {
			case req.Username == "":
				return errors.New("--username is required")
			case !nonDoD && req.EDIPI == "":
				return errors.New("--edipi is required (or --credential piv|piv-i|eca with --key)")
			case nonDoD && req.Key == "":
				return errors.New("--key is required with --credential " + req.Credential)
			}
			acct, err := s.Create(ctx, s.who, req)
			if err != nil {
				return err
			}
			if nonDoD {
				return r.changed(cmd, s, acct, "Created %s (%s %s, %s).", acct.Username, acct.Credential, acct.Key, acct.Status)
			}
			return r.changed(cmd, s, acct, "Created %s (DoD ID %s, %s).", acct.Username, acct.EDIPI, acct.Status)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.EDIPI, "edipi", "", "10-digit DoD ID number (required for a DoD account)")
	f.StringVar(&req.Credential, "credential", "", "credential kind of a non-DoD account: piv, piv-i or eca (needs --key, no --edipi)")
	f.StringVar(&req.Key, "key", "", "the credential's key: the card UUID (piv, piv-i) or the ECA key")
	f.StringVar(&req.Username, "username", "", "username, e.g. john.q.doe (required)")
	f.StringVar(&req.GivenName, "given-name", "", "given name")
	f.StringVar(&req.MiddleName, "middle-name", "", "middle name")
	f.StringVar(&req.FamilyName, "family-name", "", "family name")
	f.StringVar(&req.Suffix, "suffix", "", "name suffix, e.g. Jr")
	f.StringVar(&req.Email, "email", "", "email address")
	f.StringVar(&req.Affiliation, "affiliation", "", "affiliation, e.g. USA")
	f.StringVar(&req.Status, "status", "", "active (default), disabled or pending")
	f.StringSliceVar(&req.Groups, "group", nil, "put the account in this group (repeat, or comma-separate)")
	return cmd
}

func actionCommand(r runner, action, short, done string, op func(admin.Backend, context.Context, admin.Actor, string) (admin.Account, error)) *cobra.Command {
	return &cobra.Command{
		Use: action + " <username>", Short: short, Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			acct, err := op(s.Backend, ctx, s.who, args[0])
			if err != nil {
				return err
			}
			return r.changed(cmd, s, acct, "%s %s: status %s.", done, acct.Username, acct.Status)
		}),
	}
}

func groupsCommand(r runner) *cobra.Command {
	groups := &cobra.Command{Use: "groups", Short: "Lists groups, and puts accounts in groups or takes them out"}
	edit := func(use, short string, op func(admin.Backend, context.Context, admin.Actor, string, []string) (admin.Account, error)) *cobra.Command {
		return &cobra.Command{
			Use: use + " <username> <group>...", Short: short, Args: cobra.MinimumNArgs(2),
			RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
				acct, err := op(s.Backend, ctx, s.who, args[0], args[1:])
				if err != nil {
					return err
				}
				in := "no group"
				if len(acct.Groups) > 0 {
					in = fmt.Sprint(acct.Groups)
				}
				return r.changed(cmd, s, acct, "%s is in %s.", acct.Username, in)
			}),
		}
	}
	rm := edit("rm", "Takes an account out of groups", admin.Backend.RemoveGroups)
	rm.Aliases = []string{"remove"}
	groups.AddCommand(
		edit("add", "Puts an account in groups", admin.Backend.AddGroups),
		rm,
		&cobra.Command{
			Use: "list", Short: "Lists the groups in use and how many accounts each has", Args: cobra.NoArgs,
			RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, _ []string) error {
				list, err := s.Groups(ctx)
				if err != nil {
					return err
				}
				if r.opt.json {
					return admin.PrintJSON(cmd.OutOrStdout(), list)
				}
				return admin.PrintGroups(cmd.OutOrStdout(), list)
			}),
		},
	)
	return groups
}

func linkCommand(r runner) *cobra.Command {
	return &cobra.Command{
		Use: "link <username> <cert.pem>", Short: "Registers a card (its certificate PEM) to an account", Args: cobra.ExactArgs(2),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			pemBytes, err := admin.ReadSmallFile(args[1], admin.MaxPEM)
			if err != nil {
				return err
			}
			acct, err := s.LinkCard(ctx, s.who, args[0], string(pemBytes))
			if err != nil {
				return err
			}
			return r.changed(cmd, s, acct, "Linked the card to %s (%d cards).", acct.Username, len(acct.Cards))
		}),
	}
}

func unlinkCommand(r runner) *cobra.Command {
	return &cobra.Command{
		Use: "unlink <username> <sha256|cert.pem>", Short: "Clears a card's registration", Args: cobra.ExactArgs(2),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			fp, err := admin.FingerprintArg(args[1])
			if err != nil {
				return err
			}
			if err := s.UnlinkCard(ctx, s.who, args[0], fp); err != nil {
				return err
			}
			return r.changed(cmd, s, nil, "Unlinked card %s from %s; it is not linked again by DoD ID.", fp, args[0])
		}),
	}
}

func importCommand(r runner) *cobra.Command {
	var onConflict string
	cmd := &cobra.Command{
		Use:   "import <file.csv|->",
		Short: "Imports accounts from CSV (e.g. a legacy app's users); all or nothing",
		Long: `
Imports accounts from a CSV file (- for standard input) in the format that
export writes; see the README for the columns. The import is one
transaction: an invalid record stores nothing and is named by its number.
Records whose username, DoD ID or card already exists fail the import
(--on-conflict fail, the default) or are skipped and listed (skip).
`,
		Args: cobra.ExactArgs(1),
		RunE: r.run(cliBulkTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			name := "standard input"
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in, name = f, filepath.Base(args[0])
			}
			report, err := s.Import(ctx, s.who, in, onConflict, name)
			if err != nil {
				return err
			}
			if r.opt.json {
				return r.changed(cmd, s, report, "")
			}
			if s.delayed {
				defer fmt.Fprintln(cmd.ErrOrStderr(), admin.DirectChangeNote)
			}
			return admin.PrintImportReport(cmd.OutOrStdout(), report)
		}),
	}
	cmd.Flags().StringVar(&onConflict, "on-conflict", "fail", "what a record whose username, DoD ID or card exists does: fail (the import) or skip (the record)")
	return cmd
}

func exportCommand(r runner) *cobra.Command {
	var output string
	var force bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Exports every account with its cards and groups as CSV (no passwords or answers)",
		Args:  cobra.NoArgs,
		RunE: r.run(cliBulkTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, _ []string) (err error) {
			if output == "" || output == "-" {
				_, err := s.Export(ctx, s.who, cmd.OutOrStdout())
				return err
			}
			var n int
			err = admin.WriteExportFile(output, force, func(w io.Writer) error {
				var err error
				n, err = s.Export(ctx, s.who, w)
				return err
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.ErrOrStderr(), "Exported %d accounts to %s.\n", n, output)
			return err
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (mode 0600) instead of standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite --output if it exists")
	return cmd
}
