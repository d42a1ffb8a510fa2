package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRLs are read with cryptobyte instead of x509.ParseRevocationList, which
// materialises every entry as a struct with a *big.Int and an extension
// slice: hundreds of bytes an entry, hundreds of megabytes for the DoD's
// CRLs. crlHeader reads everything but the entries, which buildIndex then
// walks straight into the compact index.

var (
	tagExplicitExtensions     = cryptobyteasn1.Tag(0).Constructed().ContextSpecific()
	tagGeneralNameURI         = cryptobyteasn1.Tag(6).ContextSpecific()
	errUnsupportedDeltaCRL    = errors.New("delta CRLs are not supported")
	errUnsupportedIndirectCRL = errors.New("indirect CRLs are not supported")
)

// crlHeader is a CRL with its structure validated and its entries not yet
// read. Its byte slices point into the DER it was parsed from.
type crlHeader struct {
	tbs        []byte // the signed TBSCertList element
	sigAlg     x509.SignatureAlgorithm
	signature  []byte
	issuer     []byte // DER Name
	thisUpdate time.Time
	nextUpdate time.Time
	number     []byte // CRL number, INTEGER content; nil when absent
	scope      []string
	// onlyUserCerts and onlyCACerts are the issuing distribution point's
	// onlyContainsUserCerts and onlyContainsCACerts (at most one is set).
	onlyUserCerts, onlyCACerts bool
	entries                    cryptobyte.String // content of revokedCertificates
}

func malformed(what string) error { return errors.New("malformed CRL: " + what) }

// parseCRLHeader reads a DER CertificateList (RFC 5280 section 5.1).
func parseCRLHeader(der []byte) (*crlHeader, error) {
	input := cryptobyte.String(der)
	var certList, tbs, outerAlg cryptobyte.String
	if !input.ReadASN1(&certList, cryptobyteasn1.SEQUENCE) {
		return nil, malformed("not a DER SEQUENCE")
	}
	if !input.Empty() {
		return nil, malformed("trailing data")
	}
	if !certList.ReadASN1Element(&tbs, cryptobyteasn1.SEQUENCE) ||
		!certList.ReadASN1Element(&outerAlg, cryptobyteasn1.SEQUENCE) {
		return nil, malformed("missing tbsCertList or signatureAlgorithm")
	}
	var signature asn1.BitString
	if !certList.ReadASN1BitString(&signature) || signature.BitLength%8 != 0 || !certList.Empty() {
		return nil, malformed("bad signature value")
	}
	h := &crlHeader{tbs: tbs, signature: signature.Bytes}
	var err error
	if h.sigAlg, err = signatureAlgorithm(outerAlg); err != nil {
		return nil, err
	}

	var body cryptobyte.String
	if !tbs.ReadASN1(&body, cryptobyteasn1.SEQUENCE) {
		return nil, malformed("bad tbsCertList")
	}
	if body.PeekASN1Tag(cryptobyteasn1.INTEGER) {
		var version int
		if !body.ReadASN1Integer(&version) {
			return nil, malformed("bad version")
		}
		if version != 1 { // v2, the only version with a version field
			return nil, fmt.Errorf("unsupported CRL version %d", version+1)
		}
	}
	var innerAlg, issuer cryptobyte.String
	if !body.ReadASN1Element(&innerAlg, cryptobyteasn1.SEQUENCE) {
		return nil, malformed("missing signature algorithm in tbsCertList")
	}
	// RFC 5280 section 5.1.1.2: both must be identical, or an attacker could
	// have the signature checked under a different algorithm than signed.
	if !bytes.Equal(innerAlg, outerAlg) {
		return nil, malformed("signature algorithms of tbsCertList and CertificateList differ")
	}
	if !body.ReadASN1Element(&issuer, cryptobyteasn1.SEQUENCE) {
		return nil, malformed("bad issuer name")
	}
	h.issuer = issuer
	if !readTime(&body, &h.thisUpdate) {
		return nil, malformed("bad thisUpdate")
	}
	if !isTimeNext(body) {
		// RFC 5280 section 5.1.2.5 requires nextUpdate; without it nothing
		// says when the CRL goes stale, which could only fail open.
		return nil, malformed("no nextUpdate")
	}
	if !readTime(&body, &h.nextUpdate) {
		return nil, malformed("bad nextUpdate")
	}
	if h.nextUpdate.Before(h.thisUpdate) {
		return nil, malformed("nextUpdate before thisUpdate")
	}
	if body.PeekASN1Tag(cryptobyteasn1.SEQUENCE) && !body.ReadASN1(&h.entries, cryptobyteasn1.SEQUENCE) {
		return nil, malformed("bad revokedCertificates")
	}
	if body.PeekASN1Tag(tagExplicitExtensions) {
		var wrapper, extensions cryptobyte.String
		if !body.ReadASN1(&wrapper, tagExplicitExtensions) ||
			!wrapper.ReadASN1(&extensions, cryptobyteasn1.SEQUENCE) || !wrapper.Empty() {
			return nil, malformed("bad crlExtensions")
		}
		if err := h.readExtensions(extensions); err != nil {
			return nil, err
		}
	}
	if !body.Empty() {
		return nil, malformed("trailing data in tbsCertList")
	}
	if h.number == nil {
		return nil, errNoCRLNumber
	}
	return h, nil
}

