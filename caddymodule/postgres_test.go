package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cacgate/cacgate/internal/pgtest"
	"github.com/cacgate/cacgate/internal/store"
)

func TestPostgresStoreCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want PostgresStore
	}{
		{`postgres {env.CACGATE_PG_DSN}`, PostgresStore{DSN: "{env.CACGATE_PG_DSN}"}},
		{`postgres "host=db user=cacgate"`, PostgresStore{DSN: "host=db user=cacgate"}},
		{`postgres {
			dsn {file./run/secrets/pg}
			max_conns 20
			max_idle_conns 5
			conn_max_lifetime 1h
			conn_max_idle_time 2m
			connect_timeout 3s
		}`, PostgresStore{
			DSN: "{file./run/secrets/pg}", MaxConns: 20, MaxIdleConns: 5,
			ConnMaxLifetime: caddy.Duration(time.Hour), ConnMaxIdleTime: caddy.Duration(2 * time.Minute),
			ConnectTimeout: caddy.Duration(3 * time.Second),
		}},
		{`postgres {env.DSN} {
			max_conns 4
		}`, PostgresStore{DSN: "{env.DSN}", MaxConns: 4}},
	} {
		var got PostgresStore
		if err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.src)); err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%q parsed as %+v, want %+v", tc.src, got, tc.want)
		}
	}
}

func TestPostgresStoreCaddyfileErrors(t *testing.T) {
	for _, src := range []string{
		`postgres`,
		`postgres {
		}`,
		`postgres a b`,
		`postgres a {
			dsn b
		}`,
		`postgres {
			dsn a
			dsn b
		}`,
		`postgres {
			dsn
		}`,
		`postgres a {
			max_conns 0
		}`,
		`postgres a {
			max_conns lots
		}`,
		`postgres a {
			max_conns 2
			max_conns 3
		}`,
		`postgres a {
			max_idle_conns -1
		}`,
		`postgres a {
			conn_max_lifetime forever
		}`,
		`postgres a {
			connect_timeout 0s
		}`,
		`postgres a {
			conn_max_idle_time 1m 2m
		}`,
		`postgres a {
			password hunter2
		}`,
	} {
		var s PostgresStore
		if err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
}

func TestPostgresStoreValidate(t *testing.T) {
	for _, s := range []PostgresStore{
		{},
		{DSN: "x", MaxConns: -1},
		{DSN: "x", MaxIdleConns: -1},
		{DSN: "x", ConnMaxLifetime: -1},
		{DSN: "x", ConnMaxIdleTime: -1},
		{DSN: "x", ConnectTimeout: -1},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v passed validation", s)
		}
	}
	if err := (&PostgresStore{DSN: "{env.X}"}).Validate(); err != nil {
		t.Error(err)
	}
}

func newStoreContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// The DSN comes from the environment or a file, the way a secret should,
// and the store opened through the module works and follows changes.
func TestPostgresStoreOpensWithPlaceholders(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	secret := filepath.Join(t.TempDir(), "pg-dsn")
	if err := os.WriteFile(secret, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CACGATE_TEST_PG_DSN", dsn)

	for _, configured := range []string{"{env.CACGATE_TEST_PG_DSN}", "{file." + secret + "}"} {
		t.Run(configured, func(t *testing.T) {
			ctx := newStoreContext(t)
			mod := PostgresStore{DSN: configured, MaxConns: 2}
			if err := mod.Validate(); err != nil {
				t.Fatal(err)
			}
			st, release, err := mod.OpenStore(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			if !st.CanWatch() {
				t.Fatalf("store %T cannot follow changes", st)
			}
			key, err := st.EnsureSecret(ctx, "test-key", func() ([]byte, error) { return []byte("k"), nil })
			if err != nil || string(key) != "k" {
				t.Errorf("EnsureSecret = %q, %v", key, err)
			}
		})
	}
}

func TestPostgresStoreOpenErrors(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	t.Setenv("CACGATE_TEST_EMPTY", "")
	for _, tc := range []struct {
		dsn, want string
	}{
		{"{env.CACGATE_TEST_UNSET_DSN}", "empty"},
		{"{env.CACGATE_TEST_EMPTY}", "empty"},
		{"{file./nonexistent/cacgate/pg-dsn}", "empty"},
		{"postgres://cacgate:" + secret + "/oops@127.0.0.1/cacgate", "cannot be parsed"},
		{"postgres://cacgate:" + secret + "@127.0.0.1:1/cacgate?sslmode=disable&connect_timeout=2", "database cacgate on 127.0.0.1"},
	} {
		_, _, err := PostgresStore{DSN: tc.dsn}.OpenStore(newStoreContext(t))
		if err == nil {
			t.Errorf("OpenStore(%q) succeeded", tc.dsn)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenStore(%q) = %v, want an error saying %q", tc.dsn, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("OpenStore(%q) error quotes the password: %v", tc.dsn, err)
		}
	}
}

func TestPostgresLogFieldsOmitPassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	config, err := store.ParsePostgresDSN("postgres://cacgate:" + secret + "@db.example.mil:5433/accounts?sslmode=verify-full")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("opening account database", postgresLogFields(config, store.PostgresOptions{MaxOpenConns: 10})...)
	entry := logs.All()[0]
	fields := entry.ContextMap()
	for key, want := range map[string]any{"host": "db.example.mil", "port": uint16(5433), "database": "accounts", "user": "cacgate"} {
		if fields[key] != want {
			t.Errorf("logged %s = %v, want %v", key, fields[key], want)
		}
	}
	for key, v := range fields {
		if s, ok := v.(string); ok && strings.Contains(s, secret) {
			t.Errorf("logged %s contains the password", key)
		}
	}
}

// TestPostgresStoreSharedAcrossReloads: a second config opening the same
// database with the same settings (a reload) shares the first one's pool
// instead of opening another beside it; the pool closes with its last user.
func TestPostgresStoreSharedAcrossReloads(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	mod := PostgresStore{DSN: dsn, MaxConns: 2}
	old, releaseOld, err := mod.OpenStore(newStoreContext(t))
	if err != nil {
		t.Fatal(err)
	}
	reloaded, releaseReloaded, err := mod.OpenStore(newStoreContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if old != reloaded {
		t.Fatal("the reload opened a second pool")
	}
	other, releaseOther, err := PostgresStore{DSN: dsn, MaxConns: 3}.OpenStore(newStoreContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer releaseOther()
	if other == old {
		t.Fatal("different pool settings share one pool")
	}
	// The old config goes: the reloaded one keeps working, and letting
	// go of the old use twice changes nothing.
	if err := releaseOld(); err != nil {
		t.Fatal(err)
	}
	releaseOld()
	ctx := context.Background()
	if _, err := reloaded.EnsureSecret(ctx, "k", func() ([]byte, error) { return []byte("v"), nil }); err != nil {
		t.Fatalf("the reloaded config's store after the old one closed: %v", err)
	}
	if err := releaseReloaded(); err != nil {
		t.Fatal(err)
	}
	if _, err := reloaded.EnsureSecret(ctx, "k", func() ([]byte, error) { return []byte("v"), nil }); err == nil {
		t.Fatal("the pool stayed open after its last user closed it")
	}
}
