package gateway

import (
	"testing"

	"github.com/cacgate/cacgate/internal/store"
)

// An entry of an unregistered non-DoD card hears of an account created
// elsewhere for its credential (kind and key), as a CAC's entry hears of
// one for its EDIPI; the same key under another kind is another person's.
func TestEntryConcernsCredentialKey(t *testing.T) {
	const uuid = "a0b1c2d3-e4f5-4a6b-8c7d-0e1f2a3b4c5d"
	e := &Entry{kind: "piv", key: uuid}
	if !e.concerns(store.Change{AccountID: 7, Kind: "piv", Key: uuid}) {
		t.Error("a PIV account created for the card's UUID does not concern its entry")
	}
	if e.concerns(store.Change{AccountID: 7, Kind: "piv-i", Key: uuid}) {
		t.Error("a PIV-I account with the same UUID concerns a PIV card's entry")
	}
	if e.concerns(store.Change{AccountID: 7}) {
		t.Error("an unrelated change concerns the entry")
	}
}
