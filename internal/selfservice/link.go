package selfservice

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/ui"
)

// AccountManager is the slice of store.Store the link page and the account
// pages need.
type AccountManager interface {
	AccountByUsername(ctx context.Context, username string) (*store.Account, error)
	Credentials(ctx context.Context, accountID int64) (*store.Credentials, error)
	LinkCard(ctx context.Context, accountID int64, c store.Card) error
	UnlinkCard(ctx context.Context, username, fingerprint string) error
	SetPassword(ctx context.Context, accountID int64, hash string, keepHistory int) error
	RehashPassword(ctx context.Context, accountID int64, old, new string) (bool, error)
	SetAnswers(ctx context.Context, accountID int64, answers [3]store.Answer) error
	TakeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (store.LoginState, bool, error)
	ReleaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (time.Time, error)
	ResetLoginFailures(ctx context.Context, accountID int64) error
}

// Limits of the link and account pages' forms.
const (
	defaultMaxCards = 5
	maxUsernameLen  = 64
	maxPasswordLen  = 256
)

// dummyHash is a hash of a random secret, verified against when there is
// no real hash to verify (an unknown username, an account without a
// password), so the response takes as long as for a real account. It is
// made on first use with the hasher's current parameters.
type dummyHash struct {
	once sync.Once
	hash string
	err  error
}

func (d *dummyHash) get(ctx context.Context, h *credential.Hasher) (string, error) {
	d.once.Do(func() {
		d.hash, d.err = h.Hash(ctx, rand.Text())
	})
	return d.hash, d.err
}

// checkPassword verifies password against hash, the stored hash of acct
// (nil for an unknown username; hash "" for an account without a
// password, which never matches). The attempt is counted against acct as a
// failure before the password is verified, atomically: a locked account
// is refused without verifying, and concurrent attempts cannot get past
// the limit. A correct password takes its attempt back, clearing the
// count, unless other attempts locked the account meanwhile. An error
// while verifying leaves the attempt counted. With rehash, a correct
// password whose hash was made with other parameters than the hasher's is
// stored again with them (see rehash); callers about to replace the
// password pass false.
func (f *Flow) checkPassword(ctx context.Context, acct *store.Account, hash, password string, rehash bool) (LoginResult, error) {
	verify := func(ctx context.Context) (bool, error) {
		if hash == "" {
			dummy, err := f.dummy.get(ctx, f.deps.Hasher)
			if err != nil {
				return false, fmt.Errorf("enroll: dummy hash: %w", err)
			}
			if _, err := f.deps.Hasher.Verify(ctx, password, dummy); err != nil {
				return false, fmt.Errorf("enroll: verifying password: %w", err)
			}
			return false, nil
		}
		ok, err := f.deps.Hasher.Verify(ctx, password, hash)
		if err != nil {
			return false, fmt.Errorf("enroll: verifying password: %w", err)
		}
		return ok, nil
	}
	if acct == nil {
		_, err := verify(ctx)
		return LoginResult{}, err
	}
	res, err := f.guard.Account(ctx, acct, verify)
	if err != nil || !res.OK {
		return res, err
	}
	if rehash {
		f.rehash(ctx, acct.ID, hash, password)
	}
	return res, nil
}

// rehash replaces a correct password's stored hash by one made with the
// hasher's current algorithm and parameters when they differ (a site that
// moved to password_hash pbkdf2, or raised the cost): the password is at
// hand only now. It costs this one sign-in a second hash. A failure
// changes nothing for the sign-in, which has succeeded; the next one tries
// again.
func (f *Flow) rehash(ctx context.Context, accountID int64, stored, password string) {
	if !credential.NeedsRehash(stored, f.deps.Hasher.Params()) {
		return
	}
	fresh, err := f.deps.Hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	_, _ = f.deps.Accounts.RehashPassword(ctx, accountID, stored, fresh)
}

