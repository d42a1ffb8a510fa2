package testpki

import (
	"crypto/x509"
	"time"
)

// pivCardUUID is the fixed card UUID of doe.john.quincy.piv, so tests and
// docs can refer to it.
const pivCardUUID = "a6c3b0e2-5f4d-4e8a-9b71-2c0d8e6f1a34"

// defaultCard is one entry of the default card set.
type defaultCard struct {
	rogue   bool // issued by RogueIntermediate instead of Intermediate
	revoked bool // listed on Intermediate's CRL
	spec    CardSpec
}

// defaultCards is the card set Generate issues. The EDIPIs are made up. Each
// card covers one case a CAC gateway must get right; the names are stable
// because tests and the demo refer to them.
func defaultCards(now time.Time, validity time.Duration) []defaultCard {
	notBefore, notAfter := now.Add(-defaultCardBackdate), now.Add(validity)
	card := func(spec CardSpec) defaultCard {
		spec.NotBefore, spec.NotAfter = notBefore, notAfter
		return defaultCard{spec: spec}
	}
	expired := card(CardSpec{
		Name: "expired.edward", Description: "expired card: NotAfter is in the past",
		Family: "EXPIRED", Given: "EDWARD", EDIPI: "1234567893",
	})
	expired.spec.NotBefore, expired.spec.NotAfter = now.Add(-3*year-24*time.Hour), now.Add(-24*time.Hour)
	rogue := card(CardSpec{
		Name: "rogue.john.quincy", Description: "forged card: John Doe's name and DoD ID, issued by the look-alike rogue CA",
		Family: "DOE", Given: "JOHN", Middle: "QUINCY", EDIPI: "1234567890",
	})
	rogue.rogue = true
	revoked := card(CardSpec{
		Name: "revoked.ronald", Description: "revoked card: listed on the intermediate's CRL (key compromise)",
		Family: "REVOKED", Given: "RONALD", EDIPI: "1234567899", Affiliation: "USA",
	})
	revoked.revoked = true

	return []defaultCard{
		card(CardSpec{
			Name: "doe.john.quincy", Description: "standard card: LAST.FIRST.MIDDLE.EDIPI, Army",
			Family: "DOE", Given: "JOHN", Middle: "QUINCY", EDIPI: "1234567890",
		}),
		card(CardSpec{
			Name: "doe.john.quincy.piv", Description: "second certificate for the same EDIPI: PIV authentication style, 16-digit UPN and card UUID",
			Family: "DOE", Given: "JOHN", Middle: "QUINCY", EDIPI: "1234567890",
			UPN: "1234567890123456@mil", UUID: pivCardUUID,
		}),
		card(CardSpec{
			Name: "smith.jane", Description: "no middle name: LAST.FIRST.EDIPI, Navy",
			Family: "SMITH", Given: "JANE", EDIPI: "1234567891", Affiliation: "USN",
		}),
		card(CardSpec{
			Name: "johnson.robert.e.jr", Description: "generational suffix: LAST.FIRST.MIDDLE.SUFFIX.EDIPI, Marine Corps",
			Family: "JOHNSON", Given: "ROBERT", Middle: "E", Suffix: "JR", EDIPI: "1234567892", Affiliation: "USMC",
		}),
		card(CardSpec{
			Name: "obrien-smith.mary.ann.k", Description: "apostrophe, hyphen and space in names, contractor, RSA key",
			Family: "O'BRIEN-SMITH", Given: "MARY ANN", Middle: "K", EDIPI: "1234567895", Affiliation: "CONTRACTOR",
			RSA: true,
		}),
		card(CardSpec{
			Name: "garcia.luis.a", Description: "spare valid card with a middle initial, Air Force",
			Family: "GARCIA", Given: "LUIS", Middle: "A", EDIPI: "1234567896", Affiliation: "USAF",
		}),
		expired,
		card(CardSpec{
			Name: "noeku.nancy", Description: "wrong key usage: emailProtection only, no clientAuth or smart card logon",
			Family: "NOEKU", Given: "NANCY", EDIPI: "1234567894",
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, NoSmartcardLogon: true,
		}),
		rogue,
		revoked,
	}
}
