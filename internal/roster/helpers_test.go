package roster

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Row is one roster record for tests. WriteCSV writes rows under the
// standard header, in its column order.
type Row struct {
	EDIPI, SSN, FIN, DOB, PEBD string
	Last, First, Middle        string
	Category, Organization     string
	CardUUID, Email            string
}

// WriteCSV writes a roster file holding rows to a new file in the test's
// temporary directory and returns its path.
func WriteCSV(t testing.TB, rows ...Row) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roster.csv")
	writeFile(t, path, CSVContent(rows...))
	return path
}

// CSVContent is the text of a roster file holding rows.
func CSVContent(rows ...Row) string {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(columnNames[:])
	for _, r := range rows {
		w.Write([]string{r.EDIPI, r.SSN, r.FIN, r.DOB, r.PEBD, r.Last, r.First, r.Middle, r.Category, r.Organization, r.CardUUID, r.Email})
	}
	w.Flush()
	return buf.String()
}

// writeFile replaces path atomically, the way the package asks ops to.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".roster-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// observed returns a logger that records everything, down to debug.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// logText renders every entry of logs, messages and fields, for searching.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, entry := range logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", entry.Level, entry.Message, entry.ContextMap())
	}
	return b.String()
}

// assertNoSecret fails if text contains any secret, with or without its
// separators: an SSN must not surface as 512-34-5678 nor as 512345678.
func assertNoSecret(t testing.TB, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		bare := strings.NewReplacer("-", "", " ", "").Replace(s)
		if s != "" && (strings.Contains(text, s) || strings.Contains(text, bare)) {
			t.Errorf("%s contains the secret %q:\n%s", where, s, text)
		}
	}
}