// RFC 5280 section 5.2.3: conforming CAs MUST include the CRL number, and
// MUST mark it non-critical. Without it two CRLs of the same second cannot
// be ordered, which the rollback protection (refuseOlder) relies on; a
// critical one is an issuer that does not follow the profile. Both are
// refused like a malformed CRL, so the CA's cards follow fail_open or
// fail_closed until a conforming CRL arrives.
var (
	errNoCRLNumber       = errors.New("CRL has no CRL number extension (RFC 5280 section 5.2.3 requires one; CRLs are ordered by it)")
	errCriticalCRLNumber = errors.New("CRL number extension is marked critical (RFC 5280 section 5.2.3: it must be non-critical)")
)

// maxCRLNumberOctets: RFC 5280 section 5.2.3 limits CRL numbers to 20
// octets; one more is a DER sign byte.
const maxCRLNumberOctets = 21

func (h *crlHeader) readExtensions(list cryptobyte.String) error {
	return readExtensionList(list, func(ext extension) error {
		switch {
		case ext.is(extCRLNumber):
			if ext.critical {
				return errCriticalCRLNumber
			}
			var number cryptobyte.String
			if !ext.value.ReadASN1(&number, cryptobyteasn1.INTEGER) || !ext.value.Empty() || !isMinimalInteger(number) {
				return malformed("bad CRL number")
			}
			// A non-negative INTEGER (section 5.2.3), so that
			// compareSerials orders numbers by their bytes.
			if number[0]&0x80 != 0 || len(number) > maxCRLNumberOctets {
				return malformed("CRL number negative or longer than 20 octets")
			}
			h.number = number
		case ext.is(extDeltaCRLIndicator):
			return errUnsupportedDeltaCRL
		case ext.is(extIssuingDistPoint):
			return h.readIssuingDistributionPoint(ext.value)
		case ext.is(extAuthorityKeyID), ext.is(extFreshestCRL), ext.is(extAuthorityInfoAccess):
			// Not needed: the issuer is found by name and proven by the
			// signature; fresher (delta) CRLs are not used.
		case ext.critical:
			return errors.New("unsupported critical CRL extension " + ext.name())
		}
		return nil
	})
}

