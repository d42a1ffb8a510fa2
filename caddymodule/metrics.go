package caddymodule

import (
	"context"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cacgate/cacgate/internal/metrics"
	"github.com/cacgate/cacgate/internal/store"
)

// provisionMetrics registers the app's metrics in the config's registry.
func (a *App) provisionMetrics(ctx caddy.Context) error {
	reg := ctx.GetMetricsRegistry()
	if reg == nil {
		// Only in contexts made outside a config (tests, the CLI): keep
		// the counters working, unexported.
		reg = prometheus.NewRegistry()
	}
	a.metrics = metrics.New(reg)
	return reg.Register(metrics.NewAccountsCollector(a.countAccounts, a.logger))
}

// countAccounts is how many accounts have status s.
func (a *App) countAccounts(ctx context.Context, s store.Status) (int, error) {
	page, err := a.store.SearchAccounts(ctx, store.AccountQuery{Status: s, Limit: 1})
	if err != nil {
		return 0, err
	}
	return page.Total, nil
}
