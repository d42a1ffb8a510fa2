package access

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MaxListBytes bounds an edipi_file: 64 MiB is about five million DoD IDs
// with comments, far more than any site's list.
const MaxListBytes = 64 << 20

// maxLineBytes bounds one line (an ID and a comment).
const maxLineBytes = 4096

// ParseEDIPIList reads a list of DoD IDs: one per line, blank lines and
// everything after a '#' ignored, surrounding spaces trimmed; every other
// line must be exactly 10 digits. Repeats are allowed. The result is sorted
// without repeats. Errors name the line, not its content beyond a short
// prefix (the file is the operator's, but errors reach logs).
func ParseEDIPIList(r io.Reader) ([]uint64, error) {
	sc := bufio.NewScanner(io.LimitReader(r, MaxListBytes+1))
	sc.Buffer(make([]byte, 0, 512), maxLineBytes)
	var ids []uint64
	total, line := 0, 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		total += len(raw) + 1
		if total > MaxListBytes+1 {
			return nil, fmt.Errorf("file is larger than %d MiB", MaxListBytes>>20)
		}
		if i := bytes.IndexByte(raw, '#'); i >= 0 {
			raw = raw[:i]
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if !ValidEDIPI(string(raw)) {
			return nil, fmt.Errorf("line %d: %q is not a 10-digit DoD ID", line, truncate(string(raw), 16))
		}
		n, _ := strconv.ParseUint(string(raw), 10, 64) // 10 digits always fit
		ids = append(ids, n)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, maxLineBytes)
		}
		return nil, err
	}
	if total > MaxListBytes {
		return nil, fmt.Errorf("file is larger than %d MiB", MaxListBytes>>20)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// List is an edipi_file: the DoD IDs in a file, reloaded by Refresh when
// the file changes. A reload that fails (unreadable, malformed, removed)
// keeps the list it had and reports why once per change of the file.
type List struct {
	path string
	ids  atomic.Pointer[[]uint64]
	gen  atomic.Uint64 // moves with every reload that changed the list

	mu sync.Mutex // serializes Refresh
	// stamp is the state of the file the list (or the last failed reload)
	// was read from: a Refresh that finds the same does nothing. failed is
	// why that version of the file could not be used, nil if it was.
	stamp  fileStamp
	failed error
	// emptied is the version of the file, found empty while the list
	// held IDs, that waits for a second look before it is applied.
	emptied fileStamp
	// afterRead, if set (by tests), runs between reading the file and
	// checking that it did not change meanwhile.
	afterRead func()
}

// fileStamp identifies a version of a file by what stat reports: a rewrite
// in place changes the modification time or size, an atomic rename the
// file's identity.
type fileStamp struct {
	info    os.FileInfo
	modTime time.Time
	size    int64
	missing bool
}

func stampOf(info os.FileInfo, err error) fileStamp {
	if err != nil {
		return fileStamp{missing: true}
	}
	return fileStamp{info: info, modTime: info.ModTime(), size: info.Size()}
}

func (a fileStamp) same(b fileStamp) bool {
	if a.missing || b.missing {
		return a.missing == b.missing
	}
	return a.modTime.Equal(b.modTime) && a.size == b.size && os.SameFile(a.info, b.info)
}

// OpenList loads the file; unlike a reload, a first load that fails is an
// error (a config naming an unreadable list must not start).
func OpenList(path string) (*List, error) {
	l := &List{path: path}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("edipi_file %s: %w", path, err)
	}
	ids, err := readList(path)
	if err != nil {
		return nil, fmt.Errorf("edipi_file %s: %w", path, err)
	}
	l.ids.Store(&ids)
	l.stamp = stampOf(info, nil)
	return l, nil
}

func readList(path string) ([]uint64, error) {
	// Stat before opening: opening a FIFO would block the reload.
	if info, err := os.Stat(path); err != nil {
		return nil, err
	} else if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseEDIPIList(f)
}

// Path is the file's path.
func (l *List) Path() string { return l.path }

// Len is the number of distinct DoD IDs in the current list.
func (l *List) Len() int { return len(*l.ids.Load()) }

// Contains reports whether the 10-digit DoD ID id is on the list.
func (l *List) Contains(id string) bool {
	if !ValidEDIPI(id) {
		return false
	}
	n, _ := strconv.ParseUint(id, 10, 64)
	_, found := slices.BinarySearch(*l.ids.Load(), n)
	return found
}

// Refresh stats the file and reloads it if it changed. changed reports a
// new list in place; err a reload that failed (the old list stays), only
// the first time a given version of the file fails.
//
// A deny list must not lapse because it was read mid-write: a file that
// changed while it was read is not used (it is read again next time), and
// a file found empty while the list held IDs (a rewrite in place caught
// between its truncation and its write) is applied only if the next
// Refresh finds it still the same.
func (l *List) Refresh() (changed bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := stampOf(os.Stat(l.path))
	if st.same(l.stamp) {
		return false, nil
	}
	l.stamp = st
	if st.missing {
		l.failed = fmt.Errorf("edipi_file %s: file is gone; keeping the %d DoD IDs loaded before", l.path, l.Len())
		return false, l.failed
	}
	ids, err := readList(l.path)
	if err != nil {
		l.failed = fmt.Errorf("edipi_file %s: %w; keeping the %d DoD IDs loaded before", l.path, err, l.Len())
		return false, l.failed
	}
	l.failed = nil
	if l.afterRead != nil {
		l.afterRead()
	}
	// Re-stat: a file rewritten while it was read is read again next
	// time rather than trusted now.
	if after := stampOf(os.Stat(l.path)); !after.same(st) {
		l.stamp = fileStamp{}
		return false, nil
	}
	if len(ids) == 0 && l.Len() > 0 && !l.emptied.same(st) {
		l.emptied, l.stamp = st, fileStamp{}
		return false, nil
	}
	l.emptied = fileStamp{}
	l.ids.Store(&ids)
	l.gen.Add(1)
	return true, nil
}

// Check refreshes the list and reports whether the file as it is now
// could not be loaded (even if that was reported before): for a new
// config that takes over a list already loaded, which must not start on a
// file that has since broken.
func (l *List) Check() error {
	l.Refresh()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Generation moves whenever the list reloads with new content.
func (l *List) Generation() uint64 { return l.gen.Load() }

// Watch calls Refresh every interval until ctx is done.
func (l *List) Watch(ctx context.Context, interval time.Duration, report func(l *List, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if changed, err := l.Refresh(); (changed || err != nil) && report != nil {
				report(l, err)
			}
		}
	}
}

// Generation changes whenever an edipi_file of the policy reloads, so a
// decision cached with the generation it was made at can tell it is stale.
// It is the sum of the lists' generations (each only grows), so lists may
// be shared between policies and reloaded by whoever watches them.
func (p *Policy) Generation() uint64 {
	var g uint64
	for _, l := range p.lists {
		g += l.gen.Load()
	}
	return g
}

// Lists are the policy's edipi_file lists.
func (p *Policy) Lists() []*List { return p.lists }

// Refresh checks every edipi_file of the policy once (a stat each),
// reloading those that changed. report is called for each reload, with
// the error of a failed one (the old list stays in place).
func (p *Policy) Refresh(report func(l *List, err error)) {
	for _, l := range p.lists {
		if changed, err := l.Refresh(); (changed || err != nil) && report != nil {
			report(l, err)
		}
	}
}

// Watch calls Refresh every interval until ctx is done. It returns at once
// when the policy has no files.
func (p *Policy) Watch(ctx context.Context, interval time.Duration, report func(l *List, err error)) {
	if len(p.lists) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Refresh(report)
		}
	}
}
