package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/npe"
	"github.com/cacgate/cacgate/internal/store"
)

// Non-person entities (NPE): servers and devices that call the protected
// application with a DoD PKI certificate of their own (issued to a host or
// system name, carrying no DoD ID). Such a certificate is not a CAC
// identity and was refused as one; an administrator may register it (by
// fingerprint, or by subject and issuer) to a utility account, and then it
// is admitted as that account without the banner: there is no person at
// the other end to read it, and the system's sponsor accepted the terms
// for it when the account was created.
//
// A certificate that carries anything of a person (npe.PersonMarks) is
// never taken as an NPE: a person's card that cacid refused stays refused.

// AuthNPE is X-Cac-Auth-Method for a non-person certificate.
const AuthNPE = "npe"

// npeIdentity: see npe.Identity.
func npeIdentity(cert *x509.Certificate) *cacid.Identity { return npe.Identity(cert) }

// IsNPE reports whether id is a non-person certificate's identity. (Not
// "has no EDIPI": federal PIV, PIV-I and ECA holders have none either.)
func IsNPE(id *cacid.Identity) bool { return id != nil && id.Kind == cacid.KindNPE }

// NPE reports whether the site entry's certificate was taken as a
// non-person entity's.
func (se *SiteEntry) NPE() bool { return se != nil && se.npe }

// npeAccount looks up the utility account a non-person certificate is
// registered to; nil if none.
func (c *Core) npeAccount(ctx context.Context, id *cacid.Identity) (*store.Account, error) {
	acct, err := c.cfg.Store.NPEAccount(ctx, id.FingerprintHex, id.Subject, id.Issuer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("looking up non-person certificate: %w", err)
	case acct.Type != store.TypeUtility:
		return nil, nil // only utility accounts hold NPE registrations
	}
	return acct, nil
}
