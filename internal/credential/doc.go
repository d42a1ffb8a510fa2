// Package credential holds the rules and the cryptography for the secrets a
// person sets when they enroll: a password, for signing in without a card
// and for linking a new card, and three security questions, for proving who
// they are when the password is lost.
//
// The rules follow the DoD portals people already know (Defense Connect
// Online, AKO/DKO self-registration): passwords of 15 to 20 characters mixing
// upper- and lowercase letters and a special character, that contain neither
// the username nor the person's names ([PasswordPolicy]); three different
// security questions whose answers are letters, digits and spaces, compared
// without regard to case or spacing ([CheckQuestions], [NormalizeAnswer]).
// Every check returns sentences for the enrollment form and never repeats
// the secret it judged.
//
// Secrets are stored only as argon2id hashes (or, where an assessor
// requires a NIST-approved KDF, PBKDF2-HMAC-SHA-512: [PBKDF2SHA512]) in the
// PHC string format, so the algorithm and cost parameters travel with each
// hash and can be changed later without invalidating what is stored: a
// Hasher verifies either kind ([NeedsRehash]). Hashing deliberately costs
// tens of megabytes and a core for tens of milliseconds, so a [Hasher] runs
// a bounded number of hashes at once: a flood of sign-in or enrollment
// requests queues behind that bound instead of taking the memory and CPU
// the proxy needs. The queue has two lines ([Priority]): people signing in
// are served before enrollment's hashes, and each line is bounded in
// length and wait ([Queue]), a hash past either failing at once with
// [ErrBusy] rather than making everyone behind it wait longer.
//
// The package never logs, and no error it returns contains a password, an
// answer or a stored hash.
package credential
