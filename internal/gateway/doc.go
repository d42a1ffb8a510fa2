// Package gateway is cacgate's core, without Caddy: given a request's
// verified TLS state (or a password-signed-in user) and the time, it
// decides whether the request is admitted, with which identity and
// account, or refused, and why.
//
// It owns what that decision needs and nothing else:
//
//   - the card cache (card fingerprint → revocation verdict of the chain +
//     account + the identity values the backend gets), its invalidation
//     by local changes (an epoch) and by changes announced by other nodes
//     through the store's change feed (coherence.go);
//   - link_by_edipi, which registers a new card to the account holding its
//     DoD ID on first use;
//   - each site's view of a certificate (trust policy verdict, chain,
//     access decision, signed assertion), cached per site.
//
// The Caddy glue (package caddymodule) turns a Decision into a page, a JSON
// error or the next handler; the self-service web layer and other front
// ends (a console, an OpenID provider) ask the same Site for decisions.
//
// # Caches
//
// Two levels, both bounded; entries carry their own expiry, read with the
// request's clock, so no cache runs a timer:
//
//   - Core.cards, golang-lru/v2's plain LRU shared by every site: the
//     account side, the expensive part (database round trip, revocation
//     check), rebuilt after cache_ttl (or the revocation verdict's end, if
//     sooner), a local change, or a change announced by another node.
//     Concurrent misses for one card share one build (singleflight).
//   - Site.certs, a CLOCK cache per site (certcache.go): the certificate
//     side (parse, trust policy, pool verification) and the site's access
//     decision and signed assertion, aged by the request's clock so the
//     hot path reads the time once. It is what every request looks up, so
//     it is built for many cards taking turns: a lookup touches few cache
//     lines and a hit writes nothing shared. (Password users' entries are
//     in an LRU of their own, Site.users.)
//
// Revocation verdicts are cached by package revocation itself; consent
// tokens by package consent.
package gateway
