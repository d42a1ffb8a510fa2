// Package cacid reads the identity of a DoD Common Access Card (CAC) holder
// out of the card's authentication certificate.
//
// A CAC authentication certificate names its holder in two places: the
// subject common name, LAST.FIRST[.MIDDLE][.SUFFIX].EDIPI, and an otherName
// User Principal Name in the subject alternative names, EDIPI@mil (or a
// 16-digit value that starts with the EDIPI on PIV authentication
// certificates). The EDIPI, the 10-digit DoD ID number, is the stable key for
// a person; everything else is descriptive.
//
// Parse is strict on purpose: it runs on certificates presented by strangers,
// so anything that does not look like a well-formed card is rejected with an
// *Error whose Reason can be shown to the card holder. Parse extracts
// identity only; chain, validity, key usage and policy checks belong to the
// caller's certificate verification, which should run before Parse.
package cacid
