package roster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const header = "edipi,ssn,fin,dob,pebd,last,first,middle,category,organization\n"

// secretSSN appears in every malformed file below, so the tests can check
// that no error repeats it.
const secretSSN = "512-34-5678"

func TestOpenCSVMalformed(t *testing.T) {
	good := "1234567890," + secretSSN + ",,1980-02-29,,DOE,JOHN,Q,Active Army,\n"
	tests := []struct {
		name     string
		content  string
		wantLine int
		want     string // in the problem
	}{
		{"empty file", "", 1, "empty"},
		{"blank lines only", "\n\r\n\n", 1, "empty"},
		{"unknown column", strings.Replace(header, "pebd", "pay_entry", 1) + good, 1, "column 5 of the header is not one of"},
		{"missing column", strings.Replace(header, ",organization", "", 1), 1, "no organization column"},
		{"repeated column", strings.Replace(header, "middle", "first", 1), 1, "names column first twice"},
		{"no header: a record first", good + good, 1, "column 1 of the header"},
		{"too few fields", header + good + "1234567891,523-45-6789,,1975-06-15,,ROE,JANE,,DA Civilian\n", 3, "9 fields, but the header has 10"},
		{"too many fields", header + "1234567891,523-45-6789,,1975-06-15,,ROE,JANE,,DA Civilian,,extra\n", 2, "11 fields"},
		{"bad date", header + good + "1234567891,523-45-6789,,1975-13-15,,ROE,JANE,,DA Civilian,\n", 3, "dob is not a date in the form YYYY-MM-DD"},
		{"US date", header + "1234567891,523-45-6789,,06/15/1975,,ROE,JANE,,DA Civilian,\n", 2, "dob is not a date"},
		{"missing dob", header + "1234567891,523-45-6789,,,,ROE,JANE,,DA Civilian,\n", 2, "dob is empty"},
		{"bad pebd", header + "1234567891,523-45-6789,,1975-06-15,2001-02-29,ROE,JANE,,DA Civilian,\n", 2, "pebd is not a date"},
		{"bad EDIPI", header + good + "123456789,523-45-6789,,1975-06-15,,ROE,JANE,,DA Civilian,\n", 3, "edipi is not a 10-digit DoD ID"},
		{"SSN and FIN both empty", header + good + "1234567891,,,1975-06-15,,ROE,JANE,,DA Civilian,\n", 3, "ssn and fin are both empty"},
		{"SSN too short", header + "1234567891,523-45-678,,1975-06-15,,ROE,JANE,,DA Civilian,\n", 2, "ssn is not 9 digits"},
		{"SSN never issued", header + "1234567891,666-12-3456,,1975-06-15,,ROE,JANE,,DA Civilian,\n", 2, "ssn is a number the SSA never issues"},
		{"bad FIN", header + "1234567891,,AB_12,1975-06-15,,ROE,JANE,,DA Civilian,\n", 2, "fin is not 1 to 12 letters and digits"},
		{"missing last name", header + "1234567891,523-45-6789,,1975-06-15,,,JANE,,DA Civilian,\n", 2, "last is empty"},
		{"missing category", header + "1234567891,523-45-6789,,1975-06-15,,ROE,JANE,,,\n", 2, "category is empty"},
		{"control character in a name", header + "1234567891,523-45-6789,,1975-06-15,,\"RO\x07E\",JANE,,DA Civilian,\n", 2, "last is not printable"},
		{"overlong organization", header + "1234567891,523-45-6789,,1975-06-15,,ROE,JANE,,DA Civilian," + strings.Repeat("X", 201) + "\n", 2, "organization is longer than 200 bytes"},
		{"repeated record", header + good + "1234567890," + secretSSN + ",,1980-02-29,,DOE,JOHN,Q,active army,\n", 3, "repeats the edipi and category of line 2"},
		{"quote inside a field", header + "1234567891,523-45-6789,,1975-06-15,,O\"ROE,JANE,,DA Civilian,\n", 2, "quote"},
		{"quoted field never closed", header + good + "1234567891,523-45-6789,,1975-06-15,,\"ROE,JANE,,DA Civilian,\n", 3, "never closed"},
		{"text after a closing quote", header + "1234567891,523-45-6789,,1975-06-15,,\"ROE\"X,JANE,,DA Civilian,\n", 2, "after the closing quote"},
		{"bare carriage return", header + "1234567891,523-45-6789,,1975-06-15,,ROE\rX,JANE,,DA Civilian,\n", 2, "carriage return"},
		{"line numbers count blank lines", header + "\n\n" + "bad,523-45-6789,,1975-06-15,,ROE,JANE,,DA Civilian,\n", 4, "edipi"},
		{"a line break in a quoted field", header + "1234567891,523-45-6789,,1975-06-15,,ROE,JANE,,DA Civilian,\"Bldg 1\nRoom 2\"\n", 2, "organization is not printable"},
		{"too many fields for any roster", header + strings.Repeat(",", 100) + "\n", 2, "more than 64 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "roster.csv")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := OpenCSV(path, nil)
			if err == nil {
				t.Fatalf("OpenCSV accepted the file (%d records)", c.Len())
			}
			var fileErr *FileError
			if !errors.As(err, &fileErr) {
				t.Fatalf("error %v is not a *FileError", err)
			}
			if fileErr.Line != tt.wantLine || !strings.Contains(fileErr.Problem, tt.want) || fileErr.Path != path {
				t.Errorf("error = %v; want line %d, a problem with %q", err, tt.wantLine, tt.want)
			}
			if want := fmt.Sprintf("%s line %d: ", path, tt.wantLine); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
			assertNoSecret(t, "error", err.Error(), secretSSN, "523-45-6789")
		})
	}
}

func TestOpenCSVTooManyRecordsForOneEDIPI(t *testing.T) {
	var rows []Row
	for i := range maxRecordsPerEDIPI + 1 {
		r := john
		r.Category = fmt.Sprintf("Category %d", i)
		rows = append(rows, r)
	}
	_, err := OpenCSV(WriteCSV(t, rows...), nil)
	var fileErr *FileError
	if !errors.As(err, &fileErr) || fileErr.Line != maxRecordsPerEDIPI+2 {
		t.Fatalf("OpenCSV = %v, want a *FileError on line %d", err, maxRecordsPerEDIPI+2)
	}
}

func TestOpenCSVFileProblems(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenCSV(filepath.Join(dir, "missing.csv"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	var fileErr *FileError
	if _, err := OpenCSV(dir, nil); !errors.As(err, &fileErr) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v, want a *FileError", err)
	}
	if _, err := OpenCSV("", nil); err == nil {
		t.Error("OpenCSV accepted an empty path")
	}
}
