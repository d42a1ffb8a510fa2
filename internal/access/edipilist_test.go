package access

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseEDIPIList(t *testing.T) {
	ids, err := ParseEDIPIList(strings.NewReader("# banned after the 2026 review\n\n 1234567891 \n1234567890 # J. Doe\n1234567891\r\n\t0000000001\n# end"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 1234567890, 1234567891}; !slices.Equal(ids, want) {
		t.Fatalf("%v, want %v", ids, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"1234567890\n123456789\n", "line 2"},
		{"12345678901\n", "line 1"},
		{"123456789a\n", "line 1"},
		{"1234567890 1234567891\n", "line 1"},
		{"+123456789\n", "line 1"},
		{"１２３４５６７８９０\n", "line 1"}, // full-width digits are not ASCII
		{strings.Repeat("1", maxLineBytes+10) + "\n", "longer than"},
	} {
		if _, err := ParseEDIPIList(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.30q: error %v, want %q", tc.in, err, tc.want)
		}
	}
	if ids, err := ParseEDIPIList(strings.NewReader("")); err != nil || len(ids) != 0 {
		t.Errorf("empty file: %v %v", ids, err)
	}
}

func TestEDIPIListErrorDoesNotEchoLongContent(t *testing.T) {
	_, err := ParseEDIPIList(strings.NewReader("123-45-6789 this line is someone's private note\n"))
	if err == nil || strings.Contains(err.Error(), "private note") {
		t.Fatalf("error %v", err)
	}
}

// rewrite replaces the file's content atomically, as the README tells
// operators to (a new file moved over the old one: a watcher reading the
// file in place between its truncation and its write would load an empty
// list, which a busy machine makes likely), with its modification time
// moved forward, so the change is seen even on file systems with coarse
// times.
func rewrite(t *testing.T, path, content string, step int) {
	t.Helper()
	next := path + ".new"
	if err := os.WriteFile(next, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(time.Duration(step) * time.Second)
	if err := os.Chtimes(next, mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
}

func TestListReload(t *testing.T) {
	path := writeFile(t, "banned.txt", "1234567890\n")
	p := compile(t, r("deny", KindEDIPIFile, path), r("allow", KindGroup, "ops"))
	var reports []string
	report := func(l *List, err error) {
		if l.Path() != path {
			t.Errorf("report for %s", l.Path())
		}
		reports = append(reports, fmt.Sprint(err))
	}
	check := func(id string, wantAllowed bool) {
		t.Helper()
		d := p.Decide(&Facts{Card: true, EDIPI: id, CardEDIPI: id, Groups: []string{"ops"}})
		if d.Allowed != wantAllowed {
			t.Fatalf("%s: %+v, want allowed=%v", id, d, wantAllowed)
		}
	}
	check("1234567890", false)
	check("1234567891", true)

	// Unchanged file: nothing happens.
	gen := p.Generation()
	p.Refresh(report)
	if p.Generation() != gen || len(reports) != 0 {
		t.Fatalf("unchanged file: generation %d→%d, reports %q", gen, p.Generation(), reports)
	}

	// A good change is picked up and moves the generation.
	rewrite(t, path, "1234567891\n", 1)
	p.Refresh(report)
	if p.Generation() == gen || !slices.Equal(reports, []string{"<nil>"}) {
		t.Fatalf("after change: generation %d, reports %q", p.Generation(), reports)
	}
	check("1234567890", true)
	check("1234567891", false)

	// A bad change keeps the old list, is reported once, and does not move
	// the generation.
	gen, reports = p.Generation(), nil
	rewrite(t, path, "1234567892\nnot-an-id\n", 2)
	p.Refresh(report)
	p.Refresh(report)
	if p.Generation() != gen || len(reports) != 1 || !strings.Contains(reports[0], "line 2") || !strings.Contains(reports[0], "keeping the 1 DoD IDs") {
		t.Fatalf("bad file: generation %d→%d, reports %q", gen, p.Generation(), reports)
	}
	check("1234567891", false)
	check("1234567892", true)

	// A removed file likewise.
	reports = nil
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	p.Refresh(report)
	p.Refresh(report)
	if p.Generation() != gen || len(reports) != 1 || !strings.Contains(reports[0], "gone") {
		t.Fatalf("removed file: reports %q", reports)
	}
	check("1234567891", false)

	// Put back (by atomic rename, as a careful operator would): reloaded.
	tmp := filepath.Join(filepath.Dir(path), "banned.txt.new")
	if err := os.WriteFile(tmp, []byte("1234567892\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	p.Refresh(report)
	if p.Generation() == gen {
		t.Fatal("restored file not reloaded")
	}
	check("1234567891", true)
	check("1234567892", false)
}

func TestWatch(t *testing.T) {
	path := writeFile(t, "allowed.txt", "1234567890\n")
	p := compile(t, r("allow", KindEDIPIFile, path))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Watch(ctx, 10*time.Millisecond, nil)
	}()
	defer func() {
		cancel()
		wg.Wait() // Watch returns when the context ends
	}()
	rewrite(t, path, "1234567890\n1234567891\n", 1)
	// A minute: the watcher's goroutine may wait long for a CPU on a busy
	// machine, and only a failing test waits that long.
	deadline := time.Now().Add(time.Minute)
	for p.Generation() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not reload the changed file within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := p.Decide(&Facts{EDIPI: "1234567891"}); !d.Allowed {
		t.Fatalf("%+v", d)
	}
}

func TestWatchWithoutFilesReturns(t *testing.T) {
	done := make(chan struct{})
	go func() {
		compile(t, r("allow", KindGroup, "ops")).Watch(context.Background(), time.Millisecond, nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Watch of a policy without files did not return within a minute")
	}
}

func FuzzParseEDIPIList(f *testing.F) {
	for _, s := range []string{
		"1234567890\n", "# c\n\n1234567890 # x\n0000000000", "12345\n", "1234567890\r\n1234567890",
		"\xff\xfe1234567890", "#", "1234567890#1234567891\n 0123456789\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := ParseEDIPIList(strings.NewReader(s))
		if err != nil {
			return
		}
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Fatalf("not sorted and unique: %v", ids)
		}
		// Every line that is not blank or a comment held one of the IDs,
		// and every ID came from such a line.
		var want []uint64
		for _, line := range strings.Split(s, "\n") {
			line, _, _ = strings.Cut(line, "#")
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			if !ValidEDIPI(line) {
				t.Fatalf("accepted line %q", line)
			}
			n, _ := strconv.ParseUint(line, 10, 64)
			want = append(want, n)
		}
		slices.Sort(want)
		if want = slices.Compact(want); !slices.Equal(ids, want) {
			t.Fatalf("got %v, want %v", ids, want)
		}
		for _, id := range ids {
			if id > 9999999999 {
				t.Fatalf("id %d has more than 10 digits", id)
			}
		}
	})
}

// TestSharedListAndCheck: policies compiled with one List see one reload;
// Check reports a file that broke even after Refresh already reported it.
func TestSharedListAndCheck(t *testing.T) {
	path := writeFile(t, "banned.txt", "1234567890\n")
	shared, err := OpenList(path)
	if err != nil {
		t.Fatal(err)
	}
	opens := 0
	open := func(p string) (*List, error) {
		opens++
		if p != path {
			t.Fatalf("opened %s", p)
		}
		return shared, nil
	}
	a, err := CompileWith([]Rule{r("deny", KindEDIPIFile, path)}, open)
	if err != nil {
		t.Fatal(err)
	}
	b, err := CompileWith([]Rule{r("allow", KindGroup, "ops"), r("deny", KindEDIPIFile, path)}, open)
	if err != nil {
		t.Fatal(err)
	}
	if opens != 2 || a.Lists()[0] != shared || b.Lists()[0] != shared {
		t.Fatalf("lists not shared (%d opens)", opens)
	}
	ga, gb := a.Generation(), b.Generation()
	rewrite(t, path, "1234567891\n", 1)
	if changed, err := shared.Refresh(); !changed || err != nil {
		t.Fatalf("Refresh: %v %v", changed, err)
	}
	if a.Generation() == ga || b.Generation() == gb {
		t.Fatal("a shared list's reload did not move both policies' generations")
	}
	for _, p := range []*Policy{a, b} {
		if d := p.Decide(&Facts{EDIPI: "1234567891", Groups: []string{"ops"}}); d.Allowed {
			t.Fatalf("%+v", d)
		}
	}
	if err := shared.Check(); err != nil {
		t.Fatalf("Check of a good file: %v", err)
	}
	rewrite(t, path, "oops\n", 2)
	if _, err := shared.Refresh(); err == nil {
		t.Fatal("Refresh did not report the broken file")
	}
	if err := shared.Check(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Check of a broken file already reported: %v", err)
	}
	rewrite(t, path, "1234567892\n", 3)
	if err := shared.Check(); err != nil || !shared.Contains("1234567892") {
		t.Fatalf("Check after the fix: %v", err)
	}
}

// TestListNotLiftedByAReadMidWrite: a deny list rewritten in place can be
// caught between its truncation and its write. An empty read is applied
// only when a second look finds the file the same (an operator who really
// empties the list waits one interval longer); a file that changed while
// it was read is not used at all, and is read again next time.
func TestListNotLiftedByAReadMidWrite(t *testing.T) {
	path := writeFile(t, "banned.txt", "1234567890\n")
	l, err := OpenList(path)
	if err != nil {
		t.Fatal(err)
	}
	// Truncated, the write not yet made.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if changed, err := l.Refresh(); changed || err != nil || !l.Contains("1234567890") {
		t.Fatalf("empty at first look: changed %v, %v, still banned %v; want the list kept", changed, err, l.Contains("1234567890"))
	}
	// The write lands: the new list, never an empty one in between.
	rewrite(t, path, "1234567891\n", 1)
	if changed, err := l.Refresh(); !changed || err != nil || l.Contains("1234567890") || !l.Contains("1234567891") {
		t.Fatalf("after the write: changed %v, %v", changed, err)
	}

	// Really emptied: applied at the second look.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if changed, _ := l.Refresh(); changed || l.Len() != 1 {
		t.Fatalf("emptied, first look: changed %v, %d IDs", changed, l.Len())
	}
	if changed, _ := l.Refresh(); !changed || l.Len() != 0 {
		t.Fatalf("emptied, second look: changed %v, %d IDs; want it applied", changed, l.Len())
	}

	// Changed while being read: not used; read again next time.
	rewrite(t, path, "1234567892\n", 2)
	l.afterRead = func() { rewrite(t, path, "1234567892\n1234567893\n", 3) }
	if changed, _ := l.Refresh(); changed || l.Len() != 0 {
		t.Fatalf("changed while read: changed %v, %d IDs; want nothing applied", changed, l.Len())
	}
	l.afterRead = nil
	if changed, _ := l.Refresh(); !changed || !l.Contains("1234567893") {
		t.Fatalf("read again: changed %v, banned %v", changed, l.Contains("1234567893"))
	}
}
