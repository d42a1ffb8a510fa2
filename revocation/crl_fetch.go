package revocation

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
)

const (
	// refreshPoint is the fraction of a CRL's thisUpdate..nextUpdate window
	// after which its successor is fetched, leaving the last fifth for
	// retries before it goes stale.
	refreshPoint = 0.8
	// republishPollInterval is how often a distribution point is asked
	// again once its CRL is past the refresh point but the CA has not
	// published a newer one yet.
	republishPollInterval = 5 * time.Minute
	// maxFetchBackoff caps the exponential backoff after failed fetches,
	// which starts at retryInterval.
	maxFetchBackoff = 30 * time.Minute
)

// fetchDue fetches every distribution point whose time has come, one at a
// time: parsing two large CRLs at once would double the memory peak, and
// nothing waits on these fetches.
func (c *Checker) fetchDue(ctx context.Context) {
	now := c.cfg.Now()
	var due []*crlSource
	c.crls.mu.Lock()
	for _, src := range c.crls.sources {
		if src.fetched && !src.nextFetch.After(now) {
			due = append(due, src)
		}
	}
	c.crls.mu.Unlock()
	for _, src := range due {
		if ctx.Err() != nil {
			return
		}
		c.fetchSource(ctx, src)
	}
}

// nextFetchDue returns when fetchDue next has work, or false if never.
func (c *Checker) nextFetchDue() (time.Time, bool) {
	c.crls.mu.Lock()
	defer c.crls.mu.Unlock()
	var next time.Time
	for _, src := range c.crls.sources {
		if src.fetched && (next.IsZero() || src.nextFetch.Before(next)) {
			next = src.nextFetch
		}
	}
	return next, !next.IsZero()
}

// fetchSource downloads and indexes one distribution point's CRL,
// replacing the previous index only once the new one is built, and never
// with an older CRL of the same CA and scope (refuseOlder).
func (c *Checker) fetchSource(ctx context.Context, src *crlSource) {
	started := time.Now()
	c.crls.mu.Lock()
	url, fetchedFor := src.name, src.fetchedFor
	validators := conditionalHeaders{etag: src.etag, lastModified: src.lastModified}
	if len(src.indexes) == 0 {
		validators = conditionalHeaders{} // nothing to fall back on: insist on a body
	}
	current := src.digest
	c.crls.mu.Unlock()

	data, received, err := c.download(ctx, url, validators)
	now := c.cfg.Now()
	var indexes []*crlIndex
	var digest [32]byte
	changed := false
	if err == nil && data != nil {
		digest = sha256.Sum256(data)
		if digest != current {
			changed = true
			indexes, err = c.indexDownloaded(data, url, fetchedFor, now)
		}
	}

	c.crls.mu.Lock()
	defer c.crls.mu.Unlock()
	if err == nil && changed {
		err = refuseOlder(src.indexes, indexes)
	}
	var older *olderCRLError
	if errors.As(err, &older) {
		// Not a CRL to use, but no reason to keep asking either: retried
		// with backoff like a failed fetch, while the newer CRL serves.
		src.refusedOlder++
		src.failures++
		src.lastErr = err
		c.crlFailed(true)
		src.nextFetch = now.Add(fetchBackoff(src.failures))
		c.logger.Warn("CRL download refused: older than the CRL in use (replayed by someone on the path, or a lagging mirror); keeping the newer CRL",
			zap.String("url", url), zap.String("issuer", older.next.issuerName),
			zap.Time("this_update", older.next.thisUpdate), zap.String("number", crlNumberText(older.next.number)),
			zap.Time("in_use_this_update", older.current.thisUpdate), zap.String("in_use_number", crlNumberText(older.current.number)),
			zap.Int("refused", src.refusedOlder), zap.Time("retry_at", src.nextFetch))
		return
	}
	if err != nil {
		src.failures++
		src.lastErr = err
		c.crlFailed(true)
		src.nextFetch = now.Add(fetchBackoff(src.failures))
		fields := []zap.Field{zap.String("url", url), zap.Int("failures", src.failures), zap.Time("retry_at", src.nextFetch), zap.Error(err)}
		if len(src.indexes) > 0 {
			c.logger.Warn("CRL fetch failed; keeping the CRL fetched before", fields...)
		} else {
			c.logger.Warn("CRL fetch failed", fields...)
		}
		return
	}
	if changed {
		src.indexes, src.digest = indexes, digest
		c.crls.publishLocked()
		for _, index := range indexes {
			c.logLoaded(index, time.Since(started), now)
		}
	}
	src.etag, src.lastModified = received.etag, received.lastModified
	src.failures, src.lastErr, src.lastSuccess = 0, nil, now
	src.nextFetch = nextFetchTime(src.indexes, now)
}

// indexDownloaded indexes every CRL in a download. Unlike a file, a
// download whose issuer is unknown is an error: it was verified against the
// CA that named the URL, so it is not that CA's CRL.
func (c *Checker) indexDownloaded(data []byte, url string, fetchedFor *issuer, now time.Time) ([]*crlIndex, error) {
	var indexes []*crlIndex
	err := eachCRL(data, func(der []byte) error {
		index, err := c.indexCRL(der, url, fetchedFor, now)
		if err != nil {
			return err
		}
		indexes = append(indexes, index)
		return nil
	})
	return indexes, err
}

// conditionalHeaders are the HTTP validators of the last download, so an
// unchanged CRL of tens of megabytes is not downloaded again.
type conditionalHeaders struct {
	etag, lastModified string
}

// download GETs a CRL within CRLTimeout. A nil body with a nil error means
// the server answered 304 Not Modified.
func (c *Checker) download(ctx context.Context, url string, validators conditionalHeaders) ([]byte, conditionalHeaders, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CRLTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, validators, err
	}
	if validators.etag != "" {
		req.Header.Set("If-None-Match", validators.etag)
	}
	if validators.lastModified != "" {
		req.Header.Set("If-Modified-Since", validators.lastModified)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, validators, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && validators != (conditionalHeaders{}):
		return nil, validators, nil
	case resp.StatusCode != http.StatusOK:
		return nil, validators, fmt.Errorf("HTTP status %s", resp.Status)
	}
	data, err := readAllLimited(resp.Body, resp.ContentLength, maxCRLBytes)
	if err != nil {
		return nil, validators, fmt.Errorf("reading CRL: %w", err)
	}
	if len(data) == 0 {
		return nil, validators, errors.New("empty response")
	}
	return data, conditionalHeaders{etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
}

// nextFetchTime schedules the next download at the refresh point of the
// CRL that goes stale first, or soon if that point has passed.
func nextFetchTime(indexes []*crlIndex, now time.Time) time.Time {
	var next time.Time
	for _, index := range indexes {
		window := index.nextUpdate.Sub(index.thisUpdate)
		at := index.thisUpdate.Add(time.Duration(float64(window) * refreshPoint))
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() || !next.After(now) {
		return now.Add(republishPollInterval)
	}
	return next
}

// fetchBackoff doubles the retry delay with each consecutive failure.
func fetchBackoff(failures int) time.Duration {
	delay := retryInterval
	for i := 1; i < failures && delay < maxFetchBackoff; i++ {
		delay *= 2
	}
	return min(delay, maxFetchBackoff)
}
