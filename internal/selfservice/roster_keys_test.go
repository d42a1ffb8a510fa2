package selfservice

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/store"
)

const pivUUID = "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d"

// keyedRoster knows the DoD card of oneRoster and one federal PIV card by
// its UUID; noRecord makes it answer as an HTTP service that has no
// record of a key ("known":false) instead of having it.
type keyedRoster struct {
	oneRoster
	mu       sync.Mutex
	claims   []roster.Claim
	noRecord bool
}

func (k *keyedRoster) Verify(ctx context.Context, c roster.Claim) (roster.Result, error) {
	k.mu.Lock()
	k.claims = append(k.claims, roster.Claim{EDIPI: c.EDIPI, CardUUID: c.CardUUID, Email: c.Email})
	noRecord := k.noRecord
	k.mu.Unlock()
	if c.EDIPI != "" {
		return k.oneRoster.Verify(ctx, c)
	}
	if noRecord {
		return roster.Result{NoRecord: true}, nil
	}
	if c.CardUUID != pivUUID || strings.ReplaceAll(c.SSN, "-", "") != "219099999" || c.DOB != ucDOB {
		return roster.Result{}, nil
	}
	return roster.Result{Match: true, Records: []roster.Record{{CardUUID: pivUUID, Category: "Federal Civilian", Last: "FEDERAL", First: "JANE", Middle: "Q"}}}, nil
}

func (k *keyedRoster) Lookup(_ context.Context, kind roster.KeyKind, value string) (roster.Presence, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if kind == roster.KeyCardUUID && (value == pivUUID || k.noRecord) {
		return roster.Presence{Known: true, PEBD: roster.PEBDOptional}, nil
	}
	return roster.Presence{}, nil
}

func pivCard(uuid string) *cacid.Identity {
	return &cacid.Identity{Kind: cacid.KindPIV, Key: uuid, CardUUID: uuid, Email: "jane.federal@example.gov",
		GivenName: "JANE", MiddleName: "Q", FamilyName: "FEDERAL", CommonName: "JANE Q FEDERAL",
		FingerprintHex: strings.Repeat("cd", 32), Subject: "CN=JANE Q FEDERAL", Issuer: "CN=Agency PIV CA", Serial: "0b"}
}

// enrollAll walks the profile and questions steps from next.
func (f *fixture) enrollAll(card *cacid.Identity, next ProfileForm) EnrollResult {
	f.t.Helper()
	pr, err := f.svc.SetProfile(context.Background(), card, profileInput(next.State, addrA))
	if err != nil || pr.Status != Done {
		f.t.Fatalf("profile: %+v %v", pr.Outcome, err)
	}
	res, err := f.svc.Complete(context.Background(), card, QuestionsInput{State: pr.Next.State, Address: addrA,
		Picks: [credential.QuestionsRequired]credential.AnswerPick{
			{QuestionID: "first-pet", Answer: "Rex the dog", Confirm: "Rex the dog"},
			{QuestionID: "first-car", Answer: "Blue Ford", Confirm: "Blue Ford"},
			{QuestionID: "childhood-street", Answer: "Maple Avenue", Confirm: "Maple Avenue"},
		}})
	if err != nil || res.Status != Done || res.Account == nil {
		f.t.Fatalf("questions: %+v %v", res.Outcome, err)
	}
	return res
}

// TestRosterKeyRule: which key each credential kind is looked up by.
func TestRosterKeyRule(t *testing.T) {
	for _, tt := range []struct {
		card  cacid.Identity
		kind  roster.KeyKind
		value string
		ok    bool
	}{
		{cacid.Identity{EDIPI: "1234567890"}, roster.KeyEDIPI, "1234567890", true},
		{cacid.Identity{Kind: cacid.KindCAC, EDIPI: "1234567890", Email: "a@b.mil"}, roster.KeyEDIPI, "1234567890", true},
		{cacid.Identity{Kind: cacid.KindPIV, CardUUID: pivUUID, Email: "jane@agency.gov"}, roster.KeyCardUUID, pivUUID, true},
		{cacid.Identity{Kind: cacid.KindPIVI, CardUUID: pivUUID}, roster.KeyCardUUID, pivUUID, true},
		{cacid.Identity{Kind: cacid.KindECA, Email: "Carl@Example.com", Key: "ffff"}, roster.KeyEmail, "carl@example.com", true},
		{cacid.Identity{Kind: cacid.KindECA, Key: "ffff"}, roster.KeyEmail, "", false},
	} {
		kind, value, ok := RosterKey(&tt.card)
		if kind != tt.kind || value != tt.value || ok != tt.ok {
			t.Errorf("RosterKey(%+v) = %s %q %v; want %s %q %v", tt.card, kind, value, ok, tt.kind, tt.value, tt.ok)
		}
	}
}

