package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Credentials are the secrets, all of them hashed by the caller, with which
// an account's holder proves who they are without a card, or resets a
// forgotten password.
type Credentials struct {
	// PasswordHash is the current password's hash, "" if none.
	PasswordHash string
	// Answers are the security answers in the order they were set; all
	// zero if none were.
	Answers [3]Answer
	// History holds the hashes of earlier passwords, newest first, not
	// including the current one.
	History []string
}

// One statement reads the three sources, so they come from one snapshot
// whatever the database's isolation level; each row says which source it
// is from. Rows of a source come in no particular order: slot and id are
// selected to put them in order.
const (
	credentialsPassword = 0
	credentialsAnswer   = 1
	credentialsHistory  = 2

	credentialsSQL = `
SELECT 0, 0, password_hash, '' FROM accounts WHERE id = ?
UNION ALL
SELECT 1, slot, question_id, answer_hash FROM security_answers WHERE account_id = ?
UNION ALL
SELECT 2, id, hash, '' FROM password_history WHERE account_id = ?`
)

// credentials does Credentials (see observe.go).
func (s *SQLStore) credentials(ctx context.Context, accountID int64) (*Credentials, error) {
	c, err := readCredentials(ctx, s.reads(), accountID)
	if err != nil {
		return nil, fmt.Errorf("store: credentials: %w", err)
	}
	return c, nil
}

func readCredentials(ctx context.Context, ex executor, accountID int64) (*Credentials, error) {
	rows, err := ex.query(ctx, credentialsSQL, accountID, accountID, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	type retired struct {
		id   int64
		hash string
	}
	var (
		c       Credentials
		found   bool
		history []retired
	)
	for rows.Next() {
		var (
			source int
			order  int64
			x, y   string
		)
		if err := rows.Scan(&source, &order, &x, &y); err != nil {
			return nil, err
		}
		switch source {
		case credentialsPassword:
			found, c.PasswordHash = true, x
		case credentialsAnswer:
			if order < 0 || order >= int64(len(c.Answers)) {
				return nil, fmt.Errorf("security answer in slot %d", order) // the schema forbids it
			}
			c.Answers[order] = Answer{QuestionID: x, Hash: y}
		case credentialsHistory:
			history = append(history, retired{order, x})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	slices.SortFunc(history, func(a, b retired) int { return cmp.Compare(b.id, a.id) })
	for _, h := range history {
		c.History = append(c.History, h.hash)
	}
	return &c, nil
}

const (
	// The first statement of SetPassword writes the account row, which on
	// a server database locks it until the commit: a concurrent
	// SetPassword waits, and then reads the hash this one stored rather
	// than the one both started from.
	setPasswordChangedSQL = `UPDATE accounts SET password_changed_at = ?, password_reset_required_at = NULL WHERE id = ?`

	retirePasswordSQL = `
INSERT INTO password_history (account_id, hash, created_at)
SELECT id, password_hash, ? FROM accounts WHERE id = ? AND password_hash <> ''`

	setPasswordHashSQL = `UPDATE accounts SET password_hash = ? WHERE id = ?`

	trimPasswordHistorySQL = `
DELETE FROM password_history
WHERE account_id = ?
  AND id NOT IN (SELECT id FROM password_history WHERE account_id = ? ORDER BY id DESC LIMIT ?)`
)

// SetPassword implements Store.
func (s *SQLStore) SetPassword(ctx context.Context, accountID int64, hash string, keepHistory int) error {
	if hash == "" {
		return errors.New("store: set password: empty password hash")
	}
	if keepHistory < 0 {
		return fmt.Errorf("store: set password: negative history length %d", keepHistory)
	}
	at := now().Unix()
	err := s.inWriteTx(ctx, func(ex executor) error {
		if err := ex.execOne(ctx, setPasswordChangedSQL, at, accountID); err != nil {
			return err
		}
		if _, err := ex.exec(ctx, retirePasswordSQL, at, accountID); err != nil {
			return err
		}
		if _, err := ex.exec(ctx, setPasswordHashSQL, hash, accountID); err != nil {
			return err
		}
		if _, err := ex.exec(ctx, trimPasswordHistorySQL, accountID, accountID, keepHistory); err != nil {
			return err
		}
		// Other nodes drop the account's cached entries, whose change
		// time ends the password sessions signed in before it.
		return s.announce(ctx, ex, Change{AccountID: accountID})
	})
	if err != nil {
		return fmt.Errorf("store: set password: %w", s.dialect.translate(err))
	}
	return nil
}

// rehashPasswordSQL swaps the hash only if it is still the one verified,
// so a password changed in between on another node is never overwritten.
const rehashPasswordSQL = `UPDATE accounts SET password_hash = ? WHERE id = ? AND password_hash = ?`

// RehashPassword implements Store.
func (s *SQLStore) RehashPassword(ctx context.Context, accountID int64, old, new string) (bool, error) {
	if old == "" || new == "" {
		return false, errors.New("store: rehash password: empty password hash")
	}
	var n int64
	err := s.inWriteTx(ctx, func(ex executor) error {
		res, err := ex.exec(ctx, rehashPasswordSQL, new, accountID, old)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: rehash password: %w", s.dialect.translate(err))
	}
	return n == 1, nil
}

const (
	deleteAnswersSQL = `DELETE FROM security_answers WHERE account_id = ?`

	insertAnswersSQL = `
INSERT INTO security_answers (account_id, slot, question_id, answer_hash)
VALUES (?, 0, ?, ?), (?, 1, ?, ?), (?, 2, ?, ?)`
)

func insertAnswers(ctx context.Context, ex executor, accountID int64, answers [3]Answer) error {
	_, err := ex.exec(ctx, insertAnswersSQL,
		accountID, answers[0].QuestionID, answers[0].Hash,
		accountID, answers[1].QuestionID, answers[1].Hash,
		accountID, answers[2].QuestionID, answers[2].Hash,
	)
	return err
}

// SetAnswers implements Store.
func (s *SQLStore) SetAnswers(ctx context.Context, accountID int64, answers [3]Answer) error {
	err := s.inWriteTx(ctx, func(ex executor) error {
		if _, err := ex.exec(ctx, deleteAnswersSQL, accountID); err != nil {
			return err
		}
		return insertAnswers(ctx, ex, accountID, answers)
	})
	// As for cards, the foreign key decides whether the account exists.
	if s.dialect.foreignKeyViolation(err) {
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: set answers: %w", s.dialect.translate(err))
	}
	return nil
}
