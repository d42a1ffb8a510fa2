package caddymodule

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/access"
	"github.com/cacgate/cacgate/internal/ui"
)

// Access policies: who may pass once identified. The rules live in the
// handler's "access" field (Caddyfile: allow / require / deny lines in the
// cacgate block) and are decided by package access; this file is the glue:
// parsing, the facts of a request, the cached decision and the refusal.
//
// Each cacgate block has its own rules, so `handle /admin*` with one block
// and `handle` with another give two routes two policies over one app
// (one store, one card cache, one consent).

// accessFileCheckInterval is how often edipi_file lists are checked for
// changes (one stat each), off the request path.
var accessFileCheckInterval = 5 * time.Second

// accessVerdict is a site entry's cached decision: valid while the card
// entry (account and card facts) is the same one and no edipi_file has
// reloaded since.
type accessVerdict struct {
	card     *cardEntry
	gen      uint64
	decision *access.Decision
}

// provisionAccess compiles the rules (a config error names the bad rule).
// Their edipi_file lists are shared, see openAccessList.
func (h *Handler) provisionAccess() error {
	p, err := access.CompileWith(h.Access, h.openAccessList)
	if err != nil {
		return err
	}
	if !p.Empty() {
		h.accessPolicy = p
	}
	return nil
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

// checkAccess applies the access rules to an identified, active account.
// The decision is cached in the site entry, so an admitted request pays two
// atomic loads and two comparisons. done reports that the request was
// refused and answered.
func (h *Handler) checkAccess(w http.ResponseWriter, r *http.Request, se *siteEntry, card *cardEntry) (done bool, err error) {
	p := h.accessPolicy
	if p == nil {
		return false, nil
	}
	gen := p.Generation()
	v := se.access.Load()
	if v == nil || v.card != card || v.gen != gen {
		v = &accessVerdict{card: card, gen: gen, decision: p.Decide(accessFacts(se, card))}
		se.access.Store(v)
	}
	if v.decision.Allowed {
		return false, nil
	}
	return true, h.refuseAccess(w, r, se, card, v.decision)
}

// checkAccessDeny applies only the deny rules, for the gateway's own
// enrollment and account pages: people who do not meet the allow and
// require rules yet must reach them (groups are granted to accounts, so
// the account comes first), but people a deny rule excludes must not
// create or keep up an account here. card.account may be nil (not yet
// enrolled): the card's facts decide then.
func (h *Handler) checkAccessDeny(w http.ResponseWriter, r *http.Request, se *siteEntry, card *cardEntry) (done bool, err error) {
	if h.accessPolicy == nil {
		return false, nil
	}
	d := h.accessPolicy.DecideDeny(accessFacts(se, card))
	if d.Allowed {
		return false, nil
	}
	return true, h.refuseAccess(w, r, se, card, d)
}

// accessFacts gathers what the rules decide on: the account's facts (the
// ones the backend receives) and, for a card, the certificate's.
func accessFacts(se *siteEntry, card *cardEntry) *access.Facts {
	f := &access.Facts{Card: se.id != nil, Affiliation: card.values[fieldAffiliation]}
	acct := card.account
	if acct == nil {
		// A card not linked to the account holding its DoD ID (on the
		// enrollment pages): that account's facts still decide the deny
		// rules, or a second card would open the door they close.
		acct = card.byEDIPI
	}
	if acct != nil {
		f.EDIPI, f.Categories, f.Groups = acct.EDIPI, acct.Categories, acct.Groups
	}
	if se.id != nil {
		f.CardEDIPI = se.id.EDIPI
		if f.Affiliation == "" {
			f.Affiliation = se.id.Affiliation
		}
		f.IssuerDN = se.cert.issuer
		if se.cert.issuerCert != nil {
			f.IssuerSHA256 = cacid.Fingerprint(se.cert.issuerCert.Raw)
		}
		if se.cert.leaf != nil {
			f.Policies = se.cert.leaf.PolicyIdentifiers
		}
	}
	return f
}

// accessProblemJSON is ui's problem JSON plus what the rules found
// missing, for API clients.
type accessProblemJSON struct {
	Error   string   `json:"error"`
	Reason  string   `json:"reason"`
	Message string   `json:"message"`
	Missing []string `json:"missing,omitempty"`
	Steps   []string `json:"steps,omitempty"`
	Contact string   `json:"contact,omitempty"`
}

// codeAccessDenied is the problem code of every access-policy refusal; the
// decision's reason says which kind of rule.
const codeAccessDenied = "access_denied"

// refuseAccess answers 403 with what is missing, in words the decision
// made safe to show, and audits the rule that refused.
func (h *Handler) refuseAccess(w http.ResponseWriter, r *http.Request, se *siteEntry, card *cardEntry, d *access.Decision) error {
	h.app.metrics.request(outcomeDenied, "access_"+d.Reason)
	method := authPassword
	fields := []zap.Field{zap.String("reason", d.Reason), zap.Strings("rules", d.Rules)}
	if se.id != nil {
		method = authCAC
		fields = append(fields, cardFields(se.id)...)
	}
	fields = append(fields, zap.String("auth_method", method))
	var steps []string
	if d.NeedsCard {
		steps = append(steps, "Sign in with your CAC or PIV card instead of a password.")
	}
	detail := d.Message()
	if acct := card.account; acct != nil {
		fields = append(fields, zap.String("username", acct.Username))
		if se.id == nil {
			// a password session's EDIPI is not in cardFields
			fields = append(fields, zap.String("edipi", acct.EDIPI))
		}
		// The person's own username, which the administrators need.
		detail += " You are signed in as " + acct.Username + "."
	}
	h.app.audit.request(r, "access.denied", outcomeFailure, fields...)
	if d.Reason == access.ReasonDenied {
		steps = append(steps, "If you think this is a mistake, contact the site's administrators.")
	} else {
		steps = append(steps, "If your work needs this page, ask the site's administrators for access: tell them your username and what is missing.")
	}
	p := ui.Problem{
		Status:  http.StatusForbidden,
		Code:    codeAccessDenied,
		Title:   "You do not have access to this page",
		Detail:  detail,
		Steps:   steps,
		Contact: h.Contact,
	}
	if ui.WantsHTML(r) {
		return ui.WriteProblem(w, r, p)
	}
	return ui.WriteJSON(w, p.Status, accessProblemJSON{
		Error: p.Code, Reason: d.Reason, Message: d.Message(), Missing: d.Missing, Steps: p.Steps, Contact: p.Contact,
	})
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
