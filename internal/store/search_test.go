package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// searchFixture creates accounts whose names exercise every filter.
func searchFixture(t *testing.T, be backend) *SQLStore {
	t.Helper()
	s := be.openStore(t)
	accounts := []struct {
		username, edipi, given, family, email string
		status                                Status
		groups                                []string
		cards                                 []string
	}{
		{"alice.a.smith", "1111111111", "Alice", "Smith", "alice@army.mil", StatusActive, []string{"ops", "a_b"}, []string{"alice-1", "alice-2"}},
		{"bob.b.jones", "1111122222", "Bob", "Jones", "bob@navy.mil", StatusDisabled, []string{"ops2"}, []string{"bob"}},
		{"carol.c.smithers", "2222222222", "Carol", "Smithers", "carol@af.mil", StatusPending, []string{"devops"}, nil},
		{"dave.d.pct", "3333333333", "100%", "Real", "dave@example.mil", StatusActive, []string{"axb"}, nil},
		{"erin.e.under", "4444444444", "Under_score", "O'Brien", "erin@example.mil", StatusActive, nil, nil},
		{"frank.f.back", "5555555555", `Back\slash`, "Kowalski", "frank@example.mil", StatusActive, []string{"ops"}, nil},
	}
	for _, f := range accounts {
		a := newAccount(f.username, f.edipi, f.cards...)
		a.GivenName, a.FamilyName, a.Email, a.Status, a.Groups = f.given, f.family, f.email, f.status, f.groups
		mustCreate(t, s, a)
	}
	return s
}

func usernames(page AccountPage) []string {
	var names []string
	for _, a := range page.Accounts {
		names = append(names, a.Username)
	}
	return names
}

func TestSearchAccountsFilters(t *testing.T) { forEachBackend(t, testSearchAccountsFilters) }

func testSearchAccountsFilters(t *testing.T, be backend) {
	ctx := context.Background()
	s := searchFixture(t, be)
	all := []string{"alice.a.smith", "bob.b.jones", "carol.c.smithers", "dave.d.pct", "erin.e.under", "frank.f.back"}
	tests := []struct {
		name string
		q    AccountQuery
		want []string
	}{
		{"everything", AccountQuery{}, all},
		{"blank text", AccountQuery{Text: "   "}, all},
		{"username prefix", AccountQuery{Text: "bob."}, []string{"bob.b.jones"}},
		{"username prefix ignores case", AccountQuery{Text: "BOB"}, []string{"bob.b.jones"}},
		{"username is a prefix, not a substring", AccountQuery{Text: "b.jones"}, nil},
		{"edipi prefix", AccountQuery{Text: "11111"}, []string{"alice.a.smith", "bob.b.jones"}},
		{"edipi is a prefix, not a substring", AccountQuery{Text: "2222"}, []string{"carol.c.smithers"}},
		{"family name substring, any case", AccountQuery{Text: "MITH"}, []string{"alice.a.smith", "carol.c.smithers"}},
		{"given name substring", AccountQuery{Text: "aro"}, []string{"carol.c.smithers"}},
		{"email substring", AccountQuery{Text: "navy.mil"}, []string{"bob.b.jones"}},
		{"spaces trimmed", AccountQuery{Text: "  jones "}, []string{"bob.b.jones"}},
		{"percent matches itself", AccountQuery{Text: "%"}, []string{"dave.d.pct"}},
		{"underscore matches itself", AccountQuery{Text: "_"}, []string{"erin.e.under"}},
		{"percent inside", AccountQuery{Text: "0%"}, []string{"dave.d.pct"}},
		{"backslash matches itself", AccountQuery{Text: `k\s`}, []string{"frank.f.back"}},
		{"apostrophe", AccountQuery{Text: "o'b"}, []string{"erin.e.under"}},
		{"username exact", AccountQuery{Username: "bob.b.jones"}, []string{"bob.b.jones"}},
		{"username exact is exact", AccountQuery{Username: "bob"}, nil},
		{"edipi exact", AccountQuery{EDIPI: "2222222222"}, []string{"carol.c.smithers"}},
		{"edipi exact is exact", AccountQuery{EDIPI: "22222"}, nil},
		{"status", AccountQuery{Status: StatusActive}, []string{"alice.a.smith", "dave.d.pct", "erin.e.under", "frank.f.back"}},
		{"status pending", AccountQuery{Status: StatusPending}, []string{"carol.c.smithers"}},
		{"group is whole-name", AccountQuery{Group: "ops"}, []string{"alice.a.smith", "frank.f.back"}},
		{"group underscore is literal", AccountQuery{Group: "a_b"}, []string{"alice.a.smith"}},
		{"group nobody is in", AccountQuery{Group: "nobody"}, nil},
		{"text and status", AccountQuery{Text: "smith", Status: StatusPending}, []string{"carol.c.smithers"}},
		{"text and group", AccountQuery{Text: "smith", Group: "ops"}, []string{"alice.a.smith"}},
		{"all filters", AccountQuery{Text: "ali", Username: "alice.a.smith", EDIPI: "1111111111", Status: StatusActive, Group: "a_b"}, []string{"alice.a.smith"}},
		{"filters that exclude one another", AccountQuery{Username: "alice.a.smith", EDIPI: "2222222222"}, nil},
		{"hostile text", AccountQuery{Text: `'; DROP TABLE accounts; --`}, nil},
		{"hostile text 2", AccountQuery{Text: `" OR 1=1 --`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.SearchAccounts(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := usernames(page); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if page.Total != len(tt.want) {
				t.Errorf("Total = %d, want %d", page.Total, len(tt.want))
			}
		})
	}
	// The table is still there after the hostile queries.
	if page, err := s.SearchAccounts(ctx, AccountQuery{}); err != nil || page.Total != len(all) {
		t.Errorf("after hostile queries: %d accounts, %v", page.Total, err)
	}
}

func TestSearchAccountsCarriesCardsAndGroups(t *testing.T) {
	forEachBackend(t, testSearchAccountsCarriesCardsAndGroups)
}

func testSearchAccountsCarriesCardsAndGroups(t *testing.T, be backend) {
	ctx := context.Background()
	s := searchFixture(t, be)
	page, err := s.SearchAccounts(ctx, AccountQuery{Username: "alice.a.smith"})
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.AccountByUsername(ctx, "alice.a.smith")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Accounts) != 1 {
		t.Fatalf("%d accounts", len(page.Accounts))
	}
	assertAccount(t, page.Accounts[0], want)
	if len(want.Cards) != 2 || !slices.Equal(want.Groups, []string{"a_b", "ops"}) {
		t.Errorf("fixture account has %d cards, groups %q", len(want.Cards), want.Groups)
	}
}

