package selfservice

import (
	"context"
	"errors"
	"testing"

	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/internal/storefault"
)

// faultFixture is the fixture over a store that fails on demand, recording
// the series keys of the repeatable audit entries.
func faultFixture(t *testing.T) (*fixture, *storefault.Store, *[]string) {
	t.Helper()
	f := newFixture(t, Config{})
	fault := storefault.New(f.db)
	var keys []string
	audit := f.deps.Audit
	f.deps.Accounts, f.deps.Throttle, f.deps.States = fault, fault, fault
	f.deps.AuditRepeatable = func(ctx context.Context, key, event, outcome string, fields map[string]string) {
		keys = append(keys, key)
		audit(ctx, event, outcome, fields)
	}
	f.rebuild()
	return f, fault, &keys
}

// TestSignInRightPasswordLockUnreleased: a right password whose attempt
// cannot be taken back is not acted on (as a card count's, Guard.Try):
// Unavailable, audited with the cause, not a raw error (an empty 500).
func TestSignInRightPasswordLockUnreleased(t *testing.T) {
	f, fault, keys := faultFixture(t)
	f.addAccount("john.q.doe", "1234567890", ucPassword)
	fault.Fail(storefault.Closed(t), "ReleaseLoginAttempt")
	res, err := f.svc.SignIn(context.Background(), SignInInput{Username: "John.Q.Doe", Password: ucPassword, Address: "192.0.2.1"})
	if err != nil || res.Status != Unavailable || res.Cause != store.CauseUnreachable || res.Account != nil || res.Username != "john.q.doe" {
		t.Fatalf("%+v %v", res, err)
	}
	e := f.last()
	if e.name != "signin.password" || e.outcome != "unavailable" || e.fields["reason"] != ThrottleUnavailableReason || e.fields["cause"] != store.CauseUnreachable {
		t.Fatalf("audit %+v", e)
	}
	if len(*keys) != 1 || (*keys)[0] != ThrottleUnavailableReason {
		t.Errorf("series keys %q: a sign-in's is the reason alone (per client address)", *keys)
	}
	// The address's attempt went back: nothing was decided.
	if n, _, err := f.db.Attempts(context.Background(), addressPrefix+AddressKey("192.0.2.1"), f.now, AddressWindow); err != nil || n != 0 {
		t.Errorf("address count %d %v", n, err)
	}
}

// TestUnavailableOutcomes: each use case turns a database failure into
// Unavailable with its cause, audited once per call as its event, with a
// series key per card; no error (which the gateway would answer 500).
func TestUnavailableOutcomes(t *testing.T) {
	f, fault, keys := faultFixture(t)
	acct := f.addAccount("john.q.doe", "1234567890", ucPassword)
	ctx := context.Background()
	full := storefault.DiskFull(t)
	for _, c := range []struct {
		name, op, event, reason string
		run                     func() (Outcome, error)
	}{
		{"identity", "AccountByFingerprint", "enroll.identity", StoreUnavailableReason, func() (Outcome, error) {
			r, err := f.svc.CheckIdentity(ctx, f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB})
			return r.Outcome, err
		}},
		{"identity count", "Attempts", "enroll.identity", ThrottleUnavailableReason, func() (Outcome, error) {
			r, err := f.svc.CheckIdentity(ctx, f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB})
			return r.Outcome, err
		}},
		{"link", "Credentials", "card.linked", StoreUnavailableReason, func() (Outcome, error) {
			r, err := f.svc.LinkCard(ctx, f.card, LinkInput{Username: "john.q.doe", Password: ucPassword})
			return r.Outcome, err
		}},
		{"reset", "AccountByUsername", "password.reset", StoreUnavailableReason, func() (Outcome, error) {
			r, err := f.svc.ResetQuestions(ctx, f.card, "john.q.doe", "")
			return r.Outcome, err
		}},
		{"clear card", "UnlinkCard", "card.unlinked", StoreUnavailableReason, func() (Outcome, error) {
			a := *acct
			a.Cards = []store.Card{{Fingerprint: f.card.FingerprintHex}, {Fingerprint: "cd"}}
			r, err := f.svc.ClearCard(ctx, f.card, &a, "cd")
			return r.Outcome, err
		}},
		{"change password", "Credentials", "password.changed", StoreUnavailableReason, func() (Outcome, error) {
			r, err := f.svc.ChangePassword(ctx, f.card, acct, ChangePasswordInput{Current: ucPassword, Password: "Violet$Harbor%Lamp", Confirm: "Violet$Harbor%Lamp"})
			return r.Outcome, err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fault.Heal()
			fault.Fail(full, c.op)
			*keys = nil
			o, err := c.run()
			if err != nil || o.Status != Unavailable || o.Cause != store.CauseDiskFull {
				t.Fatalf("%+v %v", o, err)
			}
			e := f.last()
			if e.name != c.event || e.outcome != "unavailable" || e.fields["reason"] != c.reason || e.fields["cause"] != store.CauseDiskFull ||
				e.fields["card"] != f.card.FingerprintHex {
				t.Fatalf("audit %+v", e)
			}
			if len(*keys) != 1 || (*keys)[0] != c.reason+"\x00"+f.card.FingerprintHex {
				t.Errorf("series keys %q", *keys)
			}
		})
	}
	// Not every error is the database's: an unnamed one is "error".
	fault.Heal()
	fault.Fail(errors.New("no such table: accounts"), "AccountByFingerprint")
	r, err := f.svc.CheckIdentity(ctx, f.card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB})
	if err != nil || r.Status != Unavailable || r.Cause != "error" {
		t.Fatalf("%+v %v", r.Outcome, err)
	}
}
