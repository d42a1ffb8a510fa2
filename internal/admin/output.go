package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// The accounts commands print tables and lines for people by default, and
// with --json exactly what the admin API answers, for scripts.

// PrintJSON prints v as the admin API answers it (indented JSON).
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cell makes a value safe for one table cell: stored text is checked, but
// a terminal is no place to trust it.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || r == '\t' {
			return '?'
		}
		return r
	}, s)
}

// FullName is the account holder's name, its parts in order.
func FullName(a Account) string {
	var parts []string
	for _, p := range []string{a.GivenName, a.MiddleName, a.FamilyName, a.Suffix} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " ")
}

func shortTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// PrintAccountPage prints a page of accounts as a table, with where the
// page is in the whole and how to get the next.
func PrintAccountPage(w io.Writer, page AccountPage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tEDIPI\tSTATUS\tNAME\tGROUPS\tCARDS\tLAST LOGIN")
	for _, a := range page.Accounts {
		status := a.Status
		if a.LockedUntil != nil && a.LockedUntil.After(time.Now()) {
			status += " (locked)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(a.Username), cell(a.EDIPI), cell(status), cell(FullName(a)),
			cell(strings.Join(a.Groups, ",")), len(a.Cards), shortTime(a.LastLoginAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case page.Total == 0:
		_, err := fmt.Fprintln(w, "No accounts match.")
		return err
	case len(page.Accounts) == 0:
		_, err := fmt.Fprintf(w, "No accounts on this page: %d match, the page starts at %d.\n", page.Total, page.Offset)
		return err
	}
	first, last := page.Offset+1, page.Offset+len(page.Accounts)
	_, err := fmt.Fprintf(w, "Accounts %d-%d of %d.", first, last, page.Total)
	if err == nil && last < page.Total {
		_, err = fmt.Fprintf(w, " Next page: --offset %d", last)
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	return err
}

// PrintAccount prints one account and its cards.
func PrintAccount(w io.Writer, a Account) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, cell(v))
		}
	}
	row("Username", a.Username)
	row("EDIPI", a.EDIPI)
	row("Status", a.Status)
	row("Name", FullName(a))
	row("Email", a.Email)
	row("Affiliation", a.Affiliation)
	row("Categories", strings.Join(a.Categories, ", "))
	row("Groups", strings.Join(a.Groups, ", "))
	row("Organization", a.Organization)
	row("Location", a.Location)
	row("Work address", a.WorkAddress)
	row("Phone", a.Phone)
	password := "no"
	if a.HasPassword {
		password = "yes"
	}
	row("Password", password)
	if a.LockedUntil != nil {
		if a.LockedUntil.After(time.Now()) {
			row("Locked until", shortTime(a.LockedUntil))
		} else {
			row("Last locked until", shortTime(a.LockedUntil))
		}
	}
	row("Created", shortTime(&a.CreatedAt))
	row("Updated", shortTime(&a.UpdatedAt))
	row("Last login", shortTime(a.LastLoginAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(a.Cards) == 0 {
		_, err := fmt.Fprintln(w, "Cards: none")
		return err
	}
	fmt.Fprintln(w, "Cards:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SHA-256\tSUBJECT\tEXPIRES\tLAST USED")
	for _, c := range a.Cards {
		na := c.NotAfter
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", cell(c.Fingerprint), cell(c.Subject), shortTime(&na), shortTime(c.LastUsedAt))
	}
	return tw.Flush()
}

// PrintGroups prints the groups in use as a table.
func PrintGroups(w io.Writer, groups []Group) error {
	if len(groups) == 0 {
		_, err := fmt.Fprintln(w, "No account is in any group.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tACCOUNTS")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%d\n", cell(g.Name), g.Accounts)
	}
	return tw.Flush()
}

// PrintImportReport prints what an import stored and which records it skipped.
func PrintImportReport(w io.Writer, r ImportReport) error {
	fmt.Fprintf(w, "Read %d records: imported %d accounts with %d cards", r.Records, r.Imported, r.Cards)
	if r.Skipped > 0 {
		fmt.Fprintf(w, ", skipped %d whose username, DoD ID or card was taken", r.Skipped)
	}
	fmt.Fprintln(w, ".")
	if len(r.SkippedRecords) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SKIPPED RECORD\tLINE\tUSERNAME\tTAKEN")
	for _, s := range r.SkippedRecords {
		line := "-"
		if s.Line > 0 {
			line = fmt.Sprint(s.Line)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Record, line, cell(s.Username), cell(s.Taken))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if more := r.Skipped - len(r.SkippedRecords); more > 0 {
		_, err := fmt.Fprintf(w, "... and %d more.\n", more)
		return err
	}
	return nil
}
