package selfservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
)

// Guard is the one attempt guard every check of a secret in self-service
// runs through: roster facts (enrollment), a password (registering a card,
// password sign-in, the account pages) and security answers (reset). It
// keeps three kinds of count, all in the account database so that they
// hold across every gateway node (each node counting on its own would give
// a card, or a stolen card, each node's allowance):
//
//   - per card and flow (Limit): five failures in 15 minutes, then "too
//     many attempts";
//   - per account (the store's login state): three wrong secrets in 15
//     minutes lock the account for the lockout period; a username that
//     cannot be reset counts the same way under a decoy key, so its page
//     counts down and locks like a real account's;
//   - per client address (attempts_per_ip): a bound on one client cycling
//     through cards or usernames, across flows.
//
// Counts are taken before the secret is verified (so that however many
// requests race, at most the limit are verified), and given back when the
// secret proved right: only failures count. A count that cannot be read
// or written refuses the attempt (ErrUnavailable), counting nothing and
// changing nothing: a limit that cannot be checked must not let attempts
// through. So does an account's lock that cannot be read or written.
type Guard struct {
	counts store.Throttler
	locks  LoginLocker
	now    func() time.Time
	// lockout is how long a locked account (or decoy) stays locked.
	lockout time.Duration
	// perAddress is attempts_per_ip.
	perAddress int
}

// LoginLocker is the store's per-account count of wrong secrets.
type LoginLocker interface {
	TakeLoginAttempt(ctx context.Context, accountID int64, now time.Time, window time.Duration, maxFailures int, lockFor time.Duration) (store.LoginState, bool, error)
	ReleaseLoginAttempt(ctx context.Context, accountID int64, now, ownLock time.Time) (time.Time, error)
	ReturnLoginAttempt(ctx context.Context, accountID int64, ownLock time.Time) error
}

// Errors of the guard.
var (
	// ErrLimited means the card (or address) has used up its attempts.
	ErrLimited = errors.New("selfservice: too many attempts")
	// ErrUnavailable means the account database cannot be read or
	// written: the attempt counts (the guard), or the accounts themselves.
	// The request is refused (the Unavailable outcome) and nothing was
	// changed.
	ErrUnavailable = errors.New("selfservice: account database unavailable")
)

// unavailable wraps a count failure so that it matches ErrUnavailable and
// still carries the cause.
type unavailable struct{ err error }

func (e unavailable) Error() string {
	return "selfservice: attempt counts unavailable: " + e.err.Error()
}
func (e unavailable) Is(target error) bool { return target == ErrUnavailable }
func (e unavailable) Unwrap() error        { return e.err }

// storeDown wraps a failure to read or write an account (not a count), so
// that it matches ErrUnavailable and still carries the cause.
type storeDown struct{ err error }

func (e storeDown) Error() string        { return "selfservice: " + e.err.Error() }
func (e storeDown) Is(target error) bool { return target == ErrUnavailable }
func (e storeDown) Unwrap() error        { return e.err }

// accountsFailed wraps an error of the account store (what it was doing:
// "looking up account") as a storeDown. The store's answers about the
// request (ErrNotFound, a taken card …) are handled before, where they
// mean something.
func accountsFailed(doing string, err error) error {
	return storeDown{fmt.Errorf("%s: %w", doing, err)}
}

// The guard's limits.
const (
	// Per card and flow: FailureWindow and MaxFailures.
	FailureWindow = 15 * time.Minute
	MaxFailures   = 5
	// Per account (and decoy): LoginWindow and LoginMaxFailures, then
	// locked for the lockout period.
	LoginWindow          = 15 * time.Minute
	LoginMaxFailures     = 3
	defaultLockoutPeriod = 30 * time.Minute
	// Per client address.
	AddressWindow          = 15 * time.Minute
	DefaultAttemptsPerAddr = 30
)

// MaxThrottleKeyLen is the longest key the guard counts under, before its
// namespace prefix.
const MaxThrottleKeyLen = 120

// ThrottleWindow is the longest window the guard counts attempts in: the
// store may forget counts whose window began longer ago.
const ThrottleWindow = max(FailureWindow, LoginWindow, AddressWindow)

// Namespaces of the guard's counters in the store's table of attempts. The
// names are those the counters had before the guard, so counts survive an
// upgrade.
const (
	cardPrefix    = "enroll:"
	addressPrefix = "ip:"
)

// refundTimeout bounds a refund, which runs even when the request that
// owes it was cancelled: otherwise a person who gives up on a slow page
// loses an attempt that never failed.
const refundTimeout = 5 * time.Second

