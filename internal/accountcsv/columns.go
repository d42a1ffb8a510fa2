package accountcsv

import (
	"fmt"
	"strings"

	"github.com/cacgate/cacgate/internal/store"
)

// Columns are the column names, in the order Writer writes them.
var Columns = []string{
	"username", "edipi", "given_name", "middle_name", "family_name", "suffix",
	"email", "affiliation", "status", "organization", "location",
	"work_address", "phone", "categories", "groups", "card_sha256",
	"credential", "key",
}

// column reads one column's cell into an account and writes it out.
type column struct {
	get func(a *store.Account) (string, error)
	set func(a *store.Account, cell string)
}

func scalar(field func(a *store.Account) *string) column {
	return column{
		get: func(a *store.Account) (string, error) { return *field(a), nil },
		set: func(a *store.Account, cell string) { *field(a) = cell },
	}
}

func list(name string, field func(a *store.Account) *[]string) column {
	return column{
		get: func(a *store.Account) (string, error) { return joinList(name, *field(a)) },
		set: func(a *store.Account, cell string) { *field(a) = splitList(cell) },
	}
}

var columns = map[string]column{
	"username":     scalar(func(a *store.Account) *string { return &a.Username }),
	"edipi":        scalar(func(a *store.Account) *string { return &a.EDIPI }),
	"given_name":   scalar(func(a *store.Account) *string { return &a.GivenName }),
	"middle_name":  scalar(func(a *store.Account) *string { return &a.MiddleName }),
	"family_name":  scalar(func(a *store.Account) *string { return &a.FamilyName }),
	"suffix":       scalar(func(a *store.Account) *string { return &a.Suffix }),
	"email":        scalar(func(a *store.Account) *string { return &a.Email }),
	"affiliation":  scalar(func(a *store.Account) *string { return &a.Affiliation }),
	"organization": scalar(func(a *store.Account) *string { return &a.Organization }),
	"location":     scalar(func(a *store.Account) *string { return &a.Location }),
	"work_address": scalar(func(a *store.Account) *string { return &a.WorkAddress }),
	"phone":        scalar(func(a *store.Account) *string { return &a.Phone }),
	"status": {
		get: func(a *store.Account) (string, error) { return string(a.Status), nil },
		set: func(a *store.Account, cell string) { a.Status = store.Status(cell) },
	},
	// credential and key: what the account is known by (see
	// store.Account.Kind). Last, so that files written before them keep
	// their column positions; empty credential reads as a DoD account
	// keyed by its edipi.
	"credential": scalar(func(a *store.Account) *string { return &a.Kind }),
	"key":        scalar(func(a *store.Account) *string { return &a.Key }),
	"categories": list("categories", func(a *store.Account) *[]string { return &a.Categories }),
	"groups":     list("groups", func(a *store.Account) *[]string { return &a.Groups }),
	"card_sha256": {
		get: func(a *store.Account) (string, error) {
			fps := make([]string, len(a.Cards))
			for i, c := range a.Cards {
				fps[i] = c.Fingerprint
			}
			return joinList("card_sha256", fps)
		},
		set: func(a *store.Account, cell string) {
			a.Cards = nil
			for _, fp := range splitList(cell) {
				a.Cards = append(a.Cards, store.Card{Fingerprint: fp})
			}
		},
	},
}

// listSeparator separates the items of a list column; listEscape, before
// a ';' or a '\' in an item, makes it an ordinary character ("Army\;
// Reserve" is the one category "Army; Reserve"). Roster categories are free
// text, so any of them must survive the trip out and back in.
const (
	listSeparator = ';'
	listEscape    = '\\'
)

// splitList reads a list cell: items separated by unescaped ';', each with
// its surrounding spaces trimmed, empty ones dropped. A '\' before
// anything but ';' or '\' is an ordinary character, as it was before
// lists had escapes.
func splitList(cell string) []string {
	var items []string
	add := func(raw string) {
		if raw = strings.TrimSpace(raw); raw != "" {
			items = append(items, unescapeItem(raw))
		}
	}
	start := 0
	for i := 0; i < len(cell); i++ {
		switch {
		case cell[i] == listEscape && i+1 < len(cell) && (cell[i+1] == listSeparator || cell[i+1] == listEscape):
			i++
		case cell[i] == listSeparator:
			add(cell[start:i])
			start = i + 1
		}
	}
	add(cell[start:])
	return items
}

// unescapeItem drops the '\' of each "\;" and "\\" in an item.
func unescapeItem(raw string) string {
	if strings.IndexByte(raw, listEscape) < 0 {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == listEscape && i+1 < len(raw) && (raw[i+1] == listSeparator || raw[i+1] == listEscape) {
			i++
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

// escapeItem puts a '\' before each ';' and '\' of an item.
func escapeItem(item string) string {
	if !strings.ContainsAny(item, string([]byte{listSeparator, listEscape})) {
		return item
	}
	var b strings.Builder
	for i := 0; i < len(item); i++ {
		if item[i] == listSeparator || item[i] == listEscape {
			b.WriteByte(listEscape)
		}
		b.WriteByte(item[i])
	}
	return b.String()
}

// joinList writes a list cell, escaping each item. It refuses an item
// Reader would not read back as it is: an empty one, or one with
// surrounding spaces (the store refuses both in categories).
func joinList(name string, items []string) (string, error) {
	var b strings.Builder
	for i, item := range items {
		if item == "" || strings.TrimSpace(item) != item {
			return "", fmt.Errorf("column %s: item %d is empty or has surrounding spaces", name, i+1)
		}
		if i > 0 {
			b.WriteByte(listSeparator)
		}
		b.WriteString(escapeItem(item))
	}
	return b.String(), nil
}

// isFormulaStart reports whether a spreadsheet would take a cell starting
// with c for a formula.
func isFormulaStart(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// unguard removes the apostrophe guard puts before a cell, and nothing else.
func unguard(cell string) string {
	if len(cell) >= 2 && cell[0] == '\'' && (isFormulaStart(cell[1]) || cell[1] == '\'') {
		return cell[1:]
	}
	return cell
}

// guard puts an apostrophe before a cell a spreadsheet would run as a
// formula, and before one unguard would otherwise alter.
func guard(cell string) string {
	if cell != "" && (isFormulaStart(cell[0]) || unguard(cell) != cell) {
		return "'" + cell
	}
	return cell
}
