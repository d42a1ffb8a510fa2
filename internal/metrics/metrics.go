// Package metrics holds the gateway's Prometheus metrics. They are
// registered in whatever registry the host gives (Caddy's per-config
// registry, so they appear on the admin /metrics endpoint next to Caddy's
// own); nothing here knows about Caddy.
//
// Label values are all from fixed sets chosen by the code (outcomes, reason
// codes, operation names), never from request data, so no client can make
// the series count grow.
package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/credential"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
)

// Metrics are the gateway's metrics. Every config load has a fresh
// registry, so each load makes its own.
type Metrics struct {
	Requests *prometheus.CounterVec
	// granted is requests{outcome="granted"}, resolved once: the hot path
	// pays one atomic add.
	Granted prometheus.Counter

	CacheHit, CacheMiss, CacheKept prometheus.Counter

	StoreSeconds *prometheus.HistogramVec

	Enrollments *prometheus.CounterVec
	Audits      *prometheus.CounterVec
	// HistoryDropped counts audit entries the security-event history in
	// the account database did not keep (queue full, database down).
	HistoryDropped prometheus.Counter

	RevocationChecks  *prometheus.CounterVec
	RevocationSeconds *prometheus.HistogramVec
	// CRLErrors counts CRL files and downloads refused, by origin.
	CRLErrors *prometheus.CounterVec

	Changes *prometheus.CounterVec
	// FeedConnected and FeedResync describe the change feed of a store
	// that has one (PostgreSQL); they are registered by ChangeFeed, so a
	// node without a feed does not export a feed that looks down.
	FeedConnected prometheus.Gauge
	FeedResync    prometheus.Gauge
	reg           prometheus.Registerer

	// HashWait is how long password and answer hashes waited for a
	// hasher slot; HashRejections the hashes turned away (hash_queue,
	// hash_wait).
	HashWait       *prometheus.HistogramVec
	HashRejections *prometheus.CounterVec
}

const Namespace = "cacgate"

// Request outcomes, the values of the outcome label.
const (
	Granted         = "granted"
	Denied          = "denied"
	ConsentRequired = "consent_required"
	Enroll          = "enroll"
	Unavailable     = "unavailable"
)

// New makes the metrics and registers them in reg.
func New(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "requests_total",
			Help:      "Requests the gateway decided, by outcome (granted, denied, consent_required, enroll, unavailable) and reason code.",
		}, []string{"outcome", "reason"}),
		StoreSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "store_operation_duration_seconds",
			Help:      "Latency of account database operations, by operation and result (ok, not_found, error).",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"operation", "result"}),
		Enrollments: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "enrollments_total",
			Help:      "Self-enrollment and account events (enroll.*, card.*, password.*, signin.*) by event and outcome.",
		}, []string{"event", "outcome"}),
		Audits: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "audit_events_total",
			Help:      "Audit events written, by event and outcome.",
		}, []string{"event", "outcome"}),
		HistoryDropped: f.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "history_dropped_total",
			Help:      "Audit events not kept in the account database's security-event history (queue full or database unavailable); the audit log has them.",
		}),
		RevocationChecks: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "revocation_checks_total",
			Help:      "Certificate revocation checks (made when a card's cached entry is refilled), by result and the source that decided.",
		}, []string{"result", "source"}),
		RevocationSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "revocation_check_duration_seconds",
			Help:      "Latency of revocation checks, by the source that decided.",
			Buckets:   []float64{.00001, .0001, .001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
		CRLErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "crl_errors_total",
			Help:      "CRLs refused, by origin (file: a crl_files file, at start-up or when it changed; download: a distribution point fetch): unreadable, malformed, not conforming to RFC 5280 (no or critical CRL number), badly signed or older than the CRL in use. The CA's cards then get no CRL status from it.",
		}, []string{"origin"}),
		Changes: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "cache_invalidations_total",
			Help:      "Card cache invalidations, by origin: local (a change made on this node), remote (announced by another node through the store) and resync (the change feed reconnected after losing its connection).",
		}, []string{"origin"}),
		FeedConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "change_feed_connected",
			Help:      "1 while this node listens for the account changes other nodes announce, 0 while it is (re)connecting: meanwhile cached cards are re-checked against the database every second.",
		}),
		FeedResync: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "change_feed_last_resync_timestamp_seconds",
			Help:      "When the change feed last started listening (Unix time): the card cache was dropped then.",
		}),
		reg: reg,
		HashWait: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "hash_wait_seconds",
			Help:      "How long password and security-answer hashes waited for a hasher slot (hash_concurrency), by priority (interactive: sign-in and other checks of a typed secret; enrollment).",
			Buckets:   []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"priority"}),
		HashRejections: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "hash_rejections_total",
			Help:      "Password and security-answer hashes turned away (the request answered 503), by kind (queue_full: hash_queue waiting already; wait_timeout: waited hash_wait) and priority.",
		}, []string{"kind", "priority"}),
	}
	m.Granted = m.Requests.WithLabelValues(Granted, "")
	cache := f.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "card_cache_lookups_total",
		Help:      "Card-to-account cache lookups, by result: hit (served from memory), miss (revocation status and account read again) or kept (a re-check called for by a change feed outage could not reach the database, so the cached entry, still within cache_ttl, was used).",
	}, []string{"result"})
	m.CacheHit, m.CacheMiss, m.CacheKept = cache.WithLabelValues("hit"), cache.WithLabelValues("miss"), cache.WithLabelValues("kept")
	return m
}

