package cacid

import "encoding/asn1"

// Object identifiers that identify DoD CAC authentication certificates.
var (
	// OIDUPN is the Microsoft User Principal Name otherName type carried in
	// the subject alternative names, e.g. "1234567890@mil".
	OIDUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

	// OIDSmartcardLogon is the Microsoft smart card logon extended key usage.
	OIDSmartcardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}

	// OIDPolicyMediumHardware112 is the DoD id-US-dod-mediumHardware-112
	// certificate policy asserted by CAC authentication certificates.
	OIDPolicyMediumHardware112 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 2, 1, 11, 42}

	// OIDPolicyFPKICommonAuth is the Federal PKI id-fpki-common-authentication
	// certificate policy asserted by PIV authentication certificates.
	OIDPolicyFPKICommonAuth = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 2, 1, 3, 13}
)

// Attribute types of the X.500 names this package reads.
var (
	oidCommonName         = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganizationalUnit = asn1.ObjectIdentifier{2, 5, 4, 11}
)

// oidSubjectAltName is the subject alternative name extension (RFC 5280,
// section 4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