func TestSearchAccountsPaging(t *testing.T) { forEachBackend(t, testSearchAccountsPaging) }

func testSearchAccountsPaging(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	const n = 25
	for i := range n {
		// Two cards each: a page of accounts is not cut by card rows.
		a := newAccount(fmt.Sprintf("user%02d", i), fmt.Sprintf("%010d", i), fmt.Sprint("a", i), fmt.Sprint("b", i))
		if i%2 == 0 {
			a.Groups = []string{"even"}
		}
		mustCreate(t, s, a)
	}
	var seen []string
	for offset := 0; offset < n+10; offset += 10 {
		page, err := s.SearchAccounts(ctx, AccountQuery{Text: "user", Offset: offset, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != n {
			t.Errorf("offset %d: Total = %d, want %d", offset, page.Total, n)
		}
		if wantLen := min(10, max(0, n-offset)); len(page.Accounts) != wantLen {
			t.Errorf("offset %d: %d accounts, want %d", offset, len(page.Accounts), wantLen)
		}
		for _, a := range page.Accounts {
			if len(a.Cards) != 2 {
				t.Errorf("%s has %d cards, want 2", a.Username, len(a.Cards))
			}
		}
		seen = append(seen, usernames(page)...)
	}
	if len(seen) != n || !slices.IsSorted(seen) {
		t.Errorf("pages gave %d accounts in order %v", len(seen), seen)
	}

	page, err := s.SearchAccounts(ctx, AccountQuery{Group: "even", Offset: 5, Limit: 3})
	if err != nil || page.Total != 13 || !slices.Equal(usernames(page), []string{"user10", "user12", "user14"}) {
		t.Errorf("group page = %q, Total %d, %v", usernames(page), page.Total, err)
	}
	// Limits beyond the cap, zero and negative limits and offsets.
	for _, q := range []AccountQuery{{Limit: MaxListLimit + 5}, {Limit: 0}, {Limit: -1}, {Offset: -7}} {
		page, err := s.SearchAccounts(ctx, q)
		if err != nil || len(page.Accounts) != n || page.Total != n {
			t.Errorf("%+v: %d accounts, Total %d, %v", q, len(page.Accounts), page.Total, err)
		}
	}
	// An offset past the end still reports the total.
	if page, err := s.SearchAccounts(ctx, AccountQuery{Offset: 1000}); err != nil || len(page.Accounts) != 0 || page.Total != n {
		t.Errorf("offset past the end: %d accounts, Total %d, %v", len(page.Accounts), page.Total, err)
	}
}

func TestSearchAccountsRejectsMalformedQueries(t *testing.T) {
	forEachBackend(t, testSearchAccountsRejectsMalformedQueries)
}

func testSearchAccountsRejectsMalformedQueries(t *testing.T, be backend) {
	ctx := context.Background()
	s := searchFixture(t, be)
	for name, q := range map[string]AccountQuery{
		"long text":        {Text: strings.Repeat("a", MaxQueryText+1)},
		"long username":    {Username: strings.Repeat("a", MaxQueryText+1)},
		"long edipi":       {EDIPI: strings.Repeat("1", MaxQueryText+1)},
		"invalid UTF-8":    {Text: "\xff\xfe"},
		"unknown status":   {Status: "deleted"},
		"status injection": {Status: "active' OR '1'='1"},
		"bad group":        {Group: `ops"%`},
		"uppercase group":  {Group: "Ops"},
	} {
		t.Run(name, func(t *testing.T) {
			page, err := s.SearchAccounts(ctx, q)
			assertErrorIs(t, err, ErrInvalidQuery)
			if len(page.Accounts) != 0 || page.Total != 0 {
				t.Errorf("a refused query returned %d accounts", len(page.Accounts))
			}
		})
	}
	// A long query at the bound is fine.
	if _, err := s.SearchAccounts(ctx, AccountQuery{Text: strings.Repeat("%", MaxQueryText)}); err != nil {
		t.Error(err)
	}
}
