package cacid

// Error is returned for every certificate Parse, ParseCommonName or UPNs
// refuses. Reason is plain English meant for the card holder: it never
// contains raw bytes from the certificate, only values that already passed
// validation, so it is safe to put on an error page (after the usual HTML
// escaping).
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "cacid: " + e.Reason }

func reject(reason string) *Error { return &Error{Reason: reason} }
