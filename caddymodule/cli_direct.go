package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/cacgate/cacgate/internal/admin"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/history"
	"github.com/cacgate/cacgate/internal/store"
)

// The CLI's direct mode works on the account database the config names,
// without a running server: the way to migrate accounts before the first
// start, and to administer when the server is down. It reads the config as
// `caddy run` would, sets up Caddy's logging from it (so audit events go
// where the server's do), and opens the cacgate app's store module itself.

// defaultConfigFile is what `caddy run` reads when given no --config.
const defaultConfigFile = "Caddyfile"

// loadCLIConfig reads and adapts the config file, as `caddy run` would:
// a file named like a Caddyfile, or given --adapter caddyfile, is adapted;
// anything else must be JSON.
func loadCLIConfig(file, adapterName string) ([]byte, string, error) {
	if file == "" {
		if _, err := os.Stat(defaultConfigFile); err != nil {
			return nil, "", errors.New("no config: give --config <Caddyfile or JSON> (or run in the directory of the Caddyfile), or --address for a running server's admin API")
		}
		file = defaultConfigFile
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, "", fmt.Errorf("reading config: %w", err)
	}
	base := strings.ToLower(filepath.Base(file))
	if adapterName == "" && filepath.Ext(base) != ".json" && (strings.HasPrefix(base, "caddyfile") || strings.HasSuffix(base, ".caddyfile")) {
		adapterName = "caddyfile"
	}
	if adapterName == "" {
		if !json.Valid(data) {
			return nil, "", fmt.Errorf("config %s is not JSON; give --adapter for another format", file)
		}
		return data, file, nil
	}
	adapter := caddyconfig.GetAdapter(adapterName)
	if adapter == nil {
		return nil, "", fmt.Errorf("unknown config adapter %q", adapterName)
	}
	adapted, _, err := adapter.Adapt(data, map[string]any{"filename": file})
	if err != nil {
		return nil, "", fmt.Errorf("adapting config %s: %w", file, err)
	}
	return adapted, file, nil
}

// usesCacgateHandler finds a cacgate handler in a config without the
// cacgate app, which the handler then loads with its defaults.
var usesCacgateHandler = regexp.MustCompile(`"handler"\s*:\s*"cacgate"`)

// cliStoreConfig holds the cacgate app's store config, for LoadModule.
type cliStoreConfig struct {
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=cacgate.stores inline_key=backend"`
	// Mail, when the config has it, lets direct-mode changes queue their
	// e-mail notices in the outbox, which the servers send.
	Mail         *MailConfig         `json:"mail,omitempty"`
	EventHistory *EventHistoryConfig `json:"event_history,omitempty"`
}

// directOptions are the direct mode's flags.
type directOptions struct {
	config, adapter string
	// createDB lets a missing SQLite database be created, which is
	// otherwise refused: a wrong --config or HOME would silently give an
	// empty database.
	createDB bool
}

// directStore is the admin service on the store the config names.
type directStore struct {
	svc *admin.Service
	// announces: the store tells running servers of changes (PostgreSQL);
	// otherwise they see them within cache_ttl.
	announces bool
	close     func() error
}

// openDirect opens the store the config names and returns the admin
// service on it, with how to close it.
func openDirect(opt directOptions) (*directStore, error) {
	cfgJSON, file, err := loadCLIConfig(opt.config, opt.adapter)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Logging *caddy.Logging             `json:"logging,omitempty"`
		Apps    map[string]json.RawMessage `json:"apps,omitempty"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	var app cliStoreConfig
	if raw, ok := cfg.Apps["cacgate"]; ok {
		if err := json.Unmarshal(raw, &app); err != nil {
			return nil, fmt.Errorf("config %s: apps.cacgate: %w", file, err)
		}
	} else if !usesCacgateHandler.Match(cfgJSON) {
		return nil, fmt.Errorf("config %s does not use cacgate", file)
	}
	if app.StoreRaw == nil {
		// What the app does without a store option.
		app.StoreRaw = json.RawMessage(`{"backend":"sqlite"}`)
	}

	// Only the config's logging is provisioned: no app is loaded and
	// nothing listens. This gives the CLI the server's log routing, so
	// its audit events land in the same sink. (ProvisionContext is marked
	// experimental in Caddy; it is what provisions logging publicly.)
	ctx, err := caddy.ProvisionContext(&caddy.Config{Logging: cfg.Logging})
	if err != nil {
		return nil, fmt.Errorf("setting up logging from %s: %w", file, err)
	}
	mod, err := ctx.LoadModule(&app, "StoreRaw")
	if err != nil {
		return nil, fmt.Errorf("loading the account store module: %w", err)
	}
	opener, ok := mod.(StoreOpener)
	if !ok {
		return nil, fmt.Errorf("store module %T cannot open a store", mod)
	}
	if path, ok := sqlitePath(mod); ok && !opt.createDB {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no account database at %s: check --config, and that HOME/XDG_DATA_HOME are the server's (or give --create-db to start a new one)", path)
		}
	}
	st, release, err := opener.OpenStore(ctx)
	if err != nil {
		if cause := store.Cause(err); cause != "" {
			return nil, fmt.Errorf("opening the account store: %s (%s): %w", store.Explain(cause), cause, err)
		}
		return nil, fmt.Errorf("opening the account store: %w", err)
	}
	auditLogger := ctx.Logger(auditLog{})
	svc := &admin.Service{Store: st, Audit: audit.New(auditLogger, ""), Logger: caddy.Log().Named("cacgate.cli"), OIDC: st}
	// The CLI's changes go to the security-event history too, as the
	// server's do, unless the config turns it off; pruning is the
	// servers' job.
	stopHistory := func() {}
	if app.EventHistory == nil || !app.EventHistory.Off {
		rec := history.New(history.Config{Store: st, Logger: caddy.Log().Named("cacgate.cli.history"), NoPrune: true})
		svc.Audit.Tap = rec.Tap
		runCtx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { rec.Run(runCtx); close(done) }()
		stopHistory = func() {
			flushCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			_ = rec.Flush(flushCtx) // what is not written by then is in the audit log
			cancel()
			<-done
		}
	}
	if app.Mail != nil {
		// Notices are queued, not sent: a running server's sender sends
		// them (the CLI does not wait for the relay).
		a := &App{Mail: app.Mail, life: &lifecycleState{}, logger: caddy.Log().Named("cacgate.cli"), audit: svc.Audit}
		if err := a.buildMail(st); err != nil {
			_ = release()
			return nil, fmt.Errorf("mail settings of %s: %w", file, err)
		}
		svc.Notify = a.adminNotify
	}
	closeFn := func() error {
		stopHistory()
		_ = auditLogger.Sync() // a console or pipe cannot sync; the entries are written
		return release()
	}
	return &directStore{svc: svc, announces: st.CanWatch(), close: closeFn}, nil
}

// sqlitePath is where an SQLite store module keeps its database, as its
// OpenStore decides it.
func sqlitePath(mod any) (string, bool) {
	var s SQLiteStore
	switch m := mod.(type) {
	case *SQLiteStore:
		s = *m
	case SQLiteStore:
		s = m
	default:
		return "", false
	}
	return s.path(), true
}
