package roster

import (
	"errors"
	"io"
	"slices"
	"testing"
)

type scanned struct {
	line   int
	fields []string
}

func scanAll(data string) ([]scanned, error) {
	s := newCSVScanner([]byte(data))
	var out []scanned
	for {
		line, fields, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		rec := scanned{line: line}
		for _, f := range fields {
			rec.fields = append(rec.fields, string(f))
		}
		out = append(out, rec)
	}
}

func TestCSVScanner(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []scanned
	}{
		{"LF", "a,b\nc,d\n", []scanned{{1, []string{"a", "b"}}, {2, []string{"c", "d"}}}},
		{"CRLF, no final line end", "a,b\r\nc,d", []scanned{{1, []string{"a", "b"}}, {2, []string{"c", "d"}}}},
		{"empty fields", ",a,\n", []scanned{{1, []string{"", "a", ""}}}},
		{"blank lines skipped and counted", "\n\na\r\n\r\nb\n\n", []scanned{{3, []string{"a"}}, {5, []string{"b"}}}},
		{"quoted comma and quote", `"x, ""y""",z` + "\n", []scanned{{1, []string{`x, "y"`, "z"}}}},
		{"quoted line break", "\"1\n2\r\n3\",x\ny\n", []scanned{{1, []string{"1\n2\r\n3", "x"}}, {4, []string{"y"}}}},
		{"empty quoted field", `"",""` + "\r\n", []scanned{{1, []string{"", ""}}}},
		{"quoted field at the end", `a,"b"`, []scanned{{1, []string{"a", "b"}}}},
		{"blanks kept for the loader to trim", " a , b ", []scanned{{1, []string{" a ", " b "}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAll(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b scanned) bool { return a.line == b.line && slices.Equal(a.fields, b.fields) }) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCSVScannerErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		line int
	}{
		{"quote in an unquoted field", "a\nb\"c\n", 2},
		{"never closed, reported where it opened", "a\n\"b\n\n\n", 2},
		{"text after closing quote", "\"a\"b\n", 1},
		{"space after closing quote", "\"a\" ,b\n", 1},
		{"bare CR", "a\rb\n", 1},
		{"bare CR after a quoted field", "\"a\"\rb\n", 1},
		{"after a quoted line break", "\"a\nb\"\nc\"\n", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scanAll(tt.data)
			var syntax *csvSyntaxError
			if !errors.As(err, &syntax) || syntax.line != tt.line {
				t.Fatalf("error = %v, want a syntax error on line %d", err, tt.line)
			}
		})
	}
}
