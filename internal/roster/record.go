package roster

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Longest values accepted in a record's descriptive fields. They are
// generous for real names and organizations, and keep a hostile roster
// reply or file from filling pages and logs. A name is counted in
// characters and holds to the store's bound on an account's names (64, as
// the admin API and imports check them), so that an enrolled account
// always exports and imports back; the category and organization bounds
// in bytes are within the store's.
const (
	maxNameRunes         = 64
	maxCategoryBytes     = 64
	maxOrganizationBytes = 200
)

// maxRecordsPerEDIPI bounds the records of one person. Two is a dual
// account; more than a handful means a broken export or a broken service.
const maxRecordsPerEDIPI = 8

// cleanRecordText trims the descriptive fields of r and checks them. It
// returns "" or a problem naming the field, never its value.
func cleanRecordText(r *Record) string {
	fields := []struct {
		name     string
		value    *string
		max      int
		runes    bool // max counts characters, not bytes
		required bool
	}{
		{"category", &r.Category, maxCategoryBytes, false, true},
		{"last", &r.Last, maxNameRunes, true, true},
		{"first", &r.First, maxNameRunes, true, true},
		{"middle", &r.Middle, maxNameRunes, true, false},
		{"organization", &r.Organization, maxOrganizationBytes, false, false},
	}
	for _, f := range fields {
		*f.value = strings.TrimSpace(*f.value)
		switch v := *f.value; {
		case v == "" && f.required:
			return f.name + " is empty"
		case !f.runes && len(v) > f.max:
			return fmt.Sprintf("%s is longer than %d bytes", f.name, f.max)
		case !isPrintable(v):
			return f.name + " is not printable UTF-8 text"
		case f.runes && utf8.RuneCountInString(v) > f.max:
			return fmt.Sprintf("%s is longer than %d characters", f.name, f.max)
		}
	}
	return ""
}

// isPrintable refuses invalid UTF-8 and control, format and other
// non-printing characters, which have no business in a name and could
// forge log lines or hide characters on a page.
func isPrintable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