// ChangeFeed registers the change feed's gauges, for a node whose store
// has a feed.
func (m *Metrics) ChangeFeed() {
	if m.reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{m.FeedConnected, m.FeedResync} {
		// The only error is AlreadyRegisteredError: a second feed on one
		// config's metrics, which then shares the gauges.
		_ = m.reg.Register(c)
	}
}

// Request counts one request's outcome.
func (m *Metrics) Request(outcome, reason string) {
	m.Requests.WithLabelValues(outcome, reason).Inc()
}

// Audited counts one audit event written (audit.Log's Counted hook), and
// account events once more by themselves.
func (m *Metrics) Audited(event, outcome string) {
	m.Audits.WithLabelValues(event, outcome).Inc()
	if audit.AccountEvent(event) {
		m.Enrollments.WithLabelValues(event, outcome).Inc()
	}
}

// HistoryDroppedOne counts one entry the security-event history did not keep.
func (m *Metrics) HistoryDroppedOne() { m.HistoryDropped.Inc() }

// RevocationCheck records one revocation check.
func (m *Metrics) RevocationCheck(v revocation.Verdict, took time.Duration) {
	source := v.Source
	if source == "" {
		source = "none"
	}
	m.RevocationChecks.WithLabelValues(v.Status.String(), source).Inc()
	m.RevocationSeconds.WithLabelValues(source).Observe(took.Seconds())
}

// CRLRefused counts one CRL file (fetched false) or download refused (the
// revocation checker's OnCRLError hook).
func (m *Metrics) CRLRefused(fetched bool) {
	origin := "file"
	if fetched {
		origin = "download"
	}
	m.CRLErrors.WithLabelValues(origin).Inc()
}

// CRLSourcesFailing exports failing, read at scrape time, as the gauge of
// CRL files and distribution points whose last load or fetch was refused.
func (m *Metrics) CRLSourcesFailing(failing func() int) {
	if m.reg == nil {
		return
	}
	// The only error is AlreadyRegisteredError: a second checker on one
	// config's metrics, which there is not.
	_ = m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "crl_sources_failing",
		Help:      "CRL files and distribution points whose last load or fetch was refused (see `caddy cacgate revocation` for why): their CAs' cards get no CRL status from them until a good CRL arrives.",
	}, func() float64 { return float64(failing()) }))
}

// HashWaited records how long a hash of priority p waited for a slot (the
// hasher's Queue.Waited hook).
func (m *Metrics) HashWaited(p credential.Priority, waited time.Duration) {
	m.HashWait.WithLabelValues(p.String()).Observe(waited.Seconds())
}

// HashRejected counts a hash turned away (the hasher's Queue.Rejected
// hook).
func (m *Metrics) HashRejected(p credential.Priority, kind string) {
	m.HashRejections.WithLabelValues(kind, p.String()).Inc()
}

// StoreOperation records one account database operation (the store's
// Observe hook).
func (m *Metrics) StoreOperation(op string, took time.Duration, err error) {
	{
		result := "ok"
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			result = "not_found"
		default:
			result = "error"
		}
		m.StoreSeconds.WithLabelValues(op, result).Observe(took.Seconds())
	}
}

// AccountsCollector reports accounts by status as a gauge. Counting runs
// at scrape time, but at most every accountsCountEvery and bounded by a
// timeout, so a scraper can neither load the database nor hang the scrape.
type AccountsCollector struct {
	desc   *prometheus.Desc
	count  func(ctx context.Context, s store.Status) (int, error)
	logger *zap.Logger

	mu      sync.Mutex
	at      time.Time
	counted map[store.Status]int
}

const accountsCountEvery = 30 * time.Second

// NewAccountsCollector reports the accounts count tells, by status, as the
// cacgate_accounts gauge.
func NewAccountsCollector(count func(ctx context.Context, s store.Status) (int, error), logger *zap.Logger) *AccountsCollector {
	return &AccountsCollector{
		desc:   prometheus.NewDesc(Namespace+"_accounts", "Accounts in the account database, by status.", []string{"status"}, nil),
		count:  count,
		logger: logger,
	}
}

func (c *AccountsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *AccountsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counted == nil || time.Since(c.at) >= accountsCountEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		counted := make(map[store.Status]int, 3)
		var err error
		for _, s := range []store.Status{store.StatusActive, store.StatusPending, store.StatusDisabled} {
			if counted[s], err = c.count(ctx, s); err != nil {
				break
			}
		}
		cancel()
		if err != nil {
			// Report nothing rather than a wrong number; the scrape
			// goes on with every other metric.
			c.logger.Warn("counting accounts for metrics", zap.Error(err))
			if c.counted == nil {
				return
			}
		} else {
			c.counted, c.at = counted, time.Now()
		}
	}
	for s, n := range c.counted {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(s))
	}
}

// TrustBundleReloads is the counter of trust bundle changes, by result
// (changed: new files loaded and in use; refused: new files failed to
// load, the last good bundle kept). Every cacgate_bundle of a config
// shares it.
func TrustBundleReloads(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "trust_bundle_reloads_total",
		Help:      "Changes of a cacgate_bundle trust source's files, by result: changed (loaded and in use) or refused (failed to load; the last good bundle kept).",
	}, []string{"result"})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, err
	}
	return c, nil
}