// NewGuard returns a guard counting in counts and locking accounts in
// locks. perAddress <= 0 means DefaultAttemptsPerAddr; lockout <= 0 the
// default lockout period.
func NewGuard(counts store.Throttler, locks LoginLocker, perAddress int, lockout time.Duration, now func() time.Time) *Guard {
	if perAddress <= 0 {
		perAddress = DefaultAttemptsPerAddr
	}
	if lockout <= 0 {
		lockout = defaultLockoutPeriod
	}
	if now == nil {
		now = time.Now
	}
	keepLocks(lockout)
	return &Guard{counts: counts, locks: locks, now: now, lockout: lockout, perAddress: perAddress}
}

// Limit is a per-card count: Key names the flow and card.
type Limit struct {
	Key    string
	Window time.Duration
	Max    int
}

// The per-card limits of the flows. A card's fingerprint is lowercase hex.
func identityLimit(card *cacid.Identity) Limit { return cardLimit("identity:" + card.FingerprintHex) }
func linkLimit(card *cacid.Identity) Limit     { return cardLimit("link:" + card.FingerprintHex) }
func resetLimit(card *cacid.Identity) Limit    { return cardLimit("reset:" + card.FingerprintHex) }

func cardLimit(key string) Limit { return Limit{Key: key, Window: FailureWindow, Max: MaxFailures} }

// checkKey fails closed on a key longer than promised, which a card
// fingerprint of the wrong form would make: counting it under a shortened
// or rejected name would fail open, or not at all.
func checkKey(key string) error {
	if len(key) > MaxThrottleKeyLen {
		return unavailable{errors.New("key too long")}
	}
	return nil
}

// failures returns key's count in window and when the window began.
func (g *Guard) failures(ctx context.Context, key string, window time.Duration) (int, time.Time, error) {
	if err := checkKey(key); err != nil {
		return 0, time.Time{}, err
	}
	n, since, err := g.counts.Attempts(ctx, cardPrefix+key, g.now(), window)
	if err != nil {
		return 0, time.Time{}, unavailable{err}
	}
	return n, since, nil
}

// take counts an attempt for key in advance; false means none are left.
func (g *Guard) take(ctx context.Context, key string, window time.Duration, max int) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	ok, err := g.counts.TakeAttempt(ctx, cardPrefix+key, g.now(), window, max)
	if err != nil {
		return false, unavailable{err}
	}
	return ok, nil
}

// refund takes back an attempt counted by take.
func (g *Guard) refund(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundTimeout)
	defer cancel()
	if err := g.counts.RefundAttempt(ctx, cardPrefix+key); err != nil {
		return unavailable{err}
	}
	return nil
}

// Check reports whether l still allows an attempt, without counting one:
// nil, ErrLimited or ErrUnavailable. Flows ask before reading a form, so
// a card that used up its attempts is told so whatever it sends.
func (g *Guard) Check(ctx context.Context, l Limit) error {
	n, _, err := g.failures(ctx, l.Key, l.Window)
	switch {
	case err != nil:
		return err
	case n >= l.Max:
		return ErrLimited
	}
	return nil
}

// Try runs verify as one attempt against l: counted in advance, given back
// when verify reports success (or fails: an attempt that could not be
// checked did not fail). It returns verify's result, ErrLimited when l has
// no attempt left (verify is not run), or ErrUnavailable when the count
// could not be taken or given back: a success whose refund failed is not
// reported, so nothing is acted on over a count that cannot be trusted.
func (g *Guard) Try(ctx context.Context, l Limit, verify func(context.Context) (bool, error)) (bool, error) {
	allowed, err := g.take(ctx, l.Key, l.Window, l.Max)
	switch {
	case err != nil:
		return false, err
	case !allowed:
		return false, ErrLimited
	}
	ok, err := verify(ctx)
	if err != nil || ok {
		if rerr := g.refund(ctx, l.Key); rerr != nil && err == nil {
			return false, rerr
		}
	}
	return ok, err
}

// LoginResult is the outcome of a secret checked against an account's
// lock.
type LoginResult struct {
	OK    bool
	State store.LoginState // after the failure counted; Locked() if refused for a lock
}

