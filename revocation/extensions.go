package revocation

import (
	"bytes"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// encodedOID is a DER OBJECT IDENTIFIER, tag and length included.
// Extensions are matched against these rather than decoded: a CRL carries
// an extension on most of its hundreds of thousands of entries, and
// decoding each OID would allocate.
type encodedOID []byte

func encodeOID(arcs ...int) encodedOID {
	var b cryptobyte.Builder
	b.AddASN1ObjectIdentifier(arcs)
	return b.BytesOrPanic() // only reached with the constant OIDs below
}

// Extensions the checker recognises.
var (
	extAuthorityKeyID      = encodeOID(2, 5, 29, 35)
	extCRLNumber           = encodeOID(2, 5, 29, 20)
	extDeltaCRLIndicator   = encodeOID(2, 5, 29, 27)
	extIssuingDistPoint    = encodeOID(2, 5, 29, 28)
	extFreshestCRL         = encodeOID(2, 5, 29, 46)
	extAuthorityInfoAccess = encodeOID(1, 3, 6, 1, 5, 5, 7, 1, 1)
	extReasonCode          = encodeOID(2, 5, 29, 21)
	extHoldInstructionCode = encodeOID(2, 5, 29, 23)
	extInvalidityDate      = encodeOID(2, 5, 29, 24)
	extCertificateIssuer   = encodeOID(2, 5, 29, 29)
	extOCSPNonce           = encodeOID(oidOCSPNonce...)
)

// extension is one X.509 Extension, its parts pointing into the DER.
type extension struct {
	oid      cryptobyte.String // encoded, as encodedOID
	critical bool
	value    cryptobyte.String
}

func (e extension) is(oid encodedOID) bool { return bytes.Equal(e.oid, oid) }

// name renders the OID for error messages.
func (e extension) name() string {
	var oid asn1.ObjectIdentifier
	s := e.oid
	if !s.ReadASN1ObjectIdentifier(&oid) {
		return fmt.Sprintf("%x", []byte(e.oid))
	}
	return oid.String()
}

// maxExtensions bounds the extensions of one CRL, entry or response; real
// ones have a handful. It keeps duplicate detection allocation-free and
// quadratic only in a small number.
const maxExtensions = 32

// readExtensionList parses the content of an Extensions SEQUENCE, refusing
// duplicates (RFC 5280 section 4.2), and calls handle for each extension.
func readExtensionList(list cryptobyte.String, handle func(extension) error) error {
	var seenBuf [maxExtensions]cryptobyte.String
	seen := seenBuf[:0]
	for !list.Empty() {
		var raw cryptobyte.String
		var ext extension
		if !list.ReadASN1(&raw, cryptobyteasn1.SEQUENCE) || !raw.ReadASN1Element(&ext.oid, cryptobyteasn1.OBJECT_IDENTIFIER) {
			return malformed("bad extension")
		}
		if raw.PeekASN1Tag(cryptobyteasn1.BOOLEAN) && !raw.ReadASN1Boolean(&ext.critical) {
			return malformed("bad extension criticality")
		}
		if !raw.ReadASN1(&ext.value, cryptobyteasn1.OCTET_STRING) || !raw.Empty() {
			return malformed("bad extension value")
		}
		if len(seen) == maxExtensions {
			return malformed("too many extensions")
		}
		for _, oid := range seen {
			if bytes.Equal(oid, ext.oid) {
				return malformed("duplicate extension " + ext.name())
			}
		}
		seen = append(seen, ext.oid)
		if err := handle(ext); err != nil {
			return err
		}
	}
	return nil
}
