package caddymodule

import (
	"context"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
)

// metrics are the gateway's Prometheus metrics, registered in the running
// config's registry (ctx.GetMetricsRegistry), so they appear on Caddy's
// admin /metrics endpoint and on any `metrics` handler next to Caddy's own.
// Every config load has a fresh registry, so each App registers its own.
//
// Label values are all from fixed sets chosen by the code (outcomes, reason
// codes, operation names), never from request data, so no client can make
// the series count grow.
type metrics struct {
	requests *prometheus.CounterVec
	// granted is requests{outcome="granted"}, resolved once: the hot path
	// pays one atomic add.
	granted prometheus.Counter

	cacheHit, cacheMiss prometheus.Counter

	storeSeconds *prometheus.HistogramVec

	enrollments *prometheus.CounterVec
	audits      *prometheus.CounterVec

	revocationChecks  *prometheus.CounterVec
	revocationSeconds *prometheus.HistogramVec

	changes *prometheus.CounterVec
}

const metricsNamespace = "cacgate"

// Request outcomes, the values of the outcome label.
const (
	outcomeGranted         = "granted"
	outcomeDenied          = "denied"
	outcomeConsentRequired = "consent_required"
	outcomeEnroll          = "enroll"
	outcomeUnavailable     = "unavailable"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "requests_total",
			Help:      "Requests the gateway decided, by outcome (granted, denied, consent_required, enroll, unavailable) and reason code.",
		}, []string{"outcome", "reason"}),
		storeSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "store_operation_duration_seconds",
			Help:      "Latency of account database operations, by operation and result (ok, not_found, error).",
			Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"operation", "result"}),
		enrollments: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "enrollments_total",
			Help:      "Self-enrollment and account events (enroll.*, card.*, password.*, signin.*) by event and outcome.",
		}, []string{"event", "outcome"}),
		audits: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "audit_events_total",
			Help:      "Audit events written, by event and outcome.",
		}, []string{"event", "outcome"}),
		revocationChecks: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "revocation_checks_total",
			Help:      "Certificate revocation checks (made when a card's cached entry is refilled), by result and the source that decided.",
		}, []string{"result", "source"}),
		revocationSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Name:      "revocation_check_duration_seconds",
			Help:      "Latency of revocation checks, by the source that decided.",
			Buckets:   []float64{.00001, .0001, .001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"source"}),
		changes: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Name:      "cache_invalidations_total",
			Help:      "Card cache invalidations, by origin: local (a change made on this node) or remote (announced by another node through the store) and resync (the change feed reconnected).",
		}, []string{"origin"}),
	}
	m.granted = m.requests.WithLabelValues(outcomeGranted, "")
	cache := f.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Name:      "card_cache_lookups_total",
		Help:      "Card-to-account cache lookups, by result: hit (served from memory) or miss (revocation status and account read again).",
	}, []string{"result"})
	m.cacheHit, m.cacheMiss = cache.WithLabelValues("hit"), cache.WithLabelValues("miss")
	return m
}

// request counts one request's outcome.
func (m *metrics) request(outcome, reason string) {
	m.requests.WithLabelValues(outcome, reason).Inc()
}

// outcomeOfStatus is the outcome label for a problem page's HTTP status.
func outcomeOfStatus(status int) string {
	switch {
	case status == 303:
		return outcomeEnroll
	case status >= 500 || status == 499:
		return outcomeUnavailable
	default:
		return outcomeDenied
	}
}

// revocationCheck records one revocation check.
func (m *metrics) revocationCheck(v revocation.Verdict, took time.Duration) {
	source := v.Source
	if source == "" {
		source = "none"
	}
	m.revocationChecks.WithLabelValues(v.Status.String(), source).Inc()
	m.revocationSeconds.WithLabelValues(source).Observe(took.Seconds())
}

// storeTimer times one store operation; call the returned func with the
// operation's error.
func (m *metrics) storeTimer(op string) func(error) {
	start := time.Now()
	return func(err error) {
		result := "ok"
		switch {
		case err == nil:
		case isNotFound(err):
			result = "not_found"
		default:
			result = "error"
		}
		m.storeSeconds.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
	}
}

// accountsCollector reports accounts by status as a gauge. Counting runs
// at scrape time, but at most every accountsCountEvery and bounded by a
// timeout, so a scraper can neither load the database nor hang the scrape.
type accountsCollector struct {
	desc   *prometheus.Desc
	count  func(ctx context.Context, s store.Status) (int, error)
	logger *zap.Logger

	mu      sync.Mutex
	at      time.Time
	counted map[store.Status]int
}

const accountsCountEvery = 30 * time.Second

func (c *accountsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *accountsCollector) Collect(ch chan<- prometheus.Metric) {
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

// provisionMetrics registers the app's metrics in the config's registry.
func (a *App) provisionMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		// Only in contexts made outside a config (tests, the CLI): keep
		// the counters working, unexported.
		reg = prometheus.NewRegistry()
	}
	a.metrics = newMetrics(reg)
	return reg.Register(&accountsCollector{
		desc: prometheus.NewDesc(metricsNamespace+"_accounts", "Accounts in the account database, by status.",
			[]string{"status"}, nil),
		count:  a.countAccounts,
		logger: a.logger,
	})
}

// countAccounts is how many accounts have status s.
func (a *App) countAccounts(ctx context.Context, s store.Status) (int, error) {
	page, err := a.store.SearchAccounts(ctx, store.AccountQuery{Status: s, Limit: 1})
	if err != nil {
		return 0, err
	}
	return page.Total, nil
}
