// Package admin is cacgate's account administration: listing and searching
// accounts, showing one, creating, approving, disabling, enabling and
// unlocking them, putting them in groups, linking and unlinking their
// cards, and importing and exporting them as CSV. It does not import Caddy.
//
// Its callers are thin front ends over one Service:
//
//   - the admin API (caddymodule's admin.api.cacgate module), which decodes
//     a request, calls the running app's Service, and answers with the
//     result or with the status and message of the Service's *Error;
//   - the CLI (`caddy cacgate accounts ...`), whose commands call a Backend:
//     the Service itself, on the database the config names (direct mode),
//     or a Client of a running server's admin API (API mode), so both
//     modes share one implementation and give the same answers;
//   - a future help-desk console, which would call the Service the same
//     way.
//
// The rule of the audit trail: every change, and every refused or failed
// attempt at one, writes exactly one audit event (admin.account.created,
// admin.card.linked, admin.import, ...) naming the Actor who asked (the
// admin API client's certificate subject or "local", or
// "cli:<user>@<host>") and where from, with the account's identifiers and,
// on failure, a short reason code, never the error text or any input that
// failed validation. Reads (Search, Show, Groups) are not audited; an
// export is, as it hands out every account.
//
// A change takes effect at once on the node that made it: the Service calls
// its Invalidate hook after every successful change, which the gateway sets
// to drop its cached card mappings. Other nodes learn of it from the
// store's change feed, or within their cache_ttl.
package admin
