package caddymodule

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/accountcsv"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/store"
)

// Bulk account transfer: import from CSV (migrating a legacy app's users)
// and export to CSV. The audit trail records counts and record numbers,
// never the records themselves.

const (
	eventImport = "admin.import"
	eventExport = "admin.export"

	// exportCountTrailer carries the number of accounts exported, after
	// the CSV: a client that does not see it has an incomplete export.
	exportCountTrailer = "Cacgate-Export-Accounts"
)

// maxImportBody bounds an import through the admin API: about 200,000
// accounts. Larger migrations run the CLI on the database directly. A
// variable so tests can lower it.
var maxImportBody int64 = 64 << 20

// ImportReportJSON is what an import stored.
type ImportReportJSON struct {
	OnConflict string `json:"on_conflict"`
	Records    int    `json:"records"`  // records read
	Imported   int    `json:"imported"` // accounts stored
	Cards      int    `json:"cards"`    // cards stored with them
	Skipped    int    `json:"skipped"`  // records skipped (on_conflict skip)
	// SkippedRecords lists the first skipped records.
	SkippedRecords []SkippedRecordJSON `json:"skipped_records,omitempty"`
}

// SkippedRecordJSON is one record an import skipped.
type SkippedRecordJSON struct {
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
	return 0, "", badRequest(errors.New(`on_conflict must be "fail" or "skip"`))
}

// Import stores the accounts of a CSV file in one transaction: an invalid
// record stores nothing and is named by its number; a record whose
// username, DoD ID or card exists fails the import or, with on_conflict
// "skip", is skipped. source names the input in the audit trail (a file
// name, or "admin API").
func (o *adminOps) Import(ctx context.Context, who adminActor, in io.Reader, onConflict, source string) (ImportReportJSON, error) {
	fields := []zap.Field{zap.String("source", source)}
	mode, modeName, err := parseOnConflict(onConflict)
	if err != nil {
		return ImportReportJSON{}, o.fail(who, eventImport, err, fields...)
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
	report, err := o.store.ImportAccounts(ctx, next, store.ImportOptions{OnConflict: mode})
	if err != nil {
		var ie *store.ImportError
		if errors.As(err, &ie) {
			fields = append(fields, zap.Int("failed_record", ie.Record))
		}
		err = o.importError(err, lines)
		return ImportReportJSON{}, o.fail(who, eventImport, err, append(fields, zap.Int("records", records))...)
	}
	out := ImportReportJSON{
		OnConflict: modeName, Records: records, Imported: report.Imported, Cards: report.Cards, Skipped: report.Skipped,
	}
	for _, s := range report.SkippedRecords {
		sr := SkippedRecordJSON{Record: s.Record, Username: s.Username, Taken: s.Key}
		if s.Record >= 1 && s.Record <= len(lines) {
			sr.Line = lines[s.Record-1]
		}
		out.SkippedRecords = append(out.SkippedRecords, sr)
	}
	if out.Imported > 0 {
		o.changed()
	}
	skipped := make([]int, 0, len(report.SkippedRecords))
	for _, s := range report.SkippedRecords {
		skipped = append(skipped, s.Record)
	}
	o.record(who, eventImport, audit.Success, append(fields, zap.Int("records", records), zap.Int("imported", out.Imported),
		zap.Int("cards", out.Cards), zap.Int("skipped", out.Skipped), zap.Ints("skipped_records", skipped))...)
	return out, nil
}

// importError says why an import failed, by record number (and line), in
// the store's words, which never quote the record.
func (o *adminOps) importError(err error, lines []int) error {
	var ie *store.ImportError
	if !errors.As(err, &ie) {
		if errors.Is(err, context.DeadlineExceeded) {
			return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: errors.New("the import did not finish in time; nothing was stored (run large imports with the CLI on the database)")}
		}
		return o.storeError(err, "")
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
		return caddy.APIError{HTTPStatus: http.StatusConflict, Err: fmt.Errorf("%w (on_conflict skip skips such records)", msg)}
	case errors.Is(ie.Err, store.ErrInvalidAccount), errors.As(ie.Err, new(*accountcsv.Error)), errors.As(ie.Err, new(*csv.ParseError)):
		return caddy.APIError{HTTPStatus: http.StatusUnprocessableEntity, Err: msg}
	}
	return o.storeError(err, "")
}

// Export writes every account, with its cards and groups, as CSV to w (no
// password hashes or security answers: the store's Account has none). It
// returns how many accounts it wrote.
func (o *adminOps) Export(ctx context.Context, who adminActor, w io.Writer) (int, error) {
	cw := accountcsv.NewWriter(w)
	n := 0
	err := o.store.ExportAccounts(ctx, func(a *store.Account) error {
		if err := cw.Write(a); err != nil {
			return err
		}
		n++
		return nil
	})
	if err == nil {
		err = cw.Flush()
	}
	if err != nil {
		o.record(who, eventExport, audit.Failure, zap.Int("accounts", n), zap.String("reason", "error"))
		o.log.Error("account export failed", zap.Int("accounts_written", n), zap.Error(err))
		return n, fmt.Errorf("export stopped after %d accounts: %w", n, err)
	}
	o.record(who, eventExport, audit.Success, zap.Int("accounts", n))
	return n, nil
}

func adminImportAccounts(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
	fields := []zap.Field{zap.String("source", "admin API")}
	for k, v := range r.URL.Query() {
		if k != "on_conflict" || len(v) > 1 {
			return ops.fail(who, eventImport, badRequest(fmt.Errorf("unknown or repeated query parameter %q (only on_conflict)", clip(k, 40))), fields...)
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/csv") {
		return ops.fail(who, eventImport, caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: errors.New("send the accounts as Content-Type: text/csv")}, fields...)
	}
	// Read it all before the import's transaction begins, so a slow client
	// cannot hold the database's write lock.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = caddy.APIError{HTTPStatus: http.StatusRequestEntityTooLarge,
				Err: fmt.Errorf("CSV larger than %d MiB: import it with the CLI on the database instead", maxImportBody>>20)}
		} else {
			err = badRequest(fmt.Errorf("reading the CSV: %w", err))
		}
		return ops.fail(who, eventImport, err, fields...)
	}
	report, err := ops.Import(r.Context(), who, bytes.NewReader(body), r.URL.Query().Get("on_conflict"), "admin API")
	if err != nil {
		return err
	}
	return writeAdminJSON(w, http.StatusOK, report)
}

func adminExportAccounts(ops *adminOps, who adminActor, w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.Query()) > 0 {
		return badRequest(errors.New("export takes no query parameters"))
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="cacgate-accounts-`+time.Now().UTC().Format("20060102")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", exportCountTrailer)
	sw := &startedWriter{w: w}
	n, err := ops.Export(r.Context(), who, sw)
	if err != nil {
		if !sw.started {
			// Nothing sent yet: answer with an error instead.
			h.Del("Trailer")
			h.Del("Content-Disposition")
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: errors.New("the export failed (details in the log)")}
		}
		// Part of the CSV is out: break the connection, so the client
		// sees a failed transfer rather than a short file.
		panic(http.ErrAbortHandler)
	}
	h.Set(exportCountTrailer, strconv.Itoa(n))
	return nil
}

// startedWriter remembers whether anything reached the client.
type startedWriter struct {
	w       io.Writer
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		s.started = true
	}
	return s.w.Write(p)
}