// wrongPassword is the message for a password that did not verify.
func wrongPassword(lead string, st store.LoginState, known bool) string {
	if !known {
		return lead
	}
	switch st.Remaining {
	case 1:
		return lead + " You have 1 try remaining before the account is locked."
	default:
		return lead + " You have " + strconv.Itoa(st.Remaining) + " tries remaining before the account is locked."
	}
}

type lockedPage struct {
	pageBase
	Until string
}

// renderLocked answers for a locked account.
func (f *Flow) renderLocked(w http.ResponseWriter, card Card, csrf CSRF, st store.LoginState) error {
	return f.render(w, http.StatusForbidden, "locked", lockedPage{pageBase: f.base(card, csrf), Until: formatTime(st.LockedUntil)})
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ---- "I already have an account: register this card" ----

type linkPage struct {
	pageBase
	Username string
}

type linkedPage struct {
	pageBase
	Username string
	Pending  bool
}

func (f *Flow) serveLink(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	if f.deps.Accounts == nil {
		return errors.New("enroll: no account manager for the link page")
	}
	if r.Method != http.MethodPost {
		return f.render(w, http.StatusOK, "link", linkPage{pageBase: f.base(card, csrf)})
	}
	if ok, err := f.readForm(w, r, csrf, "Go back to the registration page, reload it and try again."); !ok {
		return err
	}
	return f.postLink(w, r, card, csrf)
}

func (f *Flow) postLink(w http.ResponseWriter, r *http.Request, card Card, csrf CSRF) error {
	ctx := r.Context()
	now := f.deps.Now()
	limit := linkLimit(card)
	if err := f.guard.Check(ctx, limit); err != nil {
		return f.linkLimited(w, r, card, err)
	}
	form := r.PostForm
	// Usernames are stored lowercase; look up what was typed as sign-in
	// does.
	page := linkPage{pageBase: f.base(card, csrf), Username: strings.ToLower(strings.TrimSpace(form.Get("username")))}
	password := form.Get("password")
	switch {
	case page.Username == "":
		page.Errors.add("username", "Enter your username.")
	case len(page.Username) > maxUsernameLen || !isCleanText(page.Username):
		page.Errors.add("username", "Enter a username of at most 64 characters.")
	}
	switch {
	case password == "":
		page.Errors.add("password", "Enter your password.")
	case len(password) > maxPasswordLen:
		page.Errors.add("password", "Enter a password of at most 256 characters.")
	}
	if page.Errors.any() {
		return f.render(w, http.StatusUnprocessableEntity, "link", page)
	}
	acct, err := f.deps.Accounts.AccountByUsername(ctx, page.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		acct = nil
	case err != nil:
		return fmt.Errorf("enroll: looking up account: %w", err)
	}
	hash := ""
	if acct != nil {
		creds, err := f.deps.Accounts.Credentials(ctx, acct.ID)
		if err != nil {
			return fmt.Errorf("enroll: reading credentials: %w", err)
		}
		hash = creds.PasswordHash
	}
	// Only a wrong password counts against the card. If the count
	// cannot be given back, the right password is not acted on: no card
	// is linked on a count that cannot be trusted.
	var res LoginResult
	_, err = f.guard.Try(ctx, limit, func(ctx context.Context) (bool, error) {
		var err error
		res, err = f.checkPassword(ctx, acct, hash, password, true)
		return res.OK, err
	})
	password = ""
	switch {
	case errors.Is(err, ErrLimited), errors.Is(err, ErrUnavailable):
		return f.linkLimited(w, r, card, err)
	case err != nil:
		return err
	}
	if res.State.Locked() {
		f.audit(r, card, "card.linked", "failure", map[string]string{"via": "holder", "username": acct.Username, "reason": "locked"})
		return f.renderLocked(w, card, csrf, res.State)
	}
	if !res.OK {
		extra := map[string]string{"via": "holder", "reason": "bad_password"}
		if acct != nil {
			extra["username"] = acct.Username
		} else {
			// The typed username is not recorded: it may be a
			// password typed in the wrong field.
			extra["reason"] = "unknown_username"
		}
		f.audit(r, card, "card.linked", "failure", extra)
		page.Errors.add("", wrongPassword("The username or password is not correct.", res.State, acct != nil))
		return f.render(w, http.StatusUnprocessableEntity, "link", page)
	}
	refuse := func(status int, code, reason, title, detail string) error {
		f.audit(r, card, "card.linked", "failure", map[string]string{"via": "holder", "username": acct.Username, "reason": reason})
		return ui.WriteProblem(w, r, ui.Problem{Status: status, Code: code, Title: title, Detail: detail,
			Steps: []string{"If you think this is a mistake, contact the site's administrators."}, Contact: f.cfg.Contact})
	}
	expires, expired := f.passwordExpiry(acct, now)
	switch {
	case expired:
		return refuse(http.StatusForbidden, "password_expired", "password_expired", "Password expired",
			expiredSentence(expires)+" Reset it with your security questions (\"Forgot your password?\" on the registration page), then register this card. The card was not registered.")
	case acct.Status == store.StatusDisabled:
		return refuse(http.StatusForbidden, "account_disabled", "disabled", "Account disabled",
			"The account "+acct.Username+" is disabled, so no card can be registered to it. The card was not registered.")
	case acct.EDIPI != card.Identity.EDIPI:
		return refuse(http.StatusForbidden, "edipi_mismatch", "edipi_mismatch", "This card belongs to someone else",
			"This card belongs to a different DoD ID than the account "+acct.Username+". A card can only be registered to its holder's own account. The card was not registered.")
	case len(acct.Cards) >= f.cfg.MaxCards:
		return refuse(http.StatusConflict, "too_many_cards", "too_many_cards", "Too many cards registered",
			fmt.Sprintf("The account %s already has %d cards registered, the most allowed. Sign in with one of them and clear the registration of a card you no longer use, then register this one.", acct.Username, len(acct.Cards)))
	}
	err = f.deps.Accounts.LinkCard(ctx, acct.ID, store.Card{Fingerprint: card.Identity.FingerprintHex, Subject: card.Subject,
		Issuer: card.Issuer, Serial: card.Serial, NotAfter: card.NotAfter})
	switch {
	case errors.Is(err, store.ErrCardTaken):
		return refuse(http.StatusConflict, "card_taken", "card_taken", "Card already registered",
			"This card is already registered to an account. A card can be registered to one account only.")
	case errors.Is(err, store.ErrNotFound):
		return refuse(http.StatusConflict, "account_gone", "account_gone", "Account not found",
			"The account was removed while the card was being registered. The card was not registered.")
	case err != nil:
		return fmt.Errorf("enroll: linking card: %w", err)
	}
	f.audit(r, card, "card.linked", "success", map[string]string{"via": "holder", "username": acct.Username})
	f.deps.OnChange()
	return f.render(w, http.StatusOK, "linked", linkedPage{pageBase: f.base(card, csrf), Username: acct.Username,
		Pending: acct.Status == store.StatusPending})
}

// linkLimited answers a link attempt the guard refused (ErrLimited or
// ErrUnavailable).
func (f *Flow) linkLimited(w http.ResponseWriter, r *http.Request, card Card, err error) error {
	if !errors.Is(err, ErrLimited) {
		f.audit(r, card, "card.linked", "unavailable", map[string]string{"via": "holder", "reason": throttleUnavailableReason})
		return f.throttleUnavailable(w, r, "The card was not registered.")
	}
	f.audit(r, card, "card.linked", "limited", map[string]string{"via": "holder"})
	w.Header().Set("Retry-After", strconv.Itoa(int(failureWindow/time.Second)))
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusTooManyRequests, Code: "too_many_attempts",
		Title: "Too many attempts", Detail: "A wrong username or password was entered with this card too many times.",
		Steps:   []string{"Wait 15 minutes before trying again.", "If you have forgotten your password, use the password reset, or contact the help desk."},
		Contact: f.cfg.Contact})
}
