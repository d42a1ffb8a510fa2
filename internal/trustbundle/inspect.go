package trustbundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// Entry describes one accepted CA for `caddy cacgate trust inspect`.
type Entry struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	SHA256    string    `json:"sha256"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Root is true for a self-signed CA (a trust anchor of its own).
	Root bool `json:"root"`
	// Policies are the certificate policy OIDs the CA may issue under
	// (empty: no policy extension).
	Policies []string `json:"policies"`
	Source   string   `json:"source"`
}

// Describe lists the bundle's CAs.
func (b *Bundle) Describe() []Entry {
	entries := make([]Entry, 0, len(b.CAs))
	for _, ca := range b.CAs {
		entries = append(entries, describe(ca))
	}
	return entries
}

func describe(ca CA) Entry {
	c := ca.Cert
	e := Entry{
		Subject: Subject(c), Issuer: Issuer(c), SHA256: cacid.Fingerprint(c.Raw),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		Root:     bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil,
		Policies: []string{},
		Source:   ca.Source,
	}
	for _, oid := range c.PolicyIdentifiers {
		e.Policies = append(e.Policies, oid.String())
	}
	return e
}

// Diff lists the CAs of cur that prev lacks (added) and those of prev
// that cur lacks (removed), by certificate: a CA re-issued under the same
// name with a new key is both removed and added.
func Diff(prev, cur *Bundle) (added, removed []Entry) {
	in := func(b *Bundle) map[string]bool {
		m := make(map[string]bool, len(b.CAs))
		for _, ca := range b.CAs {
			m[cacid.Fingerprint(ca.Cert.Raw)] = true
		}
		return m
	}
	was, is := in(prev), in(cur)
	for _, ca := range cur.CAs {
		if !was[cacid.Fingerprint(ca.Cert.Raw)] {
			added = append(added, describe(ca))
		}
	}
	for _, ca := range prev.CAs {
		if !is[cacid.Fingerprint(ca.Cert.Raw)] {
			removed = append(removed, describe(ca))
		}
	}
	return added, removed
}

// Report is what `caddy cacgate trust inspect` shows of a bundle: every CA
// it accepts, everything it refused and, given the bundle deployed
// before, what changed.
type Report struct {
	Files   []string  `json:"files"`
	Digest  string    `json:"digest"`
	CAs     []Entry   `json:"cas"`
	Refused []Refusal `json:"refused"`
	// Previous, Added and Removed are set when a previous bundle is given.
	Previous []string `json:"previous,omitempty"`
	Added    []Entry  `json:"added,omitempty"`
	Removed  []Entry  `json:"removed,omitempty"`
}

// Inspect loads the bundle at files (and the one at previous, if any) the
// way the trust pool does and reports on it. The report is nil only when
// the bundle could not be read at all; with it, err is Load's (a bundle
// with no usable CA still gets a report saying what was refused).
func Inspect(files, previous []string, now time.Time) (*Report, error) {
	cur, loadErr := Load(files, now)
	if cur == nil {
		return nil, loadErr
	}
	// Empty lists rather than null in the JSON: "none" is an answer.
	rep := &Report{Files: files, Digest: cur.Digest, CAs: cur.Describe(), Refused: cur.Refused}
	if rep.Refused == nil {
		rep.Refused = []Refusal{}
	}
	if len(previous) > 0 {
		prev, err := Load(previous, now)
		if prev == nil || (err != nil && !errors.Is(err, ErrNoCA)) {
			return nil, fmt.Errorf("previous bundle: %w", err)
		}
		rep.Previous = previous
		rep.Added, rep.Removed = Diff(prev, cur)
		if rep.Added == nil {
			rep.Added = []Entry{}
		}
		if rep.Removed == nil {
			rep.Removed = []Entry{}
		}
	}
	return rep, loadErr
}

// WriteText writes the report as tables for a terminal.
func (rep *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "%d CA certificates in %s (digest %s)\n\n", len(rep.CAs), strings.Join(rep.Files, ", "), rep.Digest)
	if err := writeEntries(w, rep.CAs); err != nil {
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
		for _, part := range []struct {
			title   string
			entries []Entry
		}{{"Added", rep.Added}, {"Removed", rep.Removed}} {
			if len(part.entries) == 0 {
				continue
			}
			fmt.Fprintf(w, "\n%s:\n", part.title)
			if err := writeEntries(w, part.entries); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeEntries writes CAs as a table.
func writeEntries(w io.Writer, entries []Entry) error {
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