// TestPIVEnrollsAgainstTheRoster: a PIV holder the roster lists by card
// UUID answers the identity form, is told a wrong answer the way a CAC
// holder is (counted against the card), and gets an active account with
// the roster's names and category, without sponsorship; with approval on,
// the account waits pending, as a CAC holder's does.
func TestPIVEnrollsAgainstTheRoster(t *testing.T) {
	for _, approval := range []bool{false, true} {
		f := newFixture(t, Config{AskPEBD: true, Sponsor: true, Approval: approval})
		kr := &keyedRoster{}
		f.deps.Roster = kr
		f.rebuild()
		card := pivCard(pivUUID)
		ctx := context.Background()

		form, o, err := f.svc.IdentityForm(ctx, card, true)
		if err != nil || o.Status != Done || form.Sponsor || !form.AskPEBD || !form.PEBDOptional {
			t.Fatalf("IdentityForm = %+v %+v %v", form, o, err)
		}
		res, err := f.svc.CheckIdentity(ctx, card, IdentityInput{IDType: "ssn", SSN: "219-09-9998", DOB: ucDOB, Address: addrA})
		if err != nil || res.Status != Wrong || len(res.Errors.List) != 1 || !strings.Contains(res.Errors.List[0].Message, "federal PIV card") {
			t.Fatalf("wrong SSN: %+v %v", res, err)
		}
		if !f.audited("enroll.identity", "failure", "no_match") || f.counted(cardPrefix+identityLimit(card).Key) != 1 {
			t.Error("the mismatch was not audited and counted")
		}
		res, err = f.svc.CheckIdentity(ctx, card, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB, Address: addrA})
		if err != nil || res.Status != Done || res.Next.State == "" || res.Next.Profile.Email != card.Email {
			t.Fatalf("identity: %+v %v", res, err)
		}
		if e := f.last(); e.name != "enroll.identity" || e.outcome != "success" || e.fields["via"] != "roster:card_uuid" ||
			e.fields["categories"] != "Federal Civilian" || e.fields["credential"] != "piv" || e.fields["credential_key"] != pivUUID {
			t.Errorf("audited %+v", e)
		}
		done := f.enrollAll(card, res.Next)
		want := store.StatusActive
		if approval {
			want = store.StatusPending
		}
		a := done.Account
		if a.Status != want || a.Kind != "piv" || a.Key != pivUUID || a.EDIPI != "" || a.GivenName != "JANE" ||
			len(a.Categories) != 1 || a.Categories[0] != "Federal Civilian" {
			t.Errorf("approval %v: account %+v", approval, a)
		}
		kr.mu.Lock()
		for _, c := range kr.claims {
			if c.CardUUID != pivUUID || c.EDIPI != "" || c.Email != "" {
				t.Errorf("the roster was asked %+v", c)
			}
		}
		kr.mu.Unlock()
	}
}

// TestPIVWithoutRosterRecordIsSponsored: a PIV card the roster does not
// list goes to sponsorship (no identity form) and waits pending; on a site
// that sponsors nobody it is refused. A service that answers "no record"
// after the form sponsors the holder too.
func TestPIVWithoutRosterRecordIsSponsored(t *testing.T) {
	ctx := context.Background()
	other := pivCard("0b1c2d3e-e4f5-4a6b-8c7d-0e1f2a3b4c5d")

	f := newFixture(t, Config{Sponsor: true})
	f.deps.Roster = &keyedRoster{}
	f.rebuild()
	form, _, err := f.svc.IdentityForm(ctx, other, true)
	if err != nil || !form.Sponsor {
		t.Fatalf("IdentityForm = %+v %v; want sponsorship", form, err)
	}
	res, err := f.svc.CheckIdentity(ctx, other, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB, Address: addrA})
	if err != nil || res.Status != Done || res.Next.State == "" {
		t.Fatalf("CheckIdentity = %+v %v; want sponsorship", res, err)
	}
	if done := f.enrollAll(other, res.Next); done.Account.Status != store.StatusPending || done.Account.Categories[0] != "Federal PIV holder" {
		t.Errorf("sponsored account %+v", done.Account)
	}

	f = newFixture(t, Config{})
	f.deps.Roster = &keyedRoster{}
	f.rebuild()
	if res, err := f.svc.CheckIdentity(ctx, other, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB}); err != nil || res.Status != Refused || res.Reason != "sponsor_required" {
		t.Fatalf("without sponsorship: %+v %v", res, err)
	}

	// The roster said it may know the key, then had no record of it.
	f = newFixture(t, Config{Sponsor: true})
	f.deps.Roster = &keyedRoster{noRecord: true}
	f.rebuild()
	res, err = f.svc.CheckIdentity(ctx, other, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB, Address: addrA})
	if err != nil || res.Status != Done || res.Next.State == "" || !f.audited("enroll.identity", "failure", "no_record") {
		t.Fatalf("no record: %+v %v", res, err)
	}
	if done := f.enrollAll(other, res.Next); done.Account.Status != store.StatusPending {
		t.Errorf("account %+v, want pending", done.Account)
	}

	// The same without sponsorship: told to ask for an account.
	f = newFixture(t, Config{})
	f.deps.Roster = &keyedRoster{noRecord: true}
	f.rebuild()
	res, err = f.svc.CheckIdentity(ctx, other, IdentityInput{IDType: "ssn", SSN: ucSSN, DOB: ucDOB, Address: addrA})
	if err != nil || res.Status != Refused || res.Reason != "sponsor_required" || !f.audited("enroll.identity", "failure", "sponsor_required") {
		t.Fatalf("no record, no sponsorship: %+v %v", res, err)
	}

	// A source that holds no keyed records at all (oneRoster): sponsorship.
	f = newFixture(t, Config{Sponsor: true})
	if form, _, err := f.svc.IdentityForm(ctx, other, true); err != nil || !form.Sponsor {
		t.Fatalf("IdentityForm over an EDIPI roster = %+v %v", form, err)
	}
}
