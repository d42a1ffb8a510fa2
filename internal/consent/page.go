package consent

import "embed"

// Templates holds the banner page; parse it with ui.ParsePage(Templates,
// "templates/consent.html").
//
//go:embed templates/*.html
var Templates embed.FS

// Path is where the gateway serves the banner and accepts the "I Accept" form.
const Path = "/.cacgate/consent"

// PageData is what the banner page needs.
type PageData struct {
	Banner  Banner
	CSRF    string // from Tokens.CSRF
	Next    string // already passed through SafeNext
	Holder  string // the card holder's display name, e.g. "John Q. Doe"
	Subject string // certificate subject, shown so the person can check which card they used
}
