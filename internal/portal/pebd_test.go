package portal

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cacgate/cacgate/internal/roster"
	"github.com/cacgate/cacgate/internal/selfservice"
)

// With an HTTP roster the gateway cannot know whether a record has a PEBD:
// the form asks for it "if you have one", an empty field is sent as none,
// and the service decides. A civilian without a PEBD enrolls.
func TestEnrollHTTPRosterPEBDIsOptional(t *testing.T) {
	var (
		mu    sync.Mutex
		sent  []map[string]string
		reply = `{"match":true,"records":[{"category":"DA Civilian","last":"DOE","first":"JOHN","middle":"QUINCY"}]}`
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Error(err)
		}
		mu.Lock()
		sent = append(sent, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(reply))
	}))
	defer srv.Close()
	src, err := roster.NewHTTP(roster.HTTPConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, selfservice.Config{AskPEBD: true})
	h.deps.Roster = src
	h.rebuild()

	wantStatus(t, h.get(PathNew), http.StatusOK, `name="pebd"`, "Pay entry base date (PEBD), if you have one", `aria-describedby="pebd-hint"`)
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusOK, "1 of 2", "DA Civilian")

	// Someone who has one types it, and it is sent.
	form := identityForm()
	form.Set("pebd", testPEBD)
	wantStatus(t, h.post(PathNew, form), http.StatusOK, "1 of 2")
	// A malformed one is still refused before the service is asked.
	form.Set("pebd", "yesterday")
	wantStatus(t, h.post(PathNew, form), http.StatusUnprocessableEntity, `href="#pebd"`)

	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("%d requests to the roster service, want 2", len(sent))
	}
	if _, ok := sent[0]["pebd"]; ok {
		t.Error("an empty PEBD was sent to the roster service")
	}
	if sent[1]["pebd"] != testPEBD {
		t.Error("typed PEBD not sent")
	}
}

// A CSV roster whose record has a PEBD still requires it; one whose record
// has none does not ask.
func TestEnrollCSVRosterPEBDRequiredWhenRecordHasOne(t *testing.T) {
	h := newHarness(t, selfservice.Config{AskPEBD: true})
	h.roster.needsPEBD = true
	w := h.get(PathNew)
	wantStatus(t, w, http.StatusOK, `<label for="pebd">Pay entry base date (PEBD)</label>`)
	wantStatus(t, h.post(PathNew, identityForm()), http.StatusUnprocessableEntity, "Enter your pay entry base date.")

	h2 := newHarness(t, selfservice.Config{AskPEBD: true})
	if w := h2.get(PathNew); w.Code != http.StatusOK || strings.Contains(w.Body.String(), `name="pebd"`) {
		t.Error("PEBD asked for a record without one")
	}
}
