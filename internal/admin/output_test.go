package admin

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPrintAccountPage(t *testing.T) {
	login := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	future := time.Now().Add(time.Hour)
	page := AccountPage{Total: 3, Offset: 0, Limit: 2, Accounts: []Account{
		{Username: "jane.smith", EDIPI: "1234567891", Status: "active", GivenName: "Jane", FamilyName: "Smith", Groups: []string{"ops", "pilots"},
			LockedUntil: &future, LastLoginAt: &login, Cards: []Card{{}}},
		{Username: "john.q.doe", EDIPI: "1234567890", Status: "pending", GivenName: "Jo\thn\x1b[31m"},
	}}
	var buf bytes.Buffer
	if err := PrintAccountPage(&buf, page); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"USERNAME    EDIPI       STATUS           NAME        GROUPS      CARDS  LAST LOGIN\n" +
		"jane.smith  1234567891  active (locked)  Jane Smith  ops,pilots  1      2026-03-04 05:06Z\n" +
		"john.q.doe  1234567890  pending          Jo?hn?[31m  -           0      never\n" +
		"Accounts 1-2 of 3. Next page: --offset 2\n"
	if buf.String() != want {
		t.Errorf("page:\n%s\nwant:\n%s", buf.String(), want)
	}
	for _, tc := range []struct {
		page AccountPage
		last string
	}{
		{AccountPage{}, "No accounts match.\n"},
		{AccountPage{Total: 3, Offset: 5}, "No accounts on this page: 3 match, the page starts at 5.\n"},
		{AccountPage{Total: 1, Accounts: []Account{{Username: "a"}}}, "Accounts 1-1 of 1.\n"},
	} {
		buf.Reset()
		PrintAccountPage(&buf, tc.page)
		if !strings.HasSuffix(buf.String(), tc.last) {
			t.Errorf("page %+v ends:\n%s\nwant %q", tc.page, buf.String(), tc.last)
		}
	}
}

func TestPrintAccount(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	past := created.Add(time.Hour)
	a := Account{Username: "john.q.doe", EDIPI: "1234567890", Status: "active", GivenName: "John", MiddleName: "Q", FamilyName: "Doe", Suffix: "Jr",
		Email: "john.q.doe@mail.mil", Groups: []string{"ops", "pilots"}, HasPassword: true, LockedUntil: &past, CreatedAt: created, UpdatedAt: created,
		Cards: []Card{{Fingerprint: "ab12", Subject: "CN=DOE.JOHN.Q.JR.1234567890", NotAfter: created.AddDate(3, 0, 0)}}}
	var buf bytes.Buffer
	if err := PrintAccount(&buf, a); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"Username:           john.q.doe\n" +
		"EDIPI:              1234567890\n" +
		"Status:             active\n" +
		"Name:               John Q Doe Jr\n" +
		"Email:              john.q.doe@mail.mil\n" +
		"Groups:             ops, pilots\n" +
		"Password:           yes\n" +
		"Last locked until:  2026-01-02 04:04Z\n" +
		"Created:            2026-01-02 03:04Z\n" +
		"Updated:            2026-01-02 03:04Z\n" +
		"Last login:         never\n" +
		"Cards:\n" +
		"  SHA-256  SUBJECT                      EXPIRES            LAST USED\n" +
		"  ab12     CN=DOE.JOHN.Q.JR.1234567890  2029-01-02 03:04Z  never\n"
	if buf.String() != want {
		t.Errorf("account:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	PrintAccount(&buf, Account{Username: "x"})
	if !strings.Contains(buf.String(), "Password:    no\n") || !strings.HasSuffix(buf.String(), "Last login:  never\nCards: none\n") {
		t.Errorf("account without cards:\n%s", buf.String())
	}
}

func TestPrintGroupsAndImportReport(t *testing.T) {
	var buf bytes.Buffer
	PrintGroups(&buf, nil)
	if buf.String() != "No account is in any group.\n" {
		t.Errorf("no groups: %q", buf.String())
	}
	buf.Reset()
	PrintGroups(&buf, []Group{{Name: "finance.readers", Accounts: 1}, {Name: "ops", Accounts: 12}})
	if want := "GROUP            ACCOUNTS\nfinance.readers  1\nops              12\n"; buf.String() != want {
		t.Errorf("groups:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	PrintImportReport(&buf, ImportReport{Records: 3, Imported: 3, Cards: 1})
	if want := "Read 3 records: imported 3 accounts with 1 cards.\n"; buf.String() != want {
		t.Errorf("report: %q", buf.String())
	}
	buf.Reset()
	PrintImportReport(&buf, ImportReport{Records: 5, Imported: 1, Skipped: 4, SkippedRecords: []SkippedRecord{
		{Record: 1, Line: 2, Username: "john.q.doe", Taken: "edipi"}, {Record: 3, Username: "jane.smith", Taken: "card"}}})
	want := "Read 5 records: imported 1 accounts with 0 cards, skipped 4 whose username, DoD ID or card was taken.\n" +
		"SKIPPED RECORD  LINE  USERNAME    TAKEN\n" +
		"1               2     john.q.doe  edipi\n" +
		"3               -     jane.smith  card\n" +
		"... and 2 more.\n"
	if buf.String() != want {
		t.Errorf("skipping report:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestPrintJSON(t *testing.T) {
	var buf bytes.Buffer
	PrintJSON(&buf, Group{Name: "ops", Accounts: 2})
	if want := "{\n  \"name\": \"ops\",\n  \"accounts\": 2\n}\n"; buf.String() != want {
		t.Errorf("JSON: %q", buf.String())
	}
}
