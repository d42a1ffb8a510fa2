package trustbundle

import (
	"bytes"
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
