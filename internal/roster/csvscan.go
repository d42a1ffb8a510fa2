package roster

import (
	"fmt"
	"io"
)

// maxCSVFields bounds the fields of one record: a roster has ten columns,
// and a line of a million commas should cost nothing.
const maxCSVFields = 64

// csvScanner splits RFC 4180 CSV into records, in place: quoted fields are
// unescaped into the buffer they were read from, and fields are slices of
// it. No value is ever copied into a string, so once the caller has
// turned the secrets into digests, clearing the one buffer erases every
// SSN the file held. encoding/csv cannot offer that: it copies each record
// into a fresh string that lingers in the heap until collected.
//
// Accepted: LF or CRLF line ends, blank lines (skipped), quoted fields with
// "" for a quote and line breaks inside. Refused, with the line number: a
// quote inside an unquoted field, text after a closing quote, a quoted
// field never closed, a carriage return not followed by a line feed, and
// more than maxCSVFields fields.
type csvScanner struct {
	data   []byte
	pos    int
	line   int // line of data[pos], 1-based
	fields [][]byte
}

// csvSyntaxError is a problem and the line it is on; the loader turns it
// into a FileError naming the file.
type csvSyntaxError struct {
	line    int
	problem string
}

func (e *csvSyntaxError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.problem) }

func newCSVScanner(data []byte) *csvScanner {
	return &csvScanner{data: data, line: 1}
}

// next returns the next record and the line it starts on, or io.EOF. The
// fields are valid until the next call.
func (s *csvScanner) next() (int, [][]byte, error) {
	s.skipBlankLines()
	if s.pos >= len(s.data) {
		return 0, nil, io.EOF
	}
	start := s.line
	s.fields = s.fields[:0]
	for {
		if len(s.fields) == maxCSVFields {
			return 0, nil, &csvSyntaxError{s.line, fmt.Sprintf("more than %d fields", maxCSVFields)}
		}
		var field []byte
		var err error
		if s.pos < len(s.data) && s.data[s.pos] == '"' {
			field, err = s.quotedField()
		} else {
			field, err = s.unquotedField()
		}
		if err != nil {
			return 0, nil, err
		}
		s.fields = append(s.fields, field)

		// The field ended at a comma, a line end or the end of the data.
		if s.pos >= len(s.data) {
			return start, s.fields, nil
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '\n':
			s.pos++
			s.line++
			return start, s.fields, nil
		case '\r':
			// Only CRLF reaches here: the field readers refuse a bare CR.
			s.pos += 2
			s.line++
			return start, s.fields, nil
		}
	}
}

// skipBlankLines passes over empty lines, which spreadsheets leave at the
// end of files.
func (s *csvScanner) skipBlankLines() {
	for s.pos < len(s.data) {
		switch {
		case s.data[s.pos] == '\n':
			s.pos++
		case s.data[s.pos] == '\r' && s.pos+1 < len(s.data) && s.data[s.pos+1] == '\n':
			s.pos += 2
		default:
			return
		}
		s.line++
	}
}

// unquotedField reads up to the next comma or line end.
func (s *csvScanner) unquotedField() ([]byte, error) {
	begin := s.pos
	for ; s.pos < len(s.data); s.pos++ {
		switch s.data[s.pos] {
		case ',', '\n':
			return s.data[begin:s.pos], nil
		case '\r':
			if s.pos+1 < len(s.data) && s.data[s.pos+1] == '\n' {
				return s.data[begin:s.pos], nil
			}
			return nil, &csvSyntaxError{s.line, "carriage return not followed by a line feed"}
		case '"':
			return nil, &csvSyntaxError{s.line, `quote (") inside a field that does not start with one; quote the whole field and double the quote`}
		}
	}
	return s.data[begin:], nil
}

// quotedField reads a field that starts with a quote, unescaping "" in
// place: the write position never passes the read position.
func (s *csvScanner) quotedField() ([]byte, error) {
	startLine := s.line
	begin := s.pos // the opening quote, overwritten by the value
	w := begin
	for r := s.pos + 1; ; {
		if r >= len(s.data) {
			return nil, &csvSyntaxError{startLine, "quoted field is never closed"}
		}
		c := s.data[r]
		if c == '"' {
			if r+1 < len(s.data) && s.data[r+1] == '"' {
				s.data[w] = '"'
				w++
				r += 2
				continue
			}
			s.pos = r + 1
			break
		}
		if c == '\n' {
			s.line++
		}
		s.data[w] = c
		w++
		r++
	}
	if s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == ',' || c == '\n':
		case c == '\r' && s.pos+1 < len(s.data) && s.data[s.pos+1] == '\n':
		default:
			return nil, &csvSyntaxError{s.line, "text after the closing quote of a field"}
		}
	}
	return s.data[begin:w], nil
}
