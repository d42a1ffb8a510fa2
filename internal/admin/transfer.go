package admin

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/accountcsv"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// Bulk account transfer: import from CSV (migrating a legacy app's users)
// and export to CSV. The audit trail records counts and record numbers,
// never the records themselves.

// ExportCountTrailer is the HTTP trailer that carries the number of
// accounts exported, after the CSV: a client that does not see it has an
// incomplete export.
const ExportCountTrailer = "Cacgate-Export-Accounts"

// ImportReport is what an import stored.
type ImportReport struct {
	OnConflict string `json:"on_conflict"`
	Records    int    `json:"records"`  // records read
	Imported   int    `json:"imported"` // accounts stored
	Cards      int    `json:"cards"`    // cards stored with them
	Skipped    int    `json:"skipped"`  // records skipped (on_conflict skip)
	// SkippedRecords lists the first skipped records.
	SkippedRecords []SkippedRecord `json:"skipped_records,omitempty"`
}

// SkippedRecord is one record an import skipped.
type SkippedRecord struct {
	Record   int    `json:"record"`         // 1-based, not counting the header
	Line     int    `json:"line,omitempty"` // line in the file where it starts
	Username string `json:"username"`
	Taken    string `json:"taken"` // what already existed: username, edipi or card
}

// parseOnConflict reads the on_conflict option.
func parseOnConflict(s string) (store.ImportConflict, string, error) {
	switch s {
	case "", "fail":
		return store.ImportFail, "fail", nil
	case "skip":
		return store.ImportSkip, "skip", nil
	}
	return 0, "", BadRequest(errors.New(`on_conflict must be "fail" or "skip"`))
}

// Import stores the accounts of a CSV file in one transaction: an invalid
// record stores nothing and is named by its number; a record whose
// username, DoD ID or card exists fails the import or, with on_conflict
// "skip", is skipped. source names the input in the audit trail (a file
// name, or "admin API").
func (s *Service) Import(ctx context.Context, who Actor, in io.Reader, onConflict, source string) (ImportReport, error) {
	fields := []zap.Field{zap.String("source", source)}
	mode, modeName, err := parseOnConflict(onConflict)
	if err != nil {
		return ImportReport{}, s.fail(who, EventImport, err, fields...)
	}
	fields = append(fields, zap.String("on_conflict", modeName))
	rd := accountcsv.NewReader(in)
	records := 0
	var lines []int // where each record starts, for the report
	next := func() (*store.Account, error) {
		a, err := rd.Read()
		if err != nil {
			return nil, err
		}
		records++
		lines = append(lines, rd.Line())
		return a, nil
	}
	report, err := s.Store.ImportAccounts(ctx, next, store.ImportOptions{OnConflict: mode})
	if err != nil {
		var ie *store.ImportError
		if errors.As(err, &ie) {
			fields = append(fields, zap.Int("failed_record", ie.Record))
		}
		err = s.importError(err, lines)
		return ImportReport{}, s.fail(who, EventImport, err, append(fields, zap.Int("records", records))...)
	}
	out := ImportReport{
		OnConflict: modeName, Records: records, Imported: report.Imported, Cards: report.Cards, Skipped: report.Skipped,
	}
	for _, s := range report.SkippedRecords {
		sr := SkippedRecord{Record: s.Record, Username: s.Username, Taken: s.Key}
		if s.Record >= 1 && s.Record <= len(lines) {
			sr.Line = lines[s.Record-1]
		}
		out.SkippedRecords = append(out.SkippedRecords, sr)
	}
	if out.Imported > 0 {
		s.changed()
	}
	skipped := make([]int, 0, len(report.SkippedRecords))
	for _, s := range report.SkippedRecords {
		skipped = append(skipped, s.Record)
	}
	s.record(who, EventImport, audit.Success, append(fields, zap.Int("records", records), zap.Int("imported", out.Imported),
		zap.Int("cards", out.Cards), zap.Int("skipped", out.Skipped), zap.Ints("skipped_records", skipped))...)
	return out, nil
}

// importError says why an import failed, by record number (and line), in
// the store's words, which never quote the record.
func (s *Service) importError(err error, lines []int) error {
	var ie *store.ImportError
	if !errors.As(err, &ie) {
		if errors.Is(err, context.DeadlineExceeded) {
			return &Error{Status: http.StatusServiceUnavailable, Cause: store.CauseTimeout,
				Err: errors.New("the import did not finish in time; nothing was stored (run large imports with the CLI on the database)")}
		}
		return s.storeError(err, "")
	}
	var ce *accountcsv.Error
	if errors.As(ie.Err, &ce) {
		// A fault in the file itself: placed by line (and column).
		text := strings.TrimPrefix(ce.Error(), "accountcsv: ")
		if ce.Line <= 1 {
			return unprocessable(fmt.Errorf("CSV header, %s; nothing was imported", text))
		}
		return unprocessable(fmt.Errorf("record %d, CSV %s; nothing was imported", ie.Record, text))
	}
	where := fmt.Sprintf("record %d", ie.Record)
	if ie.Record >= 1 && ie.Record <= len(lines) {
		where += fmt.Sprintf(" (line %d)", lines[ie.Record-1])
	}
	if ie.Field != "" {
		where += ", " + ie.Field
	}
	msg := fmt.Errorf("%s: %w; nothing was imported", where, ie.Err)
	switch {
	case errors.Is(ie.Err, store.ErrUsernameTaken), errors.Is(ie.Err, store.ErrEDIPITaken), errors.Is(ie.Err, store.ErrCardTaken):
		return &Error{Status: http.StatusConflict, Err: fmt.Errorf("%w (on_conflict skip skips such records)", msg)}
	case errors.Is(ie.Err, store.ErrInvalidAccount), errors.As(ie.Err, new(*accountcsv.Error)), errors.As(ie.Err, new(*csv.ParseError)):
		return &Error{Status: http.StatusUnprocessableEntity, Err: msg}
	}
	return s.storeError(err, "")
}

// Export writes every account, with its cards and groups, as CSV to w (no
// password hashes or security answers: the store's Account has none). It
// returns how many accounts it wrote.
func (s *Service) Export(ctx context.Context, who Actor, w io.Writer) (int, error) {
	cw := accountcsv.NewWriter(w)
	n := 0
	err := s.Store.ExportAccounts(ctx, func(a *store.Account) error {
		if err := cw.Write(a); err != nil {
			return outputError{err}
		}
		n++
		return nil
	})
	if err == nil {
		if err = cw.Flush(); err != nil {
			err = outputError{err}
		}
	}
	if err != nil {
		s.logger().Error("account export failed", zap.Int("accounts_written", n), zap.Error(err))
		if !errors.As(err, new(outputError)) && store.Unavailable(err) {
			// The database, not the output (a client gone), failed:
			// say why.
			err = Unavailable(store.Cause(err))
		}
		s.fail(who, EventExport, err, zap.Int("accounts", n))
		return n, fmt.Errorf("export stopped after %d accounts: %w", n, err)
	}
	s.record(who, EventExport, audit.Success, zap.Int("accounts", n))
	return n, nil
}

// outputError is an export's failure to write its output, which is not
// the database's (a broken connection to the client looks alike).
type outputError struct{ err error }

func (e outputError) Error() string { return "writing the export: " + e.err.Error() }
func (e outputError) Unwrap() error { return e.err }

// RefuseImport audits an import refused before it read its input (the
// admin API's request was not CSV, or too large) and returns err. source
// names the input, as for Import.
func (s *Service) RefuseImport(who Actor, source string, err error) error {
	return s.fail(who, EventImport, err, zap.String("source", source))
}
