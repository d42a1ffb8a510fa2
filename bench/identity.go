package main

import (
	"net/http"
	"time"

	"github.com/cacgate/cacgate/assertion"
)

// identityHeaders are the headers cacgate hands the backend for card 0, as
// it would write them (the same names and value sizes, the assertion signed
// the same way): the eight it sends by default, and with withAssertion the
// signed assertion too. The b-hdr scenarios have the client send them to
// bare Caddy, which forwards them: that isolates what forwarding them
// costs Caddy from what the gateway's own work costs.
func identityHeaders(c *benchCard, withAssertion bool) (http.Header, error) {
	key, err := assertion.GenerateKey()
	if err != nil {
		return nil, err
	}
	signer, err := assertion.NewSigner(key)
	if err != nil {
		return nil, err
	}
	claims := assertion.Claims{
		Username: benchUsername(0), EDIPI: c.edipi, GivenName: "Tester", FamilyName: "Load",
		Email: "load.tester@mail.mil", Affiliation: "USA", CertSHA256: c.fingerprint, AuthMethod: "cac",
	}
	tok, err := signer.Sign(claims, "localhost", time.Now(), 5*time.Minute)
	if err != nil {
		return nil, err
	}
	h := http.Header{
		"X-Remote-User":     {claims.Username},
		"X-Cac-Edipi":       {claims.EDIPI},
		"X-Cac-Given-Name":  {claims.GivenName},
		"X-Cac-Family-Name": {claims.FamilyName},
		"X-Cac-Email":       {claims.Email},
		"X-Cac-Affiliation": {claims.Affiliation},
		"X-Cac-Cert-Sha256": {claims.CertSHA256},
		"X-Cac-Auth-Method": {claims.AuthMethod},
	}
	if withAssertion {
		h["X-Cac-Assertion"] = []string{tok}
	}
	return h, nil
}