// Account runs verify as one attempt on acct's secret, counted as a
// failure before verify runs, atomically (store.TakeLoginAttempt), so
// that a locked account is refused without verifying and concurrent
// attempts on any number of nodes cannot get past the limit. A success
// takes its attempt back, clearing the count with the lock that attempt
// set, if any; a lock that other attempts set meanwhile stays, and refuses
// this one too. An error while verifying leaves the attempt counted,
// except the hasher turning the check away (credential.ErrBusy): nothing
// was checked, so the attempt goes back (store.ReturnLoginAttempt), and a
// busy gateway never locks anyone out.
func (g *Guard) Account(ctx context.Context, acct *store.Account, verify func(context.Context) (bool, error)) (LoginResult, error) {
	st, allowed, err := g.locks.TakeLoginAttempt(ctx, acct.ID, g.now(), LoginWindow, LoginMaxFailures, g.lockout)
	if err != nil {
		return LoginResult{}, unavailable{fmt.Errorf("taking a sign-in attempt: %w", err)}
	}
	if !allowed {
		return LoginResult{State: st}, nil
	}
	ok, err := verify(ctx)
	if errors.Is(err, credential.ErrBusy) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundTimeout)
		defer cancel()
		if rerr := g.locks.ReturnLoginAttempt(rctx, acct.ID, st.LockedUntil); rerr != nil {
			return LoginResult{}, errors.Join(err, fmt.Errorf("returning a sign-in attempt: %w", rerr))
		}
	}
	if err != nil {
		return LoginResult{}, err
	}
	if !ok {
		return LoginResult{State: st}, nil
	}
	until, err := g.locks.ReleaseLoginAttempt(ctx, acct.ID, g.now(), st.LockedUntil)
	if err != nil {
		// A right secret whose attempt cannot be given back is not acted
		// on, as the per-card counts' (Try).
		return LoginResult{}, unavailable{fmt.Errorf("releasing a sign-in attempt: %w", err)}
	}
	if !until.IsZero() {
		return LoginResult{State: store.LoginState{Failures: LoginMaxFailures, LockedUntil: until}}, nil
	}
	return LoginResult{OK: true}, nil
}

// Decoy runs verify, which must never succeed, as one attempt on a
// username without an account to count on (an unknown username), counted
// under key by an account's rules, so that the pages count down, lock and
// unlock exactly as for a real account, on every node, and do not tell
// whether the username exists:
//
//   - while the decoy is locked, the attempt is refused without verifying
//     (nor counting), as a locked account's is;
//   - otherwise the failure is counted in a LoginWindow that begins at
//     the first one; the LoginMaxFailures-th locks the decoy for the
//     lockout period from that failure (rounded up to the second, as the
//     store rounds an account's), and the count starts again after it.
//
// The lock is a counter of its own (key + ":lock", one attempt in a window
// of the lockout period, which pruning keeps: see PruneAttempts). Each key
// is one row of the attempts table, taken only by a post the per-card and
// per-address limits let through, and pruned once expired, so decoys
// cannot grow the table beyond what those limits allow.
func (g *Guard) Decoy(ctx context.Context, key string, verify func(context.Context) error) (LoginResult, error) {
	lockKey := key + decoyLockSuffix
	if locked, until, err := g.decoyLock(ctx, lockKey); err != nil || locked {
		return LoginResult{State: lockedState(until)}, err
	}
	n, _, err := g.failures(ctx, key, LoginWindow)
	if err != nil {
		return LoginResult{}, err
	}
	// One atomic take, so that however many requests race at most
	// LoginMaxFailures are verified in a window. A refused take means
	// requests elsewhere used up the tries meanwhile: locked, as an
	// account would be, without verifying.
	allowed, err := g.take(ctx, key, LoginWindow, LoginMaxFailures)
	if err != nil {
		return LoginResult{}, err
	}
	if allowed {
		if err := verify(ctx); err != nil {
			return LoginResult{}, err
		}
		if n+1 < LoginMaxFailures {
			return LoginResult{State: decoyState(n + 1)}, nil
		}
	}
	until, err := g.lockDecoy(ctx, key, lockKey)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{State: lockedState(until)}, nil
}

// decoyLockSuffix names a decoy's lock counter after its failure counter.
const decoyLockSuffix = ":lock"

// decoyLock reports whether the decoy whose lock counter is lockKey is
// locked now, and until when.
func (g *Guard) decoyLock(ctx context.Context, lockKey string) (bool, time.Time, error) {
	n, since, err := g.failures(ctx, lockKey, g.lockout)
	if err != nil || n == 0 {
		return false, time.Time{}, err
	}
	return true, since.Add(g.lockout), nil
}

