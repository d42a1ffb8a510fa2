package caddymodule

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/internal/access"
)

// Access policies: who may pass once identified. The rules live in the
// handler's "access" field (Caddyfile: allow / require / deny lines in the
// cacgate block), are decided by package access and applied by the
// gateway core; this file is the glue: parsing, and the edipi_file lists
// shared across blocks and config reloads.
//
// Each cacgate block has its own rules, so `handle /admin*` with one block
// and `handle` with another give two routes two policies over one app
// (one store, one card cache, one consent).

// accessFileCheckInterval is how often edipi_file lists are checked for
// changes (one stat each), off the request path.
var accessFileCheckInterval = 5 * time.Second

// provisionAccess compiles the rules (a config error names the bad rule);
// nil when there are none. Their edipi_file lists are shared, see
// openAccessList.
func (h *Handler) provisionAccess() (*access.Policy, error) {
	p, err := access.CompileWith(h.Access, h.openAccessList)
	if err != nil || p.Empty() {
		return nil, err
	}
	return p, nil
}

// accessLists holds every edipi_file in use, keyed by path, with one
// watcher each: every cacgate block naming a file (routes, sites) sees the
// same list and the same reload at the same moment, and a config reload
// takes the lists over instead of reading and watching them anew.
var accessLists = caddy.NewUsagePool()

// sharedList is an access.List in accessLists and the stop of its watcher.
type sharedList struct {
	list *access.List
	stop context.CancelFunc
}

func (s *sharedList) Destruct() error {
	s.stop()
	return nil
}

// openAccessList returns the shared list for path, loading it and starting
// its watcher if no block uses it yet. A list taken over from the previous
// config is re-checked: a file that broke since fails the new config.
func (h *Handler) openAccessList(path string) (*access.List, error) {
	key := filepath.Clean(path)
	val, loaded, err := accessLists.LoadOrNew(key, func() (caddy.Destructor, error) {
		l, err := access.OpenList(path)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		go l.Watch(ctx, accessFileCheckInterval, reportAccessList)
		return &sharedList{list: l, stop: cancel}, nil
	})
	if err != nil {
		return nil, err
	}
	h.accessListKeys = append(h.accessListKeys, key)
	l := val.(*sharedList).list
	if loaded {
		if err := l.Check(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// reportAccessList logs a reload on the current config's logger (the list
// outlives the config that first loaded it).
func reportAccessList(l *access.List, err error) {
	log := caddy.Log().Named("http.handlers.cacgate")
	if err != nil {
		log.Error("edipi_file reload failed", zap.String("path", l.Path()), zap.Error(err))
		return
	}
	log.Info("edipi_file reloaded", zap.String("path", l.Path()), zap.Int("dod_ids", l.Len()))
}

// Cleanup releases the handler's edipi_file lists; the last block to let a
// list go stops its watcher. Caddy calls it after a failed Provision too.
func (h *Handler) Cleanup() error {
	for _, key := range h.accessListKeys {
		accessLists.Delete(key)
	}
	h.accessListKeys = nil
	return nil
}

// unmarshalAccessRule parses one rule line if sub is an effect:
//
//	allow   <kind> <value>...
//	require <kind> <value>...
//	deny    <kind> <value>...
//
// kind: affiliation, category, group, edipi, edipi_file, issuer, policy.
// Rules may be repeated; the values are checked in Provision.
func (h *Handler) unmarshalAccessRule(d *caddyfile.Dispenser, sub string) (bool, error) {
	switch sub {
	case access.EffectAllow, access.EffectRequire, access.EffectDeny:
	default:
		return false, nil
	}
	if !d.NextArg() {
		return true, d.ArgErr()
	}
	kind := d.Val()
	known := false
	for _, k := range access.Kinds {
		known = known || k == kind
	}
	if !known {
		return true, d.Errf("%s: unknown kind %q (want one of %s)", sub, kind, strings.Join(access.Kinds, ", "))
	}
	values := d.RemainingArgs()
	if len(values) == 0 {
		return true, d.Errf("%s %s: needs at least one value", sub, kind)
	}
	h.Access = append(h.Access, access.Rule{Effect: sub, Kind: kind, Values: values})
	return true, nil
}

// Interface guards
var (
	_ caddy.CleanerUpper = (*Handler)(nil)
)
