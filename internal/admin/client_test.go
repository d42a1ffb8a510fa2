package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// sent is one request a Client made.
type sent struct {
	method, uri, contentType, body string
}

// fakeSend answers a Client's requests with answer, recording them.
func fakeSend(log *[]sent, answer func(method, uri string) (*http.Response, error)) func(string, string, http.Header, io.Reader) (*http.Response, error) {
	return func(method, uri string, h http.Header, body io.Reader) (*http.Response, error) {
		var b []byte
		if body != nil {
			b, _ = io.ReadAll(body)
		}
		*log = append(*log, sent{method, uri, h.Get("Content-Type"), string(b)})
		return answer(method, uri)
	}
}

func jsonAnswer(v any) *http.Response {
	rec := httptest.NewRecorder()
	json.NewEncoder(rec).Encode(v)
	return rec.Result()
}

// TestClientRequests checks that each Backend operation of the Client is
// the admin API request the routes serve.
func TestClientRequests(t *testing.T) {
	var log []sent
	c := &Client{Address: "localhost:2019", Send: fakeSend(&log, func(method, uri string) (*http.Response, error) {
		switch {
		case strings.HasPrefix(uri, "/cacgate/accounts?") || uri == "/cacgate/accounts" && method == "GET":
			return jsonAnswer(AccountPage{Total: 1, Accounts: []Account{{Username: "john.q.doe"}}}), nil
		case uri == "/cacgate/groups":
			return jsonAnswer([]Group{{Name: "ops", Accounts: 1}}), nil
		case strings.HasPrefix(uri, "/cacgate/accounts/import"):
			return jsonAnswer(ImportReport{OnConflict: "skip", Records: 1}), nil
		}
		return jsonAnswer(Account{Username: "john.q.doe", Status: "active"}), nil
	})}
	ctx := context.Background()
	who := Actor{Identity: "ignored"}
	var b Backend = c
	page, err := b.Search(ctx, AccountSearch{Text: "doe", Status: "active", Offset: 2, Limit: 10})
	if err != nil || page.Total != 1 || page.Accounts[0].Username != "john.q.doe" {
		t.Errorf("search: %+v %v", page, err)
	}
	b.Search(ctx, AccountSearch{})
	b.Show(ctx, "john.q.doe")
	b.Groups(ctx)
	b.Create(ctx, who, NewAccountRequest{EDIPI: "1234567890", Username: "john.q.doe"})
	b.Approve(ctx, who, "john.q.doe")
	b.Disable(ctx, who, "john.q.doe")
	b.Enable(ctx, who, "john.q.doe")
	b.Unlock(ctx, who, "john.q.doe")
	b.AddGroups(ctx, who, "john.q.doe", []string{"ops"})
	b.RemoveGroups(ctx, who, "john.q.doe", []string{"ops"})
	b.LinkCard(ctx, who, "john.q.doe", "PEM")
	b.UnlinkCard(ctx, who, "john.q.doe", "ab12")
	report, err := b.Import(ctx, who, strings.NewReader("username,edipi\n"), "skip", "file.csv")
	if err != nil || report.OnConflict != "skip" {
		t.Errorf("import: %+v %v", report, err)
	}
	want := []sent{
		{"GET", "/cacgate/accounts?limit=10&offset=2&q=doe&status=active", "", ""},
		{"GET", "/cacgate/accounts", "", ""},
		{"GET", "/cacgate/accounts/john.q.doe", "", ""},
		{"GET", "/cacgate/groups", "", ""},
		{"POST", "/cacgate/accounts", "", `{"edipi":"1234567890","username":"john.q.doe"}`},
		{"POST", "/cacgate/accounts/john.q.doe/approve", "", ""},
		{"POST", "/cacgate/accounts/john.q.doe/disable", "", ""},
		{"POST", "/cacgate/accounts/john.q.doe/enable", "", ""},
		{"POST", "/cacgate/accounts/john.q.doe/unlock", "", ""},
		{"POST", "/cacgate/accounts/john.q.doe/groups", "", `{"groups":["ops"]}`},
		{"DELETE", "/cacgate/accounts/john.q.doe/groups", "", `{"groups":["ops"]}`},
		{"POST", "/cacgate/accounts/john.q.doe/cards", "", `{"certificate":"PEM"}`},
		{"DELETE", "/cacgate/accounts/john.q.doe/cards/ab12", "", ""},
		{"POST", "/cacgate/accounts/import?on_conflict=skip", "text/csv", "username,edipi\n"},
	}
	if len(log) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(log), len(want), log)
	}
	for i := range want {
		if log[i] != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, log[i], want[i])
		}
	}
}

func TestClientErrors(t *testing.T) {
	refused := Errorf(409, "HTTP 409: an account already exists for this DoD ID")
	var log []sent
	c := &Client{Address: "localhost:2019", Send: fakeSend(&log, func(string, string) (*http.Response, error) { return nil, refused })}
	if _, err := c.Create(context.Background(), Actor{}, NewAccountRequest{}); err != refused {
		t.Errorf("an error answer: %v", err)
	}

	// Garbage instead of JSON.
	c.Send = fakeSend(&log, func(string, string) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("<html>"))}, nil
	})
	if _, err := c.Show(context.Background(), "x"); err == nil || !strings.HasPrefix(err.Error(), "admin API answer: ") {
		t.Errorf("a non-JSON answer: %v", err)
	}

	// A server that does not answer: the context bounds the wait.
	block := make(chan struct{})
	defer close(block)
	c.Send = func(string, string, http.Header, io.Reader) (*http.Response, error) {
		<-block
		return nil, errors.New("late")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Groups(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "admin API at localhost:2019") {
		t.Errorf("a cancelled call: %v", err)
	}
}

func TestClientExport(t *testing.T) {
	var log []sent
	trailer := ""
	c := &Client{Address: "a", Send: fakeSend(&log, func(string, string) (*http.Response, error) {
		resp := &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("username,edipi\nx,1\n")), Trailer: http.Header{}}
		if trailer != "" {
			resp.Trailer.Set(ExportCountTrailer, trailer)
		}
		return resp, nil
	})}
	var out strings.Builder
	if _, err := c.Export(context.Background(), Actor{}, &out); err == nil || !strings.Contains(err.Error(), "may be incomplete") {
		t.Errorf("an export without its count: %v", err)
	}
	trailer = "1"
	out.Reset()
	if n, err := c.Export(context.Background(), Actor{}, &out); err != nil || n != 1 || out.String() != "username,edipi\nx,1\n" {
		t.Errorf("export: %d %v %q", n, err, out.String())
	}
	if log[0].method != "GET" || log[0].uri != "/cacgate/accounts/export" {
		t.Errorf("export request: %+v", log[0])
	}
}
