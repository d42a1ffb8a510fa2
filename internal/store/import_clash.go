package store

import (
	"context"
	"errors"
	"fmt"
)

// errKeyTaken is ErrEDIPITaken for an account of another credential kind:
// the unique (kind, key) index that keeps both is one.
var errKeyTaken = fmt.Errorf("%w (an account already exists for this credential)", ErrEDIPITaken)

// nonDoD reports whether a is keyed by a credential key rather than an
// EDIPI (an empty kind is a DoD account's).
func nonDoD(a *Account) bool { return a.Kind != "" && a.Kind != KindCAC }

// clashChunk bounds the IN lists of the clash lookups.
const clashChunk = 1000

// resolveClashes finds the records of batch whose username, DoD ID or card
// is taken: by an account stored before the import, by a record of an
// earlier batch (whose cards are staged), or by an earlier record of this
// batch that is kept. Under ImportFail it returns an *ImportError for the
// first; under ImportSkip it records them in the report and returns the
// others.
func (im *importer) resolveClashes(ctx context.Context, batch []importRecord) ([]importRecord, error) {
	var usernames, edipis, fingerprints []string
	keys := map[string][]string{} // non-DoD keys by kind
	for _, r := range batch {
		usernames = append(usernames, r.a.Username)
		if nonDoD(r.a) {
			keys[r.a.Kind] = append(keys[r.a.Kind], r.a.Key)
		} else {
			edipis = append(edipis, r.a.EDIPI)
		}
		for _, c := range r.a.Cards {
			fingerprints = append(fingerprints, c.Fingerprint)
		}
	}
	takenUsernames, err := im.existing(ctx, `SELECT username FROM accounts WHERE username IN `, usernames)
	if err != nil {
		return nil, err
	}
	takenEDIPIs, err := im.existing(ctx, `SELECT edipi FROM accounts WHERE edipi IN `, edipis)
	if err != nil {
		return nil, err
	}
	// kind + ":" + key of the non-DoD records' taken keys (no kind has a
	// colon, so the pair is unambiguous).
	takenKeys := map[string]bool{}
	for kind, ks := range keys {
		// The kind is spelt into the query: only the store's own names
		// (validateAccount refused any other before this).
		if kind != KindPIV && kind != KindPIVI && kind != KindECA {
			return nil, fmt.Errorf("store: import: credential kind %q", kind)
		}
		found, err := im.existing(ctx, `SELECT id_key FROM accounts WHERE id_kind = '`+kind+`' AND id_key IN `, ks)
		if err != nil {
			return nil, err
		}
		for k := range found {
			takenKeys[kind+":"+k] = true
		}
	}
	takenCards, err := im.existing(ctx, `SELECT fingerprint FROM cards WHERE fingerprint IN `, fingerprints)
	if err != nil {
		return nil, err
	}
	// Cards of earlier batches are staged, not yet stored.
	stagedCards, err := im.existing(ctx, `SELECT fingerprint FROM cacgate_import_cards WHERE fingerprint IN `, fingerprints)
	if err != nil {
		return nil, err
	}
	for fp := range stagedCards {
		takenCards[fp] = true
	}
	kept := make([]importRecord, 0, len(batch))
	for _, r := range batch {
		key, clash := "", error(nil)
		switch {
		case takenUsernames[r.a.Username]:
			key, clash = "username", ErrUsernameTaken
		case nonDoD(r.a) && takenKeys[r.a.Kind+":"+r.a.Key]:
			key, clash = "key", errKeyTaken
		case !nonDoD(r.a) && takenEDIPIs[r.a.EDIPI]:
			key, clash = "edipi", ErrEDIPITaken
		case anyCardIn(r.a.Cards, takenCards) || repeatsCard(r.a.Cards):
			key, clash = "card", ErrCardTaken
		}
		if key != "" {
			if im.opts.OnConflict != ImportSkip {
				return nil, &ImportError{Record: r.n, Field: key, Err: clash}
			}
			im.report.Skipped++
			if len(im.report.SkippedRecords) < im.opts.MaxListed {
				im.report.SkippedRecords = append(im.report.SkippedRecords, SkippedRecord{Record: r.n, Username: r.a.Username, Key: key})
			}
			continue
		}
		// This record is kept: later ones in the batch cannot have its keys.
		takenUsernames[r.a.Username] = true
		if nonDoD(r.a) {
			takenKeys[r.a.Kind+":"+r.a.Key] = true
		} else {
			takenEDIPIs[r.a.EDIPI] = true
		}
		for _, c := range r.a.Cards {
			takenCards[c.Fingerprint] = true
		}
		kept = append(kept, r)
	}
	return kept, nil
}

// existing returns which of keys the query, a SELECT of one column ending
// in "IN ", finds.
func (im *importer) existing(ctx context.Context, query string, keys []string) (map[string]bool, error) {
	found := map[string]bool{}
	for start := 0; start < len(keys); start += clashChunk {
		chunk := keys[start:min(start+clashChunk, len(keys))]
		rows, err := im.ex.query(ctx, query+`(`+placeholders(len(chunk))+`)`, stringArgs(chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			found[k] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func anyCardIn(cards []Card, set map[string]bool) bool {
	for _, c := range cards {
		if set[c.Fingerprint] {
			return true
		}
	}
	return false
}

// repeatsCard reports whether a record lists the same card twice.
func repeatsCard(cards []Card) bool {
	for i := range cards {
		for j := range i {
			if cards[i].Fingerprint == cards[j].Fingerprint {
				return true
			}
		}
	}
	return false
}