// lockDecoy locks a decoy from now (unless a request elsewhere just did:
// its lock stands) and returns when the lock ends. Its count of failures
// must start again when the lock ends, as an account's does: it does by
// itself when the lockout period is at least LoginWindow (the count's
// window, begun at the first failure, ends first); with a shorter one it
// is cleared now. Locking costs one write more than an account's lock,
// which the time of the answer could show only with many samples, each a
// lockout period apart.
func (g *Guard) lockDecoy(ctx context.Context, key, lockKey string) (time.Time, error) {
	if err := checkKey(lockKey); err != nil {
		return time.Time{}, err
	}
	// Rounded up to the second, as the store rounds an account's lock.
	now := g.now()
	if t := now.Truncate(time.Second); !t.Equal(now) {
		now = t.Add(time.Second)
	}
	took, err := g.counts.TakeAttempt(ctx, cardPrefix+lockKey, now, g.lockout, 1)
	if err != nil {
		return time.Time{}, unavailable{err}
	}
	until := now.Add(g.lockout)
	if !took {
		// Locked by a request elsewhere meanwhile: that lock's end.
		locked, end, err := g.decoyLock(ctx, lockKey)
		switch {
		case err != nil:
			return time.Time{}, err
		case locked:
			until = end
		}
	}
	if g.lockout < LoginWindow {
		for range LoginMaxFailures {
			if err := g.refund(ctx, key); err != nil {
				return time.Time{}, err
			}
		}
	}
	return until, nil
}

// decoyState is the sign-in state a decoy shows after n failures, fewer
// than the limit, as a real account's.
func decoyState(n int) store.LoginState {
	return store.LoginState{Failures: n, Remaining: LoginMaxFailures - n}
}

// lockedState is the state of an account (or decoy) locked until until.
func lockedState(until time.Time) store.LoginState {
	if until.IsZero() {
		return store.LoginState{}
	}
	return store.LoginState{Failures: LoginMaxFailures, LockedUntil: until}
}

// TakeAddress counts an identity check from the client address ip against
// attempts_per_ip: nil, ErrLimited (an attempt over the limit is not
// counted) or ErrUnavailable. Callers count only posts whose same-origin
// and anti-forgery checks passed, so a forged cross-site post cannot use
// an address's allowance up.
func (g *Guard) TakeAddress(ctx context.Context, ip string) error {
	ok, err := g.counts.TakeAttempt(ctx, addressPrefix+AddressKey(ip), g.now(), AddressWindow, g.perAddress)
	switch {
	case err != nil:
		return unavailable{err}
	case !ok:
		return ErrLimited
	}
	return nil
}

// RefundAddress takes back an address's attempt that turned out not to be
// a failed identity check (a correct sign-in), so that people sharing an
// address (a base behind one NAT) are not limited by their own successes.
func (g *Guard) RefundAddress(ctx context.Context, ip string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refundTimeout)
	defer cancel()
	if err := g.counts.RefundAttempt(ctx, addressPrefix+AddressKey(ip)); err != nil {
		return unavailable{err}
	}
	return nil
}

// AddressKey is what attempts from ip are counted under: the address
// itself for IPv4, its /64 for IPv6, since one client is routinely given a
// whole /64 and could otherwise take a fresh allowance with every address
// in it. An IPv4 address mapped into IPv6 counts as the IPv4 address. A
// value that is not an address counts under one shared key rather than
// under a key the client could vary.
func AddressKey(ip string) string {
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "invalid"
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// Retention is how long the store must keep a counter after its window
// began: twice the longest window, so that a node whose clock runs behind
// the pruning node's never finds a live count gone.
const Retention = 2 * ThrottleWindow

// longestLockout is the longest lockout period of any guard made in this
// process: a decoy's lock counter lives that long, so pruning keeps
// counters at least that long (plus a window, for clocks that differ).
var longestLockout atomic.Int64

func keepLocks(lockout time.Duration) {
	for {
		old := longestLockout.Load()
		if int64(lockout) <= old || longestLockout.CompareAndSwap(old, int64(lockout)) {
			return
		}
	}
}

// pruneRetention is how long after its window began PruneAttempts keeps a
// counter: Retention, or a decoy lock's lockout period plus ThrottleWindow
// when that is longer.
func pruneRetention() time.Duration {
	return max(Retention, time.Duration(longestLockout.Load())+ThrottleWindow)
}

// PruneInterval is how often PruneAttempts deletes expired counters.
const PruneInterval = 10 * time.Minute

// pruneTimeout bounds one pruning run.
const pruneTimeout = 30 * time.Second

// PruneAttempts deletes the guard's expired counters in counts every
// interval until ctx is done (the gateway's config is unloaded): those
// whose window began more than Retention ago, or a decoy's lockout period
// and a window ago when that is longer (the longest lockout of the guards
// made in this process); and, when counts also records used states
// (store.StateLedger, as the account database does), the records of states
// that expired more than Retention ago (a margin for nodes whose clocks
// run behind, which would still take such a state). Every node prunes; the
// deletes are idempotent. Nothing depends on pruning but the tables' size,
// so a failed run is reported to failed (which may be nil) and the next
// tick tries again.
func PruneAttempts(ctx context.Context, counts store.Throttler, interval time.Duration, now func() time.Time, failed func(error), pruned func(int64)) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pctx, cancel := context.WithTimeout(ctx, pruneTimeout)
		n, err := counts.PruneAttempts(pctx, now().Add(-pruneRetention()))
		if states, ok := counts.(store.StateLedger); ok && err == nil {
			var m int64
			m, err = states.PruneUsedStates(pctx, now().Add(-Retention))
			n += m
		}
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && failed != nil:
			failed(err)
		case err == nil && n > 0 && pruned != nil:
			pruned(n)
		}
	}
}

