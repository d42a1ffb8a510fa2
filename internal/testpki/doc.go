// Package testpki generates a throwaway DoD-style PKI for tests and demos:
// a root and an issuing CA named like the DoD's, a look-alike "rogue" pair
// with identical names but different keys, a localhost server certificate
// and a set of CAC authentication certificates covering the edge cases
// cacgate has to handle (suffixes, missing middle names, PIV UPNs, expired
// and wrong-usage cards, forged issuers).
//
// Card certificates follow the real CAC layout: the subject
// C=US, O=U.S. Government, OU=DoD, OU=PKI, OU=<affiliation>,
// CN=LAST.FIRST.MIDDLE.EDIPI with every attribute in its own RDN, a critical
// digitalSignature key usage, clientAuth plus smart card logon extended key
// usages, the DoD mediumHardware-112 and FPKI common-authentication policies,
// and a UPN otherName in the subject alternative names.
//
// Everything here is for testing only. WriteDir writes private keys next to
// the certificates, and the demo set is committed to the repository, so no
// certificate from this package must ever be trusted outside a test.
package testpki
