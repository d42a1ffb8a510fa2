// Package roster validates a card holder's identity against an
// authoritative personnel roster before self-enrollment issues an account,
// the way AKO and DKO checked new users against DMDC's records.
//
// The card's EDIPI (10-digit DoD ID) selects the roster's records of that
// person; the card holder proves they are that person by typing their
// Social Security Number, or Foreign Identification Number (FIN) if they
// have no SSN, their date of birth, and, where the roster asks for it,
// their pay entry base date (PEBD). Two sources implement Source: CSV, a
// file exported by ops and reloaded when it changes, and HTTP, a service
// that answers for a roster the gateway never holds.
//
// # Keys of non-DoD credentials
//
// A roster may also list people by the key of a non-DoD credential: the
// card UUID of a federal PIV or PIV-I card, or the e-mail address of an
// ECA certificate (KeyKind). A Claim then carries that key in place of the
// EDIPI, exactly one key per claim, and is matched as an EDIPI's is: the
// same facts, the same constant-time comparison, the same single
// Result{Match: false} for every miss. KeyedSource.Lookup tells the form,
// before anything is typed, whether the roster may hold records of a key:
// the CSV source answers from its file; the HTTP source answers yes for
// the keys it was configured with (HTTPConfig.Keys) and is never sent
// another, and its service may answer "known":false (Result.NoRecord)
// when it holds none. Only the verified holder of a credential asks about
// its key.
//
// # Secrets
//
// SSN, FIN, DOB and PEBD are used for the comparison only. They are never
// logged, never put in an error (errors name fields and lines, not
// values), never returned (Record has no field for them), and kept only
// as long as a verification runs, in fixed buffers that are wiped after
// use. Strings the caller passes in are the caller's to drop; Go cannot
// erase a string.
//
// The CSV source keeps, per record, an HMAC-SHA-256 of each normalized
// secret under a random key drawn at each load and held only in memory,
// and erases the file's bytes once parsed. A heap dump shows no SSNs, and
// the digests cannot be tested against guesses without the key. Claims
// are digested with the same key and compared with crypto/subtle.
//
// The HTTP source sends the normalized values in the request body (and
// nowhere else: not in the URL, not in headers), erases its copy when the
// transport is done with it, refuses plain http except to loopback hosts,
// and never follows redirects.
//
// # Normalization
//
// Values are compared in canonical form, so "123-45-6789" and "123456789"
// are the same SSN:
//
//   - SSN: blanks around it, and dashes and spaces in it, are dropped; what
//     is left must be 9 digits that the SSA could have issued (not area
//     000, 666 or 900-999, group 00 or serial 0000).
//   - FIN: dashes and spaces are dropped and letters upper-cased; what is
//     left must be 1 to 12 ASCII letters and digits. DEERS-assigned FINs are
//     digits, but host-nation and coalition numbers carry letters, so the
//     form accepts both and the roster, which holds the real values,
//     decides.
//   - Dates: exactly YYYY-MM-DD naming a real calendar day. A typed DOB or
//     PEBD must lie from 1900-01-01 to today.
//
// # Matching
//
// A record matches when its SSN (or FIN, whichever the claim gives) and
// DOB equal the claim's, and its PEBD too when the record has one; a
// record without a PEBD ignores the claim's. So the holder of a dual
// account whose military record has a PEBD and whose civilian record has
// none gets both by typing the PEBD. But when the claim's identifier and
// DOB fit a record whose PEBD it then fails, nothing matches: the other
// records would otherwise be issued on two factors where the roster asked
// for three.
//
// Every answer that is not a match is the same Result{Match: false}: an
// unknown EDIPI, a wrong SSN, a wrong DOB and a wrong or missing PEBD are
// indistinguishable. Every record of the EDIPI is compared in full, each
// value in constant time, so the time taken does not tell which value was
// wrong either.
//
// # Asking for the PEBD
//
// NeedsPEBD tells the form whether to ask for the PEBD, and whether it must
// be given. The CSV source requires it (PEBDRequired) when a record of the
// EDIPI has one, so sites that do not want the PEBD leave the column empty.
// For an EDIPI it does not know it does not ask (PEBDNotAsked), as for a
// record without a PEBD. That lets a card holder
// learn whether the roster holds a PEBD for their own EDIPI; only the
// holder of a verified card can ask, so this reveals a person's roster
// record to that person alone, and the alternative (asking everybody) would
// make people without a PEBD type a date that can never match. The HTTP
// source always answers PEBDOptional: the form asks for the PEBD "if you
// have one" and accepts an empty field; the service alone knows whether the
// record has one, and decides.
package roster
