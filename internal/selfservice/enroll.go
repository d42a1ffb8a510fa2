// Package enroll holds the pages a card holder sees when their card is not
// yet registered to an account. Today that is a page that says so, shows
// the card's facts, and names whom to contact; the self-enrollment flow
// (identity validated against a personnel roster) builds on it.
package selfservice

import "embed"

// Path is where the gateway sends cards that have no account.
const Path = "/.cacgate/enroll"

// Templates holds the enrollment pages, for ui.ParsePage.
//
//go:embed templates/*.html
var Templates embed.FS

// NotRegisteredData is what the not-registered page shows.
type NotRegisteredData struct {
	Holder  string // display name from the card
	EDIPI   string // the card's DoD ID, which an administrator needs
	Subject string
	Issuer  string
	Contact string // the site's contact option
	// HasAccount is true when an account with this DoD ID exists but the
	// card could not be linked to it automatically.
	HasAccount bool
}
