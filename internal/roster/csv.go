package roster

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// CSV is a roster read from a CSV file that ops export from the
// authoritative personnel system. The file's header names the columns
//
//	edipi,ssn,fin,dob,pebd,last,first,middle,category,organization
//
// in any order (names are matched regardless of case), and may add the
// columns card_uuid and email, the keys of non-DoD credentials: a federal
// PIV or PIV-I holder's record is found by the UUID of their card, an ECA
// holder's by the e-mail address in their certificate. A file with one of
// those columns may leave out the edipi column. Each following line is one
// personnel record with at least one key; two lines with one key are a
// dual account (at most 8 records per key, each of another category: a
// repeated key and category would be issued twice, so the file is
// refused).
// Dates are YYYY-MM-DD. The ssn may be empty when the fin is set (foreign
// nationals); fin, pebd, middle and organization may be empty. The PEBD is
// compared only when the claim carries one (the site asks for it).
//
// The file is RFC 4180 CSV in UTF-8, as spreadsheets save it: LF or CRLF
// line ends, an optional byte order mark, blank lines ignored, blanks
// around values trimmed, at most 256 MiB.
//
// The records are held in memory with their SSN, FIN, DOB and PEBD as
// keyed digests only; the file's bytes are erased once parsed.
type CSV struct {
	path    string
	logger  *zap.Logger
	current atomic.Pointer[index]

	// The watcher's state: set by OpenCSV, then touched only by the
	// watcher goroutine.
	loadedInfo os.FileInfo // the file that the roster in use was read from
	failedInfo os.FileInfo // the file as it was when it last failed to load
	statFailed bool        // the last poll could not stat the file

	started atomic.Bool
	stopped chan struct{} // closed when the watcher returns
}

// OpenCSV reads the roster at path now. A file that cannot be read or is
// malformed is an error; for a malformed file, a *FileError naming the
// line and the problem, but never a value from the file. logger may be nil.
func OpenCSV(path string, logger *zap.Logger) (*CSV, error) {
	if path == "" {
		return nil, errors.New("roster: no CSV file given")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	c := &CSV{path: path, logger: logger, stopped: make(chan struct{})}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Verify implements Source. The roster is in memory, so it answers at
// once; it returns ErrUnavailable only when ctx is already done.
func (c *CSV) Verify(ctx context.Context, claim Claim) (Result, error) {
	var n normalizedClaim
	defer n.wipe()
	if err := n.parse(claim, time.Now()); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, unavailable("verification abandoned", err)
	}
	return c.current.Load().verify(&n), nil
}

// NeedsPEBD implements Source: PEBDRequired when a record of edipi has a
// PEBD, PEBDNotAsked otherwise, for an EDIPI the roster does not know too
// (the package documentation says why).
func (c *CSV) NeedsPEBD(_ context.Context, edipi string) (PEBDNeed, error) {
	if c.current.Load().needsPEBD(KeyEDIPI, edipi) {
		return PEBDRequired, nil
	}
	return PEBDNotAsked, nil
}

// Lookup implements KeyedSource: Known when the roster in use has a record
// of the card UUID or e-mail address, the PEBD asked as NeedsPEBD asks it.
// A key that is not well formed is not known.
func (c *CSV) Lookup(_ context.Context, kind KeyKind, value string) (Presence, error) {
	value, ok := normalizeKey(kind, value)
	if !ok {
		return Presence{}, nil
	}
	x := c.current.Load()
	if len(x.entries(kind, value)) == 0 {
		return Presence{}, nil
	}
	p := Presence{Known: true}
	if x.needsPEBD(kind, value) {
		p.PEBD = PEBDRequired
	}
	return p, nil
}

// Len returns the number of records (lines) in the roster in use.
func (c *CSV) Len() int { return c.current.Load().records }

// load reads and parses the file and, if it is good, puts it in use.
func (c *CSV) load() error {
	started := time.Now()
	data, info, err := readRosterFile(c.path)
	if err != nil {
		return err
	}
	defer clear(data)
	x, err := parseRoster(c.path, data)
	if err != nil {
		return err
	}
	c.current.Store(x)
	c.loadedInfo = info
	c.logger.Info("roster loaded",
		zap.String("file", c.path),
		zap.Int("records", x.records),
		zap.Int("edipis", len(x.byEDIPI)),
		zap.Int("card_uuids", len(x.byUUID)),
		zap.Int("emails", len(x.byEmail)),
		zap.Duration("took", time.Since(started)))
	return nil
}
