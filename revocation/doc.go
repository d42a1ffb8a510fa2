// Package revocation tells whether a verified client certificate has been
// revoked, by OCSP and by CRL, without putting network I/O or parsing on the
// request path.
//
// Caddy's client_auth verifies the chain but never checks revocation, so a
// revoked CAC keeps working until it expires. A Checker closes that gap:
//
//   - OCSP responses are fetched on demand, validated (signature by the
//     issuing CA or by a responder certificate it delegated with the
//     OCSP-signing usage, matching CertID, thisUpdate/nextUpdate, optional
//     nonce) and cached until their nextUpdate, bounded by MaxCacheAge. A
//     response without nextUpdate is refused once its thisUpdate is more than
//     five minutes plus the clock skew old, so a captured one cannot be
//     replayed.
//     Concurrent checks of one certificate share one request, and failures
//     are remembered briefly so a dead responder is not hammered.
//   - CRLs, from files and optionally from the certificates' distribution
//     points, are parsed once in the background into a compact index sorted
//     by serial number. DoD CRLs hold hundreds of thousands of entries, so the
//     index keeps only the serial bytes, the revocation time and the reason
//     (about 30 bytes an entry) instead of crypto/x509's per-entry objects.
//     A CRL older (earlier thisUpdate, or lower CRL number) than the CRL of
//     the same CA and scope it would replace in a file or distribution point
//     is refused, so a replayed CRL cannot un-revoke certificates. CRLs
//     limited to user certificates (onlyContainsUserCerts) are not used for
//     CA certificates, and those limited to CA certificates
//     (onlyContainsCACerts, authority revocation lists) only for them.
//
// Check then costs a cache lookup or a binary search. CheckChain, what a
// gateway calls for every new client certificate, checks a whole verified
// chain (the card and, with Config.Intermediates, its CA certificates) and
// keeps each certificate's verdict, so that a certificate seen before costs
// a fingerprint and one cache lookup per certificate checked, whatever the
// sources and the failure policy decided.
//
// # Caches
//
// One cache library per kind of cache: a bounded LRU where clients add
// entries at will (github.com/hashicorp/golang-lru/v2), a TTL map where
// every entry has a lifetime of its own and costs a responder round trip
// (github.com/patrickmn/go-cache).
//
//   - Verdicts (CheckChain): the final verdict per certificate, keyed by
//     its fingerprint (cacid.Fingerprint), reused until its ValidUntil; a
//     bounded LRU (golang-lru) of CacheSize entries, each kept until its
//     ValidUntil but no longer than MaxCacheAge after it was stored (read
//     on lookup, so the cache runs no timer). Bounded
//     because every certificate a client presents adds an entry, at the
//     cost of a handshake: millions of cards chain to the DoD roots, and a
//     certificate whose issuer is unknown is cached too (unavailable, for
//     the retry interval).
//   - OCSP responses and OCSP failures (Check): OCSP's answer per
//     certificate, keyed by issuing CA and serial number, kept until the
//     response's nextUpdate (at most MaxCacheAge), a failure for the retry
//     interval; go-cache TTL maps, whose janitor drops expired entries
//     every minute. They need a lifetime per entry, and every entry cost a
//     responder round trip (at most 32 run at a time) for a certificate
//     given with its verified issuer, so they grow no faster than the
//     responder answers and empty themselves within MaxCacheAge.
//
// The OCSP caches are not merged into the verdict cache: that would change
// when responders are asked. They belong to Check, which callers may use
// without CheckChain, and hold OCSP's answer alone: a failing responder is
// not asked about a certificate again for the retry interval while the
// CRL answers in its place, and a CRL loaded or refreshed meanwhile is
// searched by the next Check at once. The verdict cache holds what all
// sources and the failure policy made of a certificate, for CheckChain,
// and evicts the least recently used certificate when full, which the OCSP
// caches never do. CRLs are not cached: each is parsed once into an index
// that Check searches.
//
// # Failure policy
//
// When neither source yields a trustworthy answer the verdict is
// StatusUnavailable: the caller must refuse the certificate. Config.FailOpen
// turns that into StatusGood with Verdict.FailedOpen set, for sites that
// prefer availability to the revocation guarantee. Unavailable and fail-open
// verdicts are valid for a short retry interval only.
//
// A CRL past its nextUpdate (plus the clock-skew allowance) that cannot be
// refreshed gives no verdict for serials it does not list; a serial it does
// list is still reported revoked, because revocation is permanent (RFC 5280
// section 3.3), except for certificateHold, which may since have been lifted.
//
// # Not supported
//
//   - Delta CRLs (deltaCRLIndicator) are rejected; only complete CRLs are used.
//   - Indirect CRLs (issuingDistributionPoint indirectCRL, or entries naming a
//     certificateIssuer) are rejected: a CRL is only used for certificates of
//     the CA that signed it.
//   - CRLs limited to some revocation reasons (onlySomeReasons) or to
//     attribute certificates are rejected, since they cannot clear a
//     certificate.
//   - CRLs or CRL entries with any other critical extension are rejected.
//   - SHA-1 signatures on CRLs are refused, like crypto/x509 refuses them.
//   - OCSP responses signed by a locally configured trusted responder that
//     the issuing CA did not certify are refused.
//   - LDAP distribution points are ignored; only http and https are fetched.
package revocation
