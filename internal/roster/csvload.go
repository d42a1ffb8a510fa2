package roster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxCSVBytes bounds a roster file. A roster of a million people is about
// 100 MB; the bound refuses a runaway export or a path to a device file.
const maxCSVBytes = 256 << 20

// errChangedWhileReading means the file was being written while it was
// read: what was read may be a partial roster, so it is not used.
var errChangedWhileReading = errors.New("the file changed while it was read; write the new roster to another file and rename it into place")

// The columns a roster file may have, in any order. All but the key
// columns (edipi, card_uuid, email) must be there, and at least one key
// column.
const (
	colEDIPI = iota
	colSSN
	colFIN
	colDOB
	colPEBD
	colLast
	colFirst
	colMiddle
	colCategory
	colOrganization
	colCardUUID
	colEmail
	numColumns
)

var columnNames = [numColumns]string{
	colEDIPI:        "edipi",
	colSSN:          "ssn",
	colFIN:          "fin",
	colDOB:          "dob",
	colPEBD:         "pebd",
	colLast:         "last",
	colFirst:        "first",
	colMiddle:       "middle",
	colCategory:     "category",
	colOrganization: "organization",
	colCardUUID:     "card_uuid",
	colEmail:        "email",
}

// isKeyColumn reports whether column c holds a key, which a header may lack.
func isKeyColumn(c int) bool { return c == colEDIPI || c == colCardUUID || c == colEmail }

// requiredColumns names the columns of the smallest header, for messages.
const requiredColumns = "edipi,ssn,fin,dob,pebd,last,first,middle,category,organization (card_uuid and email may be added, and replace edipi)"

// utf8BOM starts files saved by Excel as "CSV UTF-8".
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readRosterFile reads a regular file of at most maxCSVBytes and returns
// it with what it was when opened. The caller clears the data once parsed.
func readRosterFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, &FileError{Path: path, Problem: "not a regular file"}
	}
	if info.Size() > maxCSVBytes {
		return nil, nil, &FileError{Path: path, Problem: fmt.Sprintf("larger than %d bytes", maxCSVBytes)}
	}
	// One allocation of the known size: growing by doubling would leave
	// copies of the file, secrets and all, in memory nobody clears.
	data := make([]byte, info.Size())
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		clear(data)
		return nil, nil, err
	}
	data = data[:n]
	var extra [1]byte
	grew, _ := f.Read(extra[:])
	clear(extra[:])
	after, err := os.Stat(path)
	if err != nil || grew > 0 || n != int(info.Size()) || fileChanged(info, after) {
		clear(data)
		return nil, nil, fmt.Errorf("roster: %s: %w", path, errChangedWhileReading)
	}
	return data, info, nil
}

// parseRoster builds an index from the content of a roster file. Errors
// are *FileError naming the line and the problem, never a cell's value.
// data is modified (quoted fields are unescaped in place); the caller
// clears it afterwards.
func parseRoster(path string, data []byte) (*index, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	scanner := newCSVScanner(data)
	fail := func(line int, format string, args ...any) error {
		return &FileError{Path: path, Line: line, Problem: fmt.Sprintf(format, args...)}
	}

	line, header, err := scanner.next()
	if err == io.EOF {
		return nil, fail(1, "the file is empty; the first line must be the header %s", requiredColumns)
	}
	if err != nil {
		return nil, syntaxFileError(path, err)
	}
	cols, problem := parseHeader(header)
	if problem != "" {
		return nil, fail(line, "%s", problem)
	}

	width := len(header)
	x := &index{key: newMACKey(), byEDIPI: make(map[string][]entry),
		byUUID: make(map[string][]entry), byEmail: make(map[string][]entry)}
	// firstLine remembers where each (key, category) was seen, to refuse
	// a repeated record: it would become a second, identical account.
	firstLine := make(map[string]int)
	for {
		line, fields, err := scanner.next()
		if err == io.EOF {
			return x, nil
		}
		if err != nil {
			return nil, syntaxFileError(path, err)
		}
		if len(fields) != width {
			return nil, fail(line, "%d fields, but the header has %d", len(fields), width)
		}
		e, problem := parseRow(x.key, fields, &cols)
		if problem != "" {
			return nil, fail(line, "%s", problem)
		}
		keys := []struct {
			kind  KeyKind
			value string
			m     map[string][]entry
		}{
			{KeyEDIPI, e.record.EDIPI, x.byEDIPI},
			{KeyCardUUID, e.record.CardUUID, x.byUUID},
			{KeyEmail, e.record.Email, x.byEmail},
		}
		for _, k := range keys {
			if k.value == "" {
				continue
			}
			seen := string(k.kind) + "\x00" + k.value + "\x00" + strings.ToLower(e.record.Category)
			if first, ok := firstLine[seen]; ok {
				return nil, fail(line, "repeats the %s and category of line %d", k.kind, first)
			}
			firstLine[seen] = line
			if len(k.m[k.value]) == maxRecordsPerEDIPI {
				return nil, fail(line, "more than %d records for one %s", maxRecordsPerEDIPI, k.kind)
			}
		}
		for _, k := range keys {
			if k.value != "" {
				k.m[k.value] = append(k.m[k.value], e)
			}
		}
		x.records++
	}
}

