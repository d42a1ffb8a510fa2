package accountcsv

import (
	"encoding/csv"
	"fmt"
	"io"

	"github.com/cacgate/cacgate/internal/store"
)

// Writer writes accounts as CSV with every column of Columns, in that
// order, guarding cells against spreadsheet formulas (see the package
// documentation). Its Write method fits store.ExportAccounts's fn
// parameter. Call Flush at the end: it writes the header even when there
// were no accounts, and reports any error.
type Writer struct {
	csv      *csv.Writer
	header   bool
	accounts int
	row      []string
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{csv: csv.NewWriter(w), row: make([]string, len(Columns))}
}

// Write writes one account. A ';' or '\' in a list item is escaped with a
// '\'. An account whose list items Reader could not read back (an empty
// one, or one with surrounding spaces, which the store never holds) is
// refused, naming the column, and nothing of it is written.
func (w *Writer) Write(a *store.Account) error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	w.accounts++
	for i, name := range Columns {
		cell, err := columns[name].get(a)
		if err != nil {
			return fmt.Errorf("accountcsv: account %d (%s): %w", w.accounts, a.Username, err)
		}
		w.row[i] = guard(cell)
	}
	return w.csv.Write(w.row)
}

func (w *Writer) writeHeader() error {
	if w.header {
		return nil
	}
	w.header = true
	return w.csv.Write(Columns)
}

// Flush writes the header if no account was written, and everything
// buffered to the underlying writer.
func (w *Writer) Flush() error {
	if err := w.writeHeader(); err != nil {
		return err
	}
	w.csv.Flush()
	return w.csv.Error()
}