// decoyKey counts the wrong secrets (passwords, security answers) given
// for a username without an account, on every page and with any card, as
// an account's lock counts them: per username (case folded, as usernames
// are looked up), kept as a keyed digest so that the table holds no typed
// text (a username may be a password typed into the wrong field), in a
// namespace no other counter uses.
func (s *Service) decoyKey(username string) string {
	return "decoy:" + s.deps.Sealer.tag(normUsername(username))
}

func isLimited(err error) bool { return errors.Is(err, ErrLimited) }

// isGuardRefusal reports whether err is the guard refusing an attempt
// (limited, or its counts unavailable), or the account database failing,
// rather than a failure of the check.
func isGuardRefusal(err error) bool {
	return errors.Is(err, ErrLimited) || errors.Is(err, ErrUnavailable)
}

// Audit reasons of the Unavailable outcome.
const (
	// ThrottleUnavailableReason: the guard could not count the attempt
	// (or read or write the account's lock).
	ThrottleUnavailableReason = "throttle_unavailable"
	// StoreUnavailableReason: an account could not be read or written.
	// The gateway's own refusal for the same cause has this code.
	StoreUnavailableReason = "account_service_unavailable"
)

// refusal audits the guard's refusal of a card's attempt as event (with
// fields) and returns its outcome: "limited", or "unavailable" (see
// unavailableOutcome).
func (s *Service) refusal(ctx context.Context, card *cacid.Identity, err error, event string, fields map[string]string) Outcome {
	o := limitOutcome(err)
	if o.Status == Limited {
		s.audit(ctx, card, event, "limited", fields)
		return o
	}
	return s.unavailableOutcome(ctx, card, err, event, fields)
}

// unavailableOutcome is the Unavailable outcome of err, a failure of the
// account database (ErrUnavailable): logged with its error, and audited as
// event with outcome "unavailable", the reason (throttle_unavailable for
// the counts, account_service_unavailable for the accounts), the cause
// (store.Cause: disk_full, unreachable …) and fields. The audit entry is
// repeatable (Deps.AuditRepeatable), per card (none for a password
// sign-in) and reason, so that an outage writes one entry a minute per
// card and client address, and a count, however often people retry.
func (s *Service) unavailableOutcome(ctx context.Context, card *cacid.Identity, err error, event string, fields map[string]string) Outcome {
	reason := StoreUnavailableReason
	if errors.As(err, new(unavailable)) {
		reason = ThrottleUnavailableReason
	}
	cause := store.Cause(err)
	if cause == "" {
		cause = causeUnknown
	}
	s.deps.Logger.Error("account database unavailable: request refused", zap.String("event", event),
		zap.String("reason", reason), zap.String("cause", cause), zap.Error(err))
	all := map[string]string{"reason": reason, "cause": cause}
	key := reason
	if card != nil {
		all["edipi"], all["card"] = card.EDIPI, card.FingerprintHex
		key += "\x00" + card.FingerprintHex
	}
	for k, v := range fields {
		all[k] = v
	}
	s.deps.AuditRepeatable(ctx, key, event, "unavailable", all)
	return Outcome{Status: Unavailable, Cause: cause}
}

// causeUnknown is the audited cause of a database failure store.Cause does
// not name.
const causeUnknown = "error"