func syntaxFileError(path string, err error) error {
	var syntax *csvSyntaxError
	if errors.As(err, &syntax) {
		return &FileError{Path: path, Line: syntax.line, Problem: syntax.problem}
	}
	return &FileError{Path: path, Problem: err.Error()}
}

// parseHeader maps each column to its position. Names are matched without
// regard to case or surrounding blanks. A problem never quotes a header
// cell: in a file that lacks its header, the first line is a record.
func parseHeader(header [][]byte) (cols [numColumns]int, problem string) {
	for i := range cols {
		cols[i] = -1
	}
	for pos, cell := range header {
		name := string(trimBlanks(cell))
		col := -1
		for c, want := range columnNames {
			if strings.EqualFold(name, want) {
				col = c
			}
		}
		switch {
		case col < 0:
			return cols, fmt.Sprintf("column %d of the header is not one of %s (is the header line missing?)", pos+1, strings.Join(columnNames[:], ","))
		case cols[col] >= 0:
			return cols, fmt.Sprintf("the header names column %s twice", columnNames[col])
		}
		cols[col] = pos
	}
	for c, pos := range cols {
		if pos < 0 && !isKeyColumn(c) {
			return cols, fmt.Sprintf("the header has no %s column", columnNames[c])
		}
	}
	if cols[colEDIPI] < 0 && cols[colCardUUID] < 0 && cols[colEmail] < 0 {
		return cols, "the header has no edipi column (nor a card_uuid or email column)"
	}
	return cols, ""
}

// parseRow turns one record's fields into an entry. The secrets are
// normalized into fixed buffers, digested with key, and wiped.
func parseRow(key *macKey, fields [][]byte, cols *[numColumns]int) (entry, string) {
	field := func(c int) []byte {
		if cols[c] < 0 {
			return nil
		}
		return trimBlanks(fields[cols[c]])
	}
	var e entry

	// Keys are not secrets: they are on the card, and in the account.
	e.record.EDIPI = string(field(colEDIPI))
	if e.record.EDIPI != "" && !isEDIPI(e.record.EDIPI) {
		return entry{}, "edipi is not a 10-digit DoD ID"
	}
	var ok bool
	if u := string(field(colCardUUID)); u != "" {
		if e.record.CardUUID, ok = normalizeKey(KeyCardUUID, u); !ok {
			return entry{}, "card_uuid is not a UUID (8-4-4-4-12 hexadecimal digits)"
		}
	}
	if m := string(field(colEmail)); m != "" {
		if e.record.Email, ok = normalizeKey(KeyEmail, m); !ok {
			return entry{}, "email is not an e-mail address"
		}
	}
	if e.record.EDIPI == "" && e.record.CardUUID == "" && e.record.Email == "" {
		return entry{}, "edipi, card_uuid and email are all empty; a record needs one of them"
	}

	var value secret
	defer value.wipe()
	ssn, fin := field(colSSN), field(colFIN)
	if len(ssn) == 0 && len(fin) == 0 {
		return entry{}, "ssn and fin are both empty; a record needs one of them"
	}
	if len(ssn) > 0 {
		if err := parseSSN(ssn, &value); err != nil {
			return entry{}, "ssn is " + err.Error()
		}
		e.ssn, e.hasSSN = key.sum(labelSSN, value.bytes()), 1
	}
	if len(fin) > 0 {
		if err := parseFIN(fin, &value); err != nil {
			return entry{}, "fin is " + err.Error()
		}
		e.fin, e.hasFIN = key.sum(labelFIN, value.bytes()), 1
	}
	if len(field(colDOB)) == 0 {
		return entry{}, "dob is empty"
	}
	if err := parseDate(field(colDOB), &value); err != nil {
		return entry{}, "dob is " + err.Error()
	}
	e.dob = key.sum(labelDOB, value.bytes())
	if pebd := field(colPEBD); len(pebd) > 0 {
		if err := parseDate(pebd, &value); err != nil {
			return entry{}, "pebd is " + err.Error()
		}
		e.pebd, e.hasPEBD = key.sum(labelPEBD, value.bytes()), 1
	}

	e.record.Last = string(field(colLast))
	e.record.First = string(field(colFirst))
	e.record.Middle = string(field(colMiddle))
	e.record.Category = string(field(colCategory))
	e.record.Organization = string(field(colOrganization))
	if problem := cleanRecordText(&e.record); problem != "" {
		return entry{}, problem
	}
	return e, ""
}

// fileChanged compares two observations of a file. Replacing a file by
// renaming another over it changes its identity even when its size and
// time happen to match.
func fileChanged(before, now os.FileInfo) bool {
	return before == nil || !os.SameFile(before, now) || !before.ModTime().Equal(now.ModTime()) || before.Size() != now.Size()
}
