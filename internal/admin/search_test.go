package admin

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseSearch(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  AccountSearch
	}{
		{"", AccountSearch{}},
		{"q=smith&status=pending&group=ops", AccountSearch{Text: "smith", Status: "pending", Group: "ops"}},
		{"username=john.q.doe&edipi=1234567890", AccountSearch{Username: "john.q.doe", EDIPI: "1234567890"}},
		{"offset=5&limit=20", AccountSearch{Offset: 5, Limit: 20}},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := ParseSearch(q)
		if err != nil || got != tc.want {
			t.Errorf("ParseSearch(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ query, msg string }{
		{"sort=name", `unknown query parameter "sort" (use q, username, edipi, status, group, offset, limit)`},
		{"q=a&q=b", `query parameter "q" is given more than once`},
		{"offset=-1", "offset must be a non-negative number"},
		{"offset=x", "offset must be a non-negative number"},
		{"limit=0", "limit must be between 1 and 1000"},
		{"limit=1001", "limit must be between 1 and 1000"},
	} {
		q, _ := url.ParseQuery(tc.query)
		if _, err := ParseSearch(q); status(err) != 400 || err.Error() != tc.msg {
			t.Errorf("ParseSearch(%q): %v, want 400 %q", tc.query, err, tc.msg)
		}
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe", GivenName: "John", FamilyName: "Doe", Email: "john.q.doe@mail.mil", Groups: []string{"ops"}})
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567891", Username: "jane.smith", GivenName: "Jane", FamilyName: "Smith", Status: "pending"})
	mustCreate(t, f, NewAccountRequest{EDIPI: "1234567892", Username: "robert.e.johnson", Groups: []string{"ops", "finance.readers"}})
	usernames := func(p AccountPage) []string {
		var out []string
		for _, a := range p.Accounts {
			out = append(out, a.Username)
		}
		return out
	}
	for _, tc := range []struct {
		q     AccountSearch
		want  []string
		total int
	}{
		{AccountSearch{}, []string{"jane.smith", "john.q.doe", "robert.e.johnson"}, 3},
		{AccountSearch{Text: "SMITH"}, []string{"jane.smith"}, 1},
		{AccountSearch{Text: "mail.mil"}, []string{"john.q.doe"}, 1},
		{AccountSearch{EDIPI: "1234567892"}, []string{"robert.e.johnson"}, 1},
		{AccountSearch{Status: "pending"}, []string{"jane.smith"}, 1},
		{AccountSearch{Group: "ops", Text: "rob"}, []string{"robert.e.johnson"}, 1},
		{AccountSearch{Limit: 1, Offset: 1}, []string{"john.q.doe"}, 3},
		{AccountSearch{Offset: 5}, nil, 3},
	} {
		page, err := f.svc.Search(ctx, tc.q)
		if err != nil || !slices.Equal(usernames(page), tc.want) || page.Total != tc.total {
			t.Errorf("%+v: %v of %d (%v), want %v of %d", tc.q, usernames(page), page.Total, err, tc.want, tc.total)
		}
		if page.Accounts == nil {
			t.Errorf("%+v: accounts is null, not []", tc.q)
		}
	}
	if page, _ := f.svc.Search(ctx, AccountSearch{}); page.Limit != DefaultPageLimit || page.Offset != 0 {
		t.Errorf("default page: offset %d limit %d", page.Offset, page.Limit)
	}
	for _, tc := range []struct {
		q   AccountSearch
		msg string
	}{
		{AccountSearch{Status: "bogus"}, `status must be "active", "disabled" or "pending"`},
		{AccountSearch{EDIPI: "12345"}, "edipi must be the 10-digit DoD ID number (use q to search by its first digits)"},
		{AccountSearch{Group: "Ops"}, "group must be 1-64 characters"},
		{AccountSearch{Username: "John"}, "username must be a whole username"},
		{AccountSearch{Text: strings.Repeat("a", 101)}, "q must be valid text of at most 100 characters"},
		{AccountSearch{Text: "\x00"}, "q contains a control or non-printable character"},
		{AccountSearch{Limit: 1001}, "limit must be between 1 and 1000"},
		{AccountSearch{Offset: -1}, "offset must be a non-negative number"},
	} {
		if _, err := f.svc.Search(ctx, tc.q); status(err) != 400 || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("search %+v: %v, want 400 %q", tc.q, err, tc.msg)
		}
	}
}
