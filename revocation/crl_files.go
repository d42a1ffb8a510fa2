package revocation

import (
	"bytes"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// maxCRLBytes bounds a CRL file or download. The DoD's largest CRLs are
// tens of megabytes; this leaves ample room yet refuses a runaway download
// or a path to a device file.
const maxCRLBytes = 256 << 20

// listCRLFiles expands the configured paths: a file stands for itself, a
// directory for its *.crl and *.pem files (not recursively, not dot
// files). Paths that cannot be read are reported together; the others are
// still listed.
func listCRLFiles(paths []string) ([]string, error) {
	var files []string
	var errs []error
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.IsDir() {
			files = append(files, path)
			continue
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, entry := range entries {
			name := entry.Name()
			ext := strings.ToLower(filepath.Ext(name))
			// Dot files are the partial downloads of sync tools; symlinks
			// are followed, and anything not a regular file is refused when
			// read.
			if !entry.IsDir() && !strings.HasPrefix(name, ".") && (ext == ".crl" || ext == ".pem") {
				files = append(files, filepath.Join(path, name))
			}
		}
	}
	slices.Sort(files)
	return slices.Compact(files), errors.Join(errs...)
}

// readCRLFile reads a file of at most maxCRLBytes.
func readCRLFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, info, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := readAllLimited(f, info.Size(), maxCRLBytes)
	return data, info, err
}

// readAllLimited reads r to the end, refusing more than limit bytes. A
// known size lets it allocate once: growing by doubling would briefly hold
// up to twice a large CRL.
func readAllLimited(r io.Reader, sizeHint, limit int64) ([]byte, error) {
	if sizeHint > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	var buf bytes.Buffer
	if sizeHint > 0 {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return buf.Bytes(), nil
}

// eachCRL calls fn with every DER CRL in data: data itself, or each
// "X509 CRL" block when data is PEM. Other PEM blocks are skipped.
func eachCRL(data []byte, fn func(der []byte) error) error {
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN")) {
		return fn(data)
	}
	found := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		found++
		if err := fn(block.Bytes); err != nil {
			return err
		}
	}
	if found == 0 {
		return errors.New("no X509 CRL PEM block")
	}
	return nil
}

// loadFile reads and indexes a CRL file, unless its content is what is
// already indexed and no CA it waits for has been learned since. A CRL
// whose issuer is unknown is set aside, not an error. On error the file's
// previous indexes stay in use, as they do when the file now holds an
// older CRL of the same CA and scope than the one in use (refuseOlder).
func (c *Checker) loadFile(path string) error {
	started := time.Now()
	data, info, readErr := readCRLFile(path)
	digest := sha256.Sum256(data)

	c.crls.mu.Lock()
	src := c.crls.sources[path]
	if src == nil {
		src = &crlSource{name: path}
		c.crls.sources[path] = src
	}
	src.info = info
	unchanged := readErr == nil && src.digest == digest && !src.reload && src.lastErr == nil && !src.lastSuccess.IsZero()
	src.reload = false
	if unchanged {
		src.lastSuccess = c.cfg.Now()
	}
	c.crls.mu.Unlock()
	if unchanged {
		return nil
	}

	now := c.cfg.Now()
	var indexes []*crlIndex
	var waiting [][]byte
	err := readErr
	if err == nil {
		count := 0
		err = eachCRL(data, func(der []byte) error {
			count++
			index, err := c.indexCRL(der, path, nil, now)
			var unknown *unknownIssuerError
			switch {
			case errors.As(err, &unknown):
				waiting = append(waiting, unknown.name)
				c.logger.Warn("CRL set aside", zap.String("file", path), zap.Int("crl", count), zap.Error(err))
				return nil
			case err != nil:
				return fmt.Errorf("CRL %d: %w", count, err)
			}
			indexes = append(indexes, index)
			return nil
		})
	}

	c.crls.mu.Lock()
	defer c.crls.mu.Unlock()
	if err == nil {
		// A file replaced by an older CRL (a sync job fetching over plain
		// HTTP, a restored backup) must not un-revoke certificates either.
		if err = refuseOlder(src.indexes, indexes); err != nil {
			src.refusedOlder++
		}
	}
	if err != nil {
		src.lastErr = err
		c.crlFailed(false)
		return fmt.Errorf("CRL file %s: %w", path, err)
	}
	src.indexes, src.waitingFor, src.digest = indexes, waiting, digest
	src.lastSuccess, src.lastErr = now, nil
	c.crls.publishLocked()
	for _, index := range indexes {
		c.logLoaded(index, time.Since(started), now)
	}
	return nil
}

// pollFiles reloads CRL files that changed on disk, appeared, or wait for
// a CA learned since, and forgets files that were deleted.
func (c *Checker) pollFiles() {
	files, err := listCRLFiles(c.cfg.CRLFiles)
	if err != nil {
		c.logger.Warn("cannot list CRL files", zap.Error(err))
	}
	listed := make(map[string]bool, len(files))
	for _, path := range files {
		listed[path] = true
		info, err := os.Stat(path)
		if err != nil {
			c.logger.Warn("cannot check CRL file", zap.String("file", path), zap.Error(err))
			continue
		}
		c.crls.mu.Lock()
		src := c.crls.sources[path]
		changed := src == nil || src.reload || fileChanged(src.info, info)
		c.crls.mu.Unlock()
		if !changed {
			continue
		}
		if err := c.loadFile(path); err != nil {
			c.logger.Error("CRL file not reloaded; keeping the CRLs loaded before", zap.Error(err))
		}
	}

	c.crls.mu.Lock()
	defer c.crls.mu.Unlock()
	removed := false
	for name, src := range c.crls.sources {
		if src.fetched || listed[name] {
			continue
		}
		// Only a file that is really gone is dropped; one in a directory
		// that could not be listed this time keeps serving.
		if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
			delete(c.crls.sources, name)
			removed = true
			c.logger.Warn("CRL file removed; its CRLs are no longer used", zap.String("file", name))
		}
	}
	if removed {
		c.crls.publishLocked()
	}
}

// fileChanged compares two observations of a file. Replacing a file by
// renaming another over it changes its identity even when its size and
// time happen to match.
func fileChanged(before, now os.FileInfo) bool {
	return before == nil || !os.SameFile(before, now) || !before.ModTime().Equal(now.ModTime()) || before.Size() != now.Size()
}

func (c *Checker) logLoaded(index *crlIndex, took time.Duration, now time.Time) {
	fields := []zap.Field{
		zap.String("source", index.source),
		zap.String("issuer", index.issuerName),
		zap.Int("entries", index.len()),
		zap.Int64("index_bytes", index.bytes()),
		zap.Time("this_update", index.thisUpdate),
		zap.Time("next_update", index.nextUpdate),
		zap.Duration("took", took),
	}
	if index.stale(now, c.cfg.ClockSkew) {
		c.logger.Warn("CRL loaded but stale: certificates it does not list cannot be cleared by it", fields...)
		return
	}
	c.logger.Info("CRL loaded", fields...)
}
