package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cacgate/cacgate/internal/admin"
)

// The CLI side of the help-desk console's operations: disable and enable
// with a reason, the security-event history of an account, and the
// announcements.

// statusCommand is disable or enable, with --reason.
func statusCommand(r runner, action, short, done string, op func(admin.Backend, context.Context, admin.Actor, string, string) (admin.Account, error)) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: action + " <username> [--reason text]", Short: short, Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			acct, err := op(s.Backend, ctx, s.who, args[0], reason)
			if err != nil {
				return err
			}
			return r.changed(cmd, s, acct, "%s %s: status %s.", done, acct.Username, acct.Status)
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}

// eventsCommand lists an account's recent security events.
func eventsCommand(r runner) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use: "events <username> [--limit N]", Short: "Lists an account's recent security events (the history in the account database)", Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			events, err := s.Events(ctx, args[0], limit)
			if err != nil {
				return err
			}
			if r.opt.json {
				return admin.PrintJSON(cmd.OutOrStdout(), events)
			}
			return printEvents(cmd.OutOrStdout(), events)
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", admin.DefaultEventLimit, "how many events, newest first")
	return cmd
}

func printEvents(w io.Writer, events []admin.Event) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tOUTCOME\tSOURCE\tNODE")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Event, e.Outcome, e.SourceIP, e.Node)
	}
	return tw.Flush()
}

// announcementsCommand is `caddy cacgate announcements ...`.
func announcementsCommand() *cobra.Command {
	opt := &cliOptions{}
	r := runner{opt: opt}
	cmd := &cobra.Command{
		Use:   "announcements",
		Short: "Lists, adds and removes the announcements every gateway page shows",
		Long: `
Manages announcements: notices (info) and outage notices shown at the top of
the banner, no-card, sign-in and enrollment pages, on every node, between
their start and end. They are stored in the account database, shown as plain
text, and audited when changed. Like "caddy cacgate accounts", the commands
work on the database the config names, or through a running server's admin
API with --address or --api.
`,
	}
	opt.addFlags(cmd)
	var add struct {
		severity, start, end string
		duration             time.Duration
	}
	addCmd := &cobra.Command{
		Use: "add <message> --end <time> | --for <duration> [--severity info|outage] [--start <time>]", Short: "Adds an announcement",
		Args: cobra.ExactArgs(1),
		RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
			req := admin.NewAnnouncementRequest{Severity: add.severity, Message: args[0]}
			start := time.Now()
			if add.start != "" {
				t, err := time.Parse(time.RFC3339, add.start)
				if err != nil {
					return fmt.Errorf("--start must be an RFC 3339 time such as 2026-12-24T18:00:00Z")
				}
				req.Start, start = &t, t
			}
			switch {
			case add.end != "" && add.duration != 0:
				return errors.New("give --end or --for, not both")
			case add.end != "":
				t, err := time.Parse(time.RFC3339, add.end)
				if err != nil {
					return fmt.Errorf("--end must be an RFC 3339 time such as 2026-12-24T20:00:00Z")
				}
				req.End = t
			case add.duration > 0:
				req.End = start.Add(add.duration)
			default:
				return errors.New("give --end or --for: announcements end by themselves")
			}
			a, err := s.CreateAnnouncement(ctx, s.who, req)
			if err != nil {
				return err
			}
			return r.changed(cmd, s, a, "Announcement %d (%s) shown from %s until %s.", a.ID, a.Severity,
				a.Start.Format(time.RFC3339), a.End.Format(time.RFC3339))
		}),
	}
	addCmd.Flags().StringVar(&add.severity, "severity", "info", "info or outage")
	addCmd.Flags().StringVar(&add.start, "start", "", "when it starts (RFC 3339); default now")
	addCmd.Flags().StringVar(&add.end, "end", "", "when it ends (RFC 3339)")
	addCmd.Flags().DurationVar(&add.duration, "for", 0, "how long it is shown, from its start (e.g. 4h)")
	cmd.AddCommand(
		&cobra.Command{
			Use: "list", Short: "Lists the current and scheduled announcements", Args: cobra.NoArgs,
			RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, _ []string) error {
				list, err := s.Announcements(ctx)
				if err != nil {
					return err
				}
				if r.opt.json {
					return admin.PrintJSON(cmd.OutOrStdout(), list)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSEVERITY\tSTART\tEND\tNOW\tMESSAGE")
				for _, a := range list {
					now := "no"
					if a.Current {
						now = "yes"
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Severity, a.Start.Format(time.RFC3339), a.End.Format(time.RFC3339), now,
						admin.Clip(strings.ReplaceAll(a.Message, "\n", " "), 80))
				}
				return tw.Flush()
			}),
		},
		addCmd,
		&cobra.Command{
			Use: "rm <id>", Aliases: []string{"remove"}, Short: "Removes an announcement at once", Args: cobra.ExactArgs(1),
			RunE: r.run(cliTimeout, func(ctx context.Context, s *cliSession, cmd *cobra.Command, args []string) error {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not an announcement id", admin.Clip(args[0], 40))
				}
				if err := s.DeleteAnnouncement(ctx, s.who, id); err != nil {
					return err
				}
				return r.changed(cmd, s, nil, "Announcement %d removed.", id)
			}),
		},
	)
	return cmd
}
