package accountcsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cacgate/cacgate/internal/store"
)

// Bounds on what Reader accepts.
const (
	// MaxFieldBytes bounds one cell: ample for any field the store keeps
	// (the longest, 32 categories of 128 characters of up to 4 bytes,
	// written escaped, is about 16 KiB).
	MaxFieldBytes = 24 << 10
	// MaxRecordBytes bounds one row, quoted line breaks included.
	MaxRecordBytes = 64 << 10
)

// Error is a problem with the CSV input, placed by line and, where it
// concerns one cell, column.
type Error struct {
	Line   int    // 1-based; 0 if unknown
	Column string // column name, or "column N" for an unnamed one; may be empty
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("accountcsv: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
	}
	if e.Column != "" {
		if e.Line > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "column %s", e.Column)
	}
	if e.Line > 0 || e.Column != "" {
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

var errRecordTooLong = fmt.Errorf("row is longer than %d bytes", MaxRecordBytes)

// Reader reads accounts from CSV. Its Read method fits
// store.ImportAccounts's next parameter.
type Reader struct {
	src    *budgetReader
	csv    *csv.Reader
	fields []column // by position, from the header
	names  []string // column names by position
	err    error    // sticky: after an error Read returns it again
	line   int      // line the last record began on
}

// NewReader returns a Reader reading CSV from r, header row first.
func NewReader(r io.Reader) *Reader {
	src := &budgetReader{r: r}
	src.reset()
	cr := csv.NewReader(src)
	cr.ReuseRecord = true // each record is copied into an Account at once
	return &Reader{src: src, csv: cr}
}

// Line returns the line the record Read returned last began on (a record
// with quoted line breaks spans several lines).
func (r *Reader) Line() int { return r.line }

// Read returns the next account, or io.EOF after the last one. The account
// has only the fields the CSV carries; its cards have only fingerprints.
// Read does not check values against the store's rules (ImportAccounts
// does), only the CSV's structure and bounds.
func (r *Reader) Read() (*store.Account, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.fields == nil {
		if r.err = r.readHeader(); r.err != nil {
			return nil, r.err
		}
	}
	a, err := r.readAccount()
	if err != nil {
		r.err = err
		return nil, err
	}
	return a, nil
}

func (r *Reader) readHeader() error {
	header, err := r.record()
	if err == io.EOF {
		return &Error{Line: 1, Err: errors.New("no header row")}
	}
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, cell := range header {
		if i == 0 {
			cell = strings.TrimPrefix(cell, "\uFEFF")
		}
		name := strings.ToLower(strings.TrimSpace(cell))
		col, ok := columns[name]
		if !ok {
			// The unknown name is not echoed: it is input like any cell.
			return &Error{Line: 1, Column: fmt.Sprintf("%d", i+1), Err: fmt.Errorf("unknown column name; the columns are %s", strings.Join(Columns, ", "))}
		}
		if seen[name] {
			return &Error{Line: 1, Column: name, Err: errors.New("column appears twice")}
		}
		seen[name] = true
		r.fields = append(r.fields, col)
		r.names = append(r.names, name)
	}
	for _, required := range []string{"username", "edipi"} {
		if !seen[required] {
			return &Error{Line: 1, Column: required, Err: errors.New("required column missing from the header")}
		}
	}
	return nil
}

func (r *Reader) readAccount() (*store.Account, error) {
	cells, err := r.record()
	if err != nil {
		return nil, err
	}
	a := new(store.Account)
	for i, cell := range cells {
		if len(cell) > MaxFieldBytes {
			return nil, &Error{Line: r.line, Column: r.names[i], Err: fmt.Errorf("cell is longer than %d bytes", MaxFieldBytes)}
		}
		r.fields[i].set(a, unguard(cell))
	}
	return a, nil
}

// record reads one CSV record within the budget, translating the csv
// package's errors into ones that name the line.
func (r *Reader) record() ([]string, error) {
	r.src.reset()
	cells, err := r.csv.Read()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		switch {
		case errors.Is(err, errRecordTooLong):
			line, _ := r.csv.FieldPos(0)
			return nil, &Error{Line: max(line, r.line+1), Err: errRecordTooLong}
		case errors.As(err, &pe):
			// ParseError's own message quotes no content, but its
			// column is a byte offset; the line is what helps.
			return nil, &Error{Line: pe.Line, Err: pe.Err}
		}
		return nil, &Error{Err: err}
	}
	r.line, _ = r.csv.FieldPos(0)
	return cells, nil
}

// budgetReader fails once a record has drawn more than its share of bytes
// from the input. csv.Reader reads through a 4 KiB bufio.Reader, so a
// record draws at most its own length plus that much read-ahead; the
// budget allows both, and is renewed before each record.
type budgetReader struct {
	r    io.Reader
	left int
}

const readAhead = 4 << 10

func (b *budgetReader) reset() { b.left = MaxRecordBytes + readAhead }

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errRecordTooLong
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= n
	return n, err
}