// readIssuingDistributionPoint accepts the IDP of a complete, direct CRL
// and records what limits it to part of the CA's certificates (RFC 5280
// section 5.2.5): distribution point URIs, and onlyContainsUserCerts or
// onlyContainsCACerts (an authority revocation list, as roots publish).
func (h *crlHeader) readIssuingDistributionPoint(value cryptobyte.String) error {
	var idp cryptobyte.String
	if !value.ReadASN1(&idp, cryptobyteasn1.SEQUENCE) || !value.Empty() {
		return malformed("bad issuing distribution point")
	}
	var dpName cryptobyte.String
	var hasDPName bool
	if !idp.ReadOptionalASN1(&dpName, &hasDPName, cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) {
		return malformed("bad issuing distribution point name")
	}
	if hasDPName {
		var fullName cryptobyte.String
		if !dpName.ReadASN1(&fullName, cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) || !dpName.Empty() {
			return errors.New("issuing distribution point names other than fullName are not supported")
		}
		for !fullName.Empty() {
			var name cryptobyte.String
			var tag cryptobyteasn1.Tag
			if !fullName.ReadAnyASN1(&name, &tag) {
				return malformed("bad issuing distribution point general name")
			}
			if tag == tagGeneralNameURI {
				h.scope = append(h.scope, string(name))
			}
		}
		if len(h.scope) == 0 {
			// The CRL covers only certificates whose distribution point
			// matches a name here, and only URIs can be matched.
			return errors.New("issuing distribution point names no URI")
		}
	}
	flags := []struct {
		tag         cryptobyteasn1.Tag
		unsupported error // nil: allowed either way
		record      *bool // where a TRUE is recorded, if anywhere
	}{
		{cryptobyteasn1.Tag(1).ContextSpecific(), nil, &h.onlyUserCerts},                                                        // onlyContainsUserCerts
		{cryptobyteasn1.Tag(2).ContextSpecific(), nil, &h.onlyCACerts},                                                          // onlyContainsCACerts
		{cryptobyteasn1.Tag(3).ContextSpecific(), errors.New("CRLs limited to some revocation reasons are not supported"), nil}, // onlySomeReasons
		{cryptobyteasn1.Tag(4).ContextSpecific(), errUnsupportedIndirectCRL, nil},                                               // indirectCRL
		{cryptobyteasn1.Tag(5).ContextSpecific(), errors.New("CRLs of attribute certificates are not supported"), nil},          // onlyContainsAttributeCerts
	}
	for _, flag := range flags {
		var content cryptobyte.String
		var present bool
		if !idp.ReadOptionalASN1(&content, &present, flag.tag) {
			return malformed("bad issuing distribution point")
		}
		if !present {
			continue
		}
		// onlySomeReasons is a BIT STRING; the others BOOLEANs, where DER
		// encodes TRUE as ff and FALSE by omission.
		isTrue := len(content) == 1 && content[0] != 0
		if flag.tag == cryptobyteasn1.Tag(3).ContextSpecific() {
			isTrue = true
		} else if len(content) != 1 {
			return malformed("bad issuing distribution point flag")
		}
		if isTrue && flag.unsupported != nil {
			return flag.unsupported
		}
		if flag.record != nil {
			*flag.record = isTrue
		}
	}
	if !idp.Empty() {
		return malformed("trailing data in issuing distribution point")
	}
	if h.onlyUserCerts && h.onlyCACerts {
		// RFC 5280 section 5.2.5: at most one may be asserted.
		return malformed("issuing distribution point limited to both user and CA certificates")
	}
	return nil
}

// isTimeNext reports whether the next element is a UTCTime or
// GeneralizedTime.
func isTimeNext(s cryptobyte.String) bool {
	return s.PeekASN1Tag(cryptobyteasn1.UTCTime) || s.PeekASN1Tag(cryptobyteasn1.GeneralizedTime)
}

// readTime reads an X.509 Time. The RFC 5280 forms, YYMMDDHHMMSSZ and
// YYYYMMDDHHMMSSZ, are decoded by hand: CRLs carry one per entry and
// time.Parse would dominate the load time. Anything else goes to cryptobyte.
func readTime(s *cryptobyte.String, out *time.Time) bool {
	var tag cryptobyteasn1.Tag
	var raw cryptobyte.String
	whole := *s
	if !s.ReadAnyASN1(&raw, &tag) {
		return false
	}
	switch {
	case tag == cryptobyteasn1.UTCTime && len(raw) == 13 && raw[12] == 'Z':
		year, ok := digits(raw[0:2])
		if !ok {
			return false
		}
		// RFC 5280 section 4.1.2.5.1: 50-99 mean 1950-1999.
		if year >= 50 {
			year += 1900
		} else {
			year += 2000
		}
		return decodeTime(year, raw[2:12], out)
	case tag == cryptobyteasn1.GeneralizedTime && len(raw) == 15 && raw[14] == 'Z':
		year, ok := digits(raw[0:4])
		return ok && decodeTime(year, raw[4:14], out)
	case tag == cryptobyteasn1.UTCTime:
		return whole.ReadASN1UTCTime(out)
	case tag == cryptobyteasn1.GeneralizedTime:
		return whole.ReadASN1GeneralizedTime(out)
	}
	return false
}

// decodeTime decodes MMDDHHMMSS and rejects out-of-range fields instead of
// letting time.Date normalise them.
func decodeTime(year int, mmddhhmmss []byte, out *time.Time) bool {
	var f [5]int
	for i := range f {
		v, ok := digits(mmddhhmmss[2*i : 2*i+2])
		if !ok {
			return false
		}
		f[i] = v
	}
	month, day, hour, minute, second := f[0], f[1], f[2], f[3], f[4]
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59 {
		return false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // 31 April and the like
		return false
	}
	*out = t
	return true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
