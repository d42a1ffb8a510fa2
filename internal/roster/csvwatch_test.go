package roster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
)

const (
	testPoll = 10 * time.Millisecond
	// patience bounds every wait for the watcher; it normally takes a
	// few polls, but a busy machine can leave its goroutine unscheduled
	// for seconds, and only a failing test waits this long.
	patience = time.Minute
)

// eventually polls cond until it holds or patience runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(testPoll / 2)
	}
}

// startWatching starts c's watcher and stops it, waiting, when the test ends.
func startWatching(t *testing.T, c *CSV) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx, testPoll)
	t.Cleanup(func() {
		cancel()
		<-c.stopped
	})
}

func matches(t *testing.T, c *CSV, r Row) bool {
	t.Helper()
	res, err := c.Verify(context.Background(), claimFor(r))
	if err != nil {
		t.Fatal(err)
	}
	return res.Match
}

func errorLogs(logs *observer.ObservedLogs) int {
	return logs.FilterMessageSnippet("not loaded").Len()
}

func TestCSVReloadPicksUpANewRow(t *testing.T) {
	logger, logs := observed()
	path := WriteCSV(t, john)
	c, err := OpenCSV(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	startWatching(t, c)
	if matches(t, c, maria) {
		t.Fatal("maria matches before she is in the roster")
	}

	writeFile(t, path, CSVContent(john, maria))
	eventually(t, "the new row", func() bool { return c.Len() == 2 })
	if !matches(t, c, maria) || !matches(t, c, john) {
		t.Fatal("after the reload, the roster does not match both rows")
	}
	if n := logs.FilterMessage("roster loaded").Len(); n != 2 {
		t.Errorf("%d load messages, want 2 (open and reload)", n)
	}
	assertNoSecret(t, "log", logText(logs), john.SSN, maria.SSN)
}

func TestCSVReloadSeesAFileWrittenInPlace(t *testing.T) {
	path := WriteCSV(t, john)
	c, err := OpenCSV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	startWatching(t, c)
	// Not the recommended way, but a plain rewrite must be noticed too:
	// the size changes.
	if err := os.WriteFile(path, []byte(CSVContent(john, maria)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new row", func() bool { return c.Len() == 2 })
}

func TestCSVBadReloadKeepsTheOldRoster(t *testing.T) {
	logger, logs := observed()
	path := WriteCSV(t, john, maria)
	c, err := OpenCSV(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	startWatching(t, c)

	// A new export with one bad date on line 3, among rows with SSNs.
	bad := CSVContent(john, maria, hans)
	bad = strings.Replace(bad, maria.DOB, "1985-10-32", 1)
	writeFile(t, path, bad)
	eventually(t, "the error to be logged", func() bool { return errorLogs(logs) > 0 })

	if c.Len() != 2 || !matches(t, c, john) || !matches(t, c, maria) || matches(t, c, hans) {
		t.Fatalf("after a bad reload the roster changed: %d records", c.Len())
	}
	entry := logs.FilterMessageSnippet("not loaded").All()[0]
	logged := logText(logs)
	if !strings.Contains(logged, "line 3") || !strings.Contains(logged, "dob is not a date") {
		t.Errorf("the log does not say where and what: %v", entry.ContextMap())
	}
	assertNoSecret(t, "log", logged, john.SSN, maria.SSN, hans.FIN)

	// The same bad file is not reported again at every poll.
	time.Sleep(10 * testPoll)
	if n := errorLogs(logs); n != 1 {
		t.Errorf("the unchanged bad file was reported %d times, want once", n)
	}

	// Fixed, it is loaded.
	writeFile(t, path, CSVContent(john, maria, hans))
	eventually(t, "the fixed file", func() bool { return c.Len() == 3 })
	if !matches(t, c, hans) {
		t.Fatal("the fixed roster does not match its new row")
	}
}

func TestCSVMissingFileKeepsTheOldRoster(t *testing.T) {
	logger, logs := observed()
	path := WriteCSV(t, john)
	c, err := OpenCSV(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	startWatching(t, c)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the warning", func() bool { return logs.FilterMessageSnippet("cannot check").Len() > 0 })
	if !matches(t, c, john) {
		t.Fatal("the roster was dropped with its file")
	}
	time.Sleep(10 * testPoll)
	if n := logs.FilterMessageSnippet("cannot check").Len(); n != 1 {
		t.Errorf("the missing file was reported %d times, want once", n)
	}
	writeFile(t, path, CSVContent(john, maria))
	eventually(t, "the file to come back", func() bool { return c.Len() == 2 })
}

func TestCSVStartTwiceStartsOneWatcher(t *testing.T) {
	path := WriteCSV(t, john)
	c, err := OpenCSV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	startWatching(t, c)
	c.Start(context.Background(), testPoll) // does nothing, so it needs no cancel
	writeFile(t, path, CSVContent(john, maria))
	eventually(t, "the new row", func() bool { return c.Len() == 2 })
}
