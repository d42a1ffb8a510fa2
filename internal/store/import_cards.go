package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// An import stages its cards in a temporary table and stores them all at
// the end, in fingerprint order. A fingerprint is a random hash, so cards
// inserted in record order land each on a random page of the cards index:
// on SQLite that made a million-card import spend a third of its time
// splitting and rebalancing pages. In key order every card goes where the
// one before went, and the staged rows cost little, being appended to a
// table without constraints, which only this connection sees.
const (
	createImportCardsSQL = `CREATE TEMP TABLE cacgate_import_cards (
    record       BIGINT NOT NULL,
    fingerprint  TEXT   NOT NULL,
    account_id   BIGINT NOT NULL,
    subject      TEXT   NOT NULL,
    issuer       TEXT   NOT NULL,
    serial       TEXT   NOT NULL,
    not_after    BIGINT NOT NULL,
    last_used_at BIGINT
)`
	// Under ImportSkip each batch's cards are looked up among those staged.
	indexImportCardsSQL = `CREATE INDEX cacgate_import_cards_fingerprint ON cacgate_import_cards (fingerprint)`
	dropImportCardsSQL  = `DROP TABLE cacgate_import_cards`

	importStageInto = ` INTO cacgate_import_cards (record, fingerprint, account_id, subject, issuer,
serial, not_after, last_used_at) VALUES `
	importStageRow = `(?, ?, ?, ?, ?, ?, ?, ?)`

	// Each card is keyed like its account: a DoD card by the EDIPI, any
	// other by the account's credential kind and key.
	storeImportCardsSQL = ` INTO cards (fingerprint, account_id, subject, issuer, serial, not_after,
created_at, last_used_at, id_kind, id_key)
SELECT s.fingerprint, s.account_id, s.subject, s.issuer, s.serial, s.not_after, CAST(? AS BIGINT), s.last_used_at,
       (SELECT a.id_kind FROM accounts a WHERE a.id = s.account_id),
       (SELECT a.id_key FROM accounts a WHERE a.id = s.account_id)
FROM cacgate_import_cards s ORDER BY s.fingerprint`

	liftImportClearingsSQL = `DELETE FROM cleared_cards WHERE fingerprint IN (SELECT fingerprint FROM cacgate_import_cards)`

	// The first staged card that an account stored before the import
	// holds, and the first that repeats one staged by an earlier record
	// (or by the same one).
	firstCardTakenSQL = `SELECT MIN(s.record) FROM cacgate_import_cards s
WHERE EXISTS (SELECT 1 FROM cards c WHERE c.fingerprint = s.fingerprint)`
	firstCardRepeatedSQL = `SELECT MIN(record) FROM (
    SELECT record, ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY record) AS k
    FROM cacgate_import_cards) r
WHERE k > 1`

	importCardsSavepoint         = `SAVEPOINT import_cards`
	importCardsRollbackSavepoint = `ROLLBACK TO SAVEPOINT import_cards`
	importCardsReleaseSavepoint  = `RELEASE SAVEPOINT import_cards`
)

// stageCards appends the batch's cards to the staging table.
func (im *importer) stageCards(ctx context.Context, batch []importRecord, ids map[string]int64) error {
	args := im.args[:0]
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := im.execValues(ctx, &im.stageStmt, importCardChunk, importStageInto, importStageRow, n, args)
		im.staged += n
		n, args = 0, args[:0]
		return err
	}
	for _, r := range batch {
		id := ids[r.a.Username]
		for _, c := range r.a.Cards {
			args = append(args, r.n, c.Fingerprint, id, c.Subject, c.Issuer, c.Serial, c.NotAfter.Unix(), unixOrNull(c.LastUsedAt))
			if n++; n == importCardChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	err := flush()
	im.args = args
	return err
}

// storeCards moves the staged cards into the cards table, in fingerprint
// order. If a card is taken, it names the first record whose card is.
func (im *importer) storeCards(ctx context.Context) error {
	if im.staged == 0 {
		return nil
	}
	if _, err := im.ex.exec(ctx, importCardsSavepoint); err != nil {
		return err
	}
	_, insertErr := im.ex.exec(ctx, `INSERT`+storeImportCardsSQL, im.at.Unix())
	if insertErr == nil {
		_, err := im.ex.exec(ctx, importCardsReleaseSavepoint)
		return err
	}
	if _, ok := im.s.dialect.uniqueViolation(insertErr); !ok {
		return insertErr
	}
	if _, err := im.ex.exec(ctx, importCardsRollbackSavepoint); err != nil {
		return errors.Join(insertErr, err)
	}
	record, err := im.firstCardClash(ctx)
	if err != nil {
		return err
	}
	if record == 0 || im.opts.OnConflict == ImportSkip {
		// ImportSkip looked every card up before staging it: only another
		// writer can have taken one since.
		return fmt.Errorf("a card was registered by another writer during the import: %w", ErrCardTaken)
	}
	return &ImportError{Record: record, Field: "card", Err: ErrCardTaken}
}

// firstCardClash returns the number of the first record whose staged card
// is taken, by an account stored before the import or by an earlier
// record; 0 if none is.
func (im *importer) firstCardClash(ctx context.Context) (int, error) {
	first := 0
	for _, query := range []string{firstCardTakenSQL, firstCardRepeatedSQL} {
		var record sql.NullInt64
		if err := im.ex.queryRow(ctx, query).Scan(&record); err != nil {
			return 0, err
		}
		if record.Valid && (first == 0 || int(record.Int64) < first) {
			first = int(record.Int64)
		}
	}
	return first, nil
}
