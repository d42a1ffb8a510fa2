package gateway

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/access"
	"github.com/cacgate/cacgate/internal/audit"
	"github.com/cacgate/cacgate/internal/consent"
	"github.com/cacgate/cacgate/internal/store"
	"github.com/cacgate/cacgate/revocation"
	"github.com/cacgate/cacgate/trust"
)

// SiteConfig is one protected site's (one cacgate handler's) options.
type SiteConfig struct {
	// Policy is the site's certificate acceptance policy; with Roots set
	// the site verifies chains itself (client_auth mode request).
	Policy trust.Policy
	// Accept, when set, are the credential kinds the site admits (accept
	// dod piv piv-i eca): a certificate's kind is decided by its policies
	// and issuer (trust.Acceptance.Classify). Nil: every certificate is
	// read as a DoD CAC, as before kinds existed.
	Accept *trust.Acceptance
	// Access are the site's access rules; nil: everyone with an active
	// account.
	Access *access.Policy
	// Audience is the assertion's "aud"; "" for the request's host.
	Audience string
	// Contact is shown on refusal pages.
	Contact string
	// ConsentTTL is how long an acceptance of the banner lasts on this
	// site, counted from when it was made: the consent cookie is shared
	// by every site of the host, each of which holds it to its own limit.
	ConsentTTL time.Duration
	// Logger gets the site's operational messages (not audit events).
	Logger *zap.Logger
}

// Site decides requests for one protected site over the shared Core.
type Site struct {
	core *Core
	cfg  SiteConfig
	// certs caches, per certificate, this site's verdict on it and the
	// assertion signed for it; users the same per password-signed-in
	// user. Entries age by the request's clock (SiteEntry.created): the
	// hot path reads the time once.
	certs   *certCache
	users   *lru.Cache[string, *SiteEntry]
	siteTTL time.Duration
	// refused caches, per certificate and the CA certificates sent with
	// it, the entries of certificates this site's own trust pool refused:
	// verifying a chain is the costliest thing a client can make the
	// gateway do, and a client may send the same refused chain on every
	// request. Keyed by a digest of the whole chain as sent, since the
	// verdict depends on all of it.
	refused *lru.Cache[[sha256.Size]byte, *SiteEntry]
	// roots is the site's own trust pool (Policy.Roots until SetRoots
	// replaces it): a trust source that watches its files hands a new
	// pool over without a config reload.
	roots atomic.Pointer[x509.CertPool]
}

// NewSite returns the Site for cfg. Its certificate entries live as long
// as an assertion does; the account mapping inside them is refreshed on
// the core's cache_ttl.
func (c *Core) NewSite(cfg SiteConfig) (*Site, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ConsentTTL <= 0 {
		return nil, errors.New("gateway: a site needs a positive consent lifetime")
	}
	users, err := lru.New[string, *SiteEntry](c.cfg.CacheSize)
	if err != nil {
		return nil, err
	}
	refused, err := lru.New[[sha256.Size]byte, *SiteEntry](c.cfg.CacheSize)
	if err != nil {
		return nil, err
	}
	ttl := c.cfg.AssertionTTL
	s := &Site{core: c, cfg: cfg, certs: newCertCache(c.cfg.CacheSize, ttl), users: users, refused: refused, siteTTL: ttl}
	s.roots.Store(cfg.Policy.Roots)
	return s, nil
}

// SetRoots replaces the CAs the site verifies chains against (the
// site's own trust pool; ignored by a site that leaves chains to the TLS
// handshake, which has none). Every certificate verdict reached with the
// old pool is judged afresh on its next request: a removed CA's cards are
// refused from then on, a new CA's admitted.
func (s *Site) SetRoots(pool *x509.CertPool) {
	if pool == nil || s.roots.Load() == nil {
		return
	}
	s.roots.Store(pool)
}

// Core is the shared core the site decides with.
func (s *Site) Core() *Core { return s.core }

// SiteEntry is this site's view of one certificate. Fields set at creation
// are immutable; the card entry, assertion and access decision are swapped
// atomically on refresh.
type SiteEntry struct {
	certEntry
	created time.Time
	// notBefore and notAfter are the certificate's validity period.
	notBefore, notAfter time.Time
	// ID is the card holder's identity (nil if the certificate is not a
	// CAC identity; Rejection says why).
	ID *cacid.Identity
	// issuer is the verified issuing CA certificate (nil if none), and
	// policies the certificate's policy OIDs, for the access rules. The
	// entry keeps no parsed card certificate (see certCache): what needs
	// the card's takes it from the request (cardChain).
	issuer   *x509.Certificate
	policies []asn1.ObjectIdentifier
	// Rejection is a usage/issuer/policy/identity problem, nil if none.
	Rejection *trust.Rejection
	// npe: the certificate is no CAC identity but could be a non-person
	// entity's (ID is then its npeIdentity); npeRejection is the refusal
	// it gets unless a utility account holds it (see npe.go).
	npe          bool
	npeRejection *trust.Rejection
	// poolVerified is whether the site's own trust pool verified the
	// certificate, and poolCAs the CA certificates of that chain (card
	// excluded); poolReject says why not. A handshake-verified chain is
	// checked per request instead, because it is a property of the
	// connection, not of the certificate.
	poolVerified bool
	poolCAs      []*x509.Certificate
	poolReject   *trust.Rejection

	// roots is the site's trust pool this verdict was reached with (nil
	// for a site without one): a verdict of another pool is stale.
	roots *x509.CertPool

	card      atomic.Pointer[Entry]
	assertion atomic.Pointer[signedAssertion]
	access    atomic.Pointer[accessVerdict]
	// consent is the last consent token the card presented here.
	consent consent.Memo
}

// signedAssertion is a cached assertion.
type signedAssertion struct {
	token     string
	audience  string
	card      *Entry // the entry whose claims were signed
	refreshAt time.Time
}

// accessVerdict is a site entry's cached access decision: valid while the
// card entry (account and card facts) is the same one and no edipi_file
// has reloaded since.
type accessVerdict struct {
	card     *Entry
	gen      uint64
	decision *access.Decision
}

// Outcome is what a Decision says of a request.
type Outcome uint8

const (
	// Admitted: a valid card (or password session) whose holder accepted
	// the banner, with an active account the access rules let in.
	// From Gate: the certificate, its revocation status and the account
	// look-up passed (Entry.Account may be nil: not registered).
	Admitted Outcome = iota
	// NoCertificate: no card presented (or no valid password session).
	NoCertificate
	// CertificateRefused: the certificate failed a check (Rejection).
	CertificateRefused
	// RevocationRefused: the chain's revocation verdict is not good
	// (Entry.Verdict: revoked, or unavailable failing closed).
	RevocationRefused
	// StoreUnavailable: the account database did not answer (Err).
	StoreUnavailable
	// ConsentRequired: the banner has not been accepted.
	ConsentRequired
	// NotRegistered: the card maps to no account (enrollment).
	NotRegistered
	// AccountInactive: the account is pending approval or disabled.
	AccountInactive
	// AccessDenied: the site's access rules refuse the account (Access).
	AccessDenied
	// AmbiguousPath: the path as sent is not canonical (Rejection.Code
	// says how); see NonCanonicalPath.
	AmbiguousPath
)

// Decision is the gateway's verdict on a request.
type Decision struct {
	Outcome Outcome
	// Site is the site's view of the certificate; nil without one.
	Site *SiteEntry
	// Entry is the account side; nil before the account look-up.
	Entry     *Entry
	Rejection *trust.Rejection
	Access    *access.Decision
	Err       error
	// User is the password session's username where the decision has no
	// account to name it by (StoreUnavailable from AdmitUser), for the
	// audit trail.
	User string
}

// CardChain is the admitted card's chain as the gateway checks its
// revocation status (card first): for a sign-in whose status is checked
// again later, away from the request (an OpenID Connect refresh). Nil
// without a card.
func (d *Decision) CardChain(cs *tls.ConnectionState) []*x509.Certificate {
	if d.Site == nil || d.Site.ID == nil || cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return d.Site.cardChain(cs).chainOrLeaf()
}

// CheckPath refuses a request whose path, as the client sent it, could
// mean another page to the backend than to the gateway and Caddy's
// matchers (see NonCanonicalPath). Admitted when it is canonical.
func CheckPath(r *http.Request) Decision {
	if reason := NonCanonicalPath(r.URL.EscapedPath()); reason != "" {
		return Decision{Outcome: AmbiguousPath, Rejection: &trust.Rejection{Code: reason}}
	}
	return Decision{Outcome: Admitted}
}

// Gate runs every check that comes before the banner: the certificate, its
// revocation status and the account look-up (both cached in the card
// entry). Admitted here means "passed the gate"; the account may be nil.
func (s *Site) Gate(r *http.Request, now time.Time) (d Decision) {
	s.gate(r, now, &d)
	return d
}

// The decisions are built in place (d *Decision) on the way through
// Admit: it runs on every request, and copying the decision from step to
// step cost more than the steps.
func (s *Site) gate(r *http.Request, now time.Time, d *Decision) {
	se, rej := s.Certificate(r.TLS, now)
	d.Site = se
	switch {
	case se == nil && rej == rejectNoCertificate:
		d.Outcome = NoCertificate
		return
	case rej != nil:
		d.Outcome, d.Rejection = CertificateRefused, rej
		return
	}
	card, err := s.currentCard(r, se, now)
	switch {
	case err != nil:
		d.Outcome, d.Err = StoreUnavailable, err
	case card.Verdict.Status != revocation.StatusGood:
		d.Outcome, d.Entry = RevocationRefused, card
	case se.npe && card.Account == nil:
		// No utility account holds it: refused as before, no CAC.
		d.Outcome, d.Rejection = CertificateRefused, se.npeRejection
	default:
		d.Outcome, d.Entry = Admitted, card
	}
}

// GateConsented is Gate plus the banner.
func (s *Site) GateConsented(r *http.Request, now time.Time) (d Decision) {
	s.gateConsented(r, now, &d)
	return d
}

func (s *Site) gateConsented(r *http.Request, now time.Time, d *Decision) {
	s.gate(r, now, d)
	// A registered non-person entity has no banner: nobody could read it.
	if d.Outcome == Admitted && !d.Site.npe && !s.core.cfg.Consents.AcceptedVia(&d.Site.consent, consent.CookieValue(r.Header["Cookie"]), d.Site.ID.FingerprintHex, now, s.cfg.ConsentTTL) {
		d.Outcome = ConsentRequired
	}
}

// Admit decides a request to the protected site: every check, in order,
// and the access rules. The hot path (a known card with a fresh entry and
// an accepted banner) does no I/O and no allocation.
func (s *Site) Admit(r *http.Request, now time.Time) (d Decision) {
	s.gateConsented(r, now, &d)
	if d.Outcome == Admitted {
		s.decideAccount(&d)
	}
	return d
}

// AdmitUser decides a request signed in with a password session for
// username: the account's state, the banner (accepted for the user) and
// the access rules. signedIn is when the session began: a session older
// than the account's last password change is refused (ended reports it).
func (s *Site) AdmitUser(r *http.Request, username string, signedIn, now time.Time) (d Decision, ended bool) {
	card, err := s.core.UserEntry(r.Context(), username)
	if err != nil {
		return Decision{Outcome: StoreUnavailable, Err: err, User: username}, false
	}
	if card.Account == nil {
		// the account went away since sign-in
		return Decision{Outcome: NoCertificate}, false
	}
	if changed := card.Account.PasswordChangedAt; signedIn.Before(changed.Truncate(time.Second)) {
		return Decision{Outcome: NoCertificate, Entry: card}, true
	}
	d = Decision{Outcome: Admitted, Site: s.userSiteEntry(username, now), Entry: card}
	if !s.core.cfg.Consents.Accepted(consent.CookieValue(r.Header["Cookie"]), consent.UserPrincipal(username), now, s.cfg.ConsentTTL) {
		d.Outcome = ConsentRequired
		return d, false
	}
	s.decideAccount(&d)
	if d.Outcome == NotRegistered {
		d.Outcome = NoCertificate
	}
	return d, false
}

// decideAccount applies the account's state and the access rules.
func (s *Site) decideAccount(d *Decision) {
	if requireAccount(d); d.Outcome != Admitted {
		return
	}
	if ad := s.accessDecision(d.Site, d.Entry); ad != nil && !ad.Allowed {
		d.Outcome, d.Access = AccessDenied, ad
	}
}

// RequireAccount refuses an admitted decision whose card has no account
// (NotRegistered) or whose account is not active (AccountInactive).
func RequireAccount(d Decision) Decision {
	requireAccount(&d)
	return d
}

func requireAccount(d *Decision) {
	switch {
	case d.Outcome != Admitted:
	case d.Entry.active:
	case d.Entry.Account == nil:
		d.Outcome = NotRegistered
	case d.Entry.Account.Status != store.StatusActive:
		d.Outcome = AccountInactive
	}
}

// CheckDeny applies only the deny rules, for the gateway's own enrollment
// and account pages: people who do not meet the allow and require rules
// yet must reach them (groups are granted to accounts, so the account
// comes first), but people a deny rule excludes must not create or keep up
// an account here. d must have passed the gate; its account may be nil.
func (s *Site) CheckDeny(d Decision) Decision {
	if s.cfg.Access == nil || d.Outcome != Admitted {
		return d
	}
	if ad := s.cfg.Access.DecideDeny(accessFacts(d.Site, d.Entry)); !ad.Allowed {
		d.Outcome, d.Access = AccessDenied, ad
	}
	return d
}

// DecideAccess applies the site's access rules away from a request (an
// OpenID Connect refresh): to acct as it is now and, for a card sign-in,
// the card's chain as it was verified (card first, issuing CA next). Nil
// when the site has no rules.
func (s *Site) DecideAccess(acct *store.Account, chain []*x509.Certificate) *access.Decision {
	p := s.cfg.Access
	if p == nil {
		return nil
	}
	f := &access.Facts{EDIPI: acct.EDIPI, Affiliation: acct.Affiliation, Categories: acct.Categories, Groups: acct.Groups}
	if len(chain) > 0 {
		leaf := chain[0]
		f.Card, f.Policies = true, leaf.PolicyIdentifiers
		if id, err := cacid.Parse(leaf); err == nil {
			f.CardEDIPI, f.IssuerDN = id.EDIPI, id.Issuer
			if f.Affiliation == "" {
				f.Affiliation = id.Affiliation
			}
		}
		if len(chain) > 1 {
			f.IssuerSHA256 = cacid.Fingerprint(chain[1].Raw)
		}
	}
	return p.Decide(f)
}

// accessDecision applies the access rules to an identified, active
// account, cached in the site entry: an admitted request pays two atomic
// loads and two comparisons. Nil when the site has no rules.
func (s *Site) accessDecision(se *SiteEntry, card *Entry) *access.Decision {
	p := s.cfg.Access
	if p == nil {
		return nil
	}
	gen := p.Generation()
	v := se.access.Load()
	if v == nil || v.card != card || v.gen != gen {
		v = &accessVerdict{card: card, gen: gen, decision: p.Decide(accessFacts(se, card))}
		se.access.Store(v)
	}
	return v.decision
}

// accessFacts gathers what the rules decide on: the account's facts (the
// ones the backend receives) and, for a card, the certificate's.
func accessFacts(se *SiteEntry, card *Entry) *access.Facts {
	f := &access.Facts{Card: se.ID != nil, Affiliation: card.Values[FieldAffiliation]}
	acct := card.Account
	if acct == nil {
		// A card not linked to the account holding its DoD ID (on the
		// enrollment pages): that account's facts still decide the deny
		// rules, or a second card would open the door they close.
		acct = card.ByEDIPI
	}
	if acct != nil {
		f.EDIPI, f.Categories, f.Groups = acct.EDIPI, acct.Categories, acct.Groups
	}
	if se.ID != nil {
		f.CardEDIPI = se.ID.EDIPI
		if f.Affiliation == "" {
			f.Affiliation = se.ID.Affiliation
		}
		f.IssuerDN = se.ID.Issuer
		if se.issuer != nil {
			f.IssuerSHA256 = cacid.Fingerprint(se.issuer.Raw)
		}
		f.Policies = se.policies
	}
	return f
}

// rejectNoCertificate is the (non-)verdict for a request without a card.
var rejectNoCertificate = &trust.Rejection{Code: "certificate_required"}

// Certificate runs the certificate checks on a connection's state:
// presence, validity, chain, usage, issuer, policy, identity. The returned
// entry is nil only when there is no certificate at all or it is outside
// its validity period. No I/O happens here.
func (s *Site) Certificate(cs *tls.ConnectionState, now time.Time) (*SiteEntry, *trust.Rejection) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil, rejectNoCertificate
	}
	leaf := cs.PeerCertificates[0]
	se := s.certs.get(leaf, now)
	if se == nil || se.roots != s.roots.Load() || now.Before(se.notBefore) || now.After(se.notAfter) {
		// (A cached entry holds the certificate's validity period, so the
		// request path reads nothing more of the certificate.)
		if rej := trust.CheckValidity(leaf, now); rej != nil {
			return nil, rej
		}
		se = s.siteEntry(cs, now)
	}
	var depth int
	switch {
	case len(cs.VerifiedChains) > 0:
		depth = len(cs.VerifiedChains[0])
	case se.poolVerified:
		depth = 1 + len(se.poolCAs)
	default:
		return se, se.poolReject
	}
	if rej := s.cfg.Policy.CheckChainDepth(depth); rej != nil {
		return se, rej
	}
	if se.Rejection != nil {
		return se, se.Rejection
	}
	return se, nil
}

// siteEntry returns the verdict for the connection's certificate, which
// is within its validity period and not in the site's cache: the verdict
// remembered on the same chain, if this site's pool refused it, else a new
// one.
func (s *Site) siteEntry(cs *tls.ConnectionState, now time.Time) *SiteEntry {
	leaf := cs.PeerCertificates[0]
	roots := s.roots.Load()
	var chainKey [sha256.Size]byte
	if roots != nil && len(cs.VerifiedChains) == 0 {
		chainKey = chainDigest(cs.PeerCertificates)
		if se, ok := s.refused.Get(chainKey); ok && se.roots == roots && now.Sub(se.created) < s.siteTTL {
			return se
		}
	}
	se := &SiteEntry{created: now, notBefore: leaf.NotBefore, notAfter: leaf.NotAfter, policies: leaf.PolicyIdentifiers, roots: roots}
	se.setCertificate(leaf)
	var issuer *x509.Certificate
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 1 {
		issuer = cs.VerifiedChains[0][1]
	}
	if roots != nil {
		policy := s.cfg.Policy
		policy.Roots = roots
		var chain []*x509.Certificate
		chain, se.poolReject = policy.Verify(leaf, cs.PeerCertificates[1:], now)
		if se.poolVerified = len(chain) > 0; se.poolVerified {
			// A copy of the CAs alone: the chain's first slot is the card.
			se.poolCAs = slices.Clone(chain[1:])
		}
		if len(chain) > 1 && issuer == nil {
			issuer = chain[1]
		}
	} else {
		se.poolReject = &trust.Rejection{Code: trust.CodeNotVerified, Reason: "Your certificate was not verified against this site's trusted certificate authorities."}
	}
	se.issuer = issuer
	se.Rejection = s.cfg.Policy.Check(leaf, issuer)
	policyRejected := se.Rejection != nil
	kind := cacid.KindCAC
	if s.cfg.Accept != nil {
		var rej *trust.Rejection
		if kind, rej = s.cfg.Accept.Classify(leaf, issuer); rej != nil && se.Rejection == nil {
			se.Rejection = rej
		}
	}
	var id *cacid.Identity
	// notAPerson: the certificate is no person's credential this site
	// reads: it asserts none of the accepted kinds' policies, or it does
	// not read as a DoD card.
	notAPerson := kind == ""
	if kind != "" {
		var err error
		id, err = cacid.ParseAs(leaf, kind, s.core.cfg.Identity)
		if err != nil && se.Rejection == nil {
			reason := "it could not be read"
			var cerr *cacid.Error
			if errors.As(err, &cerr) {
				reason = cerr.Reason
			}
			what := "a DoD CAC/PIV authentication certificate"
			if kind != cacid.KindCAC {
				what = "a " + string(kind) + " authentication certificate"
			}
			se.Rejection = &trust.Rejection{Code: trust.CodeInvalidFormat, Reason: "Your certificate does not look like " + what + ": " + reason + "."}
			notAPerson = kind == cacid.KindCAC
		}
	}
	// A certificate that names no person may be a registered system's
	// (non-person entity): decided with its account, which an
	// administrator registered it to. The site's certificate policy
	// (required_eku, allowed_issuers, ...) still applies to it; its
	// accept rules, which name persons' credentials, do not.
	if notAPerson && !policyRejected {
		if nid := npeIdentity(leaf); nid != nil {
			id, se.npe, se.npeRejection, se.Rejection = nid, true, se.Rejection, nil
		}
	}
	se.ID = id
	// Only a verdict reached with a verified chain is remembered: the
	// issuer it was judged against is part of it, and a connection that
	// verified nothing must not shape what a verified one sees later.
	switch {
	case issuer != nil || se.poolVerified || len(cs.VerifiedChains) > 0:
		s.certs.add(se, now)
	case roots != nil:
		// Refused by this site's pool, for this chain as sent: the same
		// certificate with other CA certificates is judged afresh.
		s.refused.Add(chainKey, se)
	}
	return se
}

// chainDigest names a certificate and the CA certificates sent with it.
func chainDigest(certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		// Length-prefixed, so no two different chains run together alike.
		l := len(c.Raw)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// cardChain is the chain to check the card's revocation status on: the
// request's certificate (the one the entry is the verdict on) with the
// chain its handshake verified, else the one the site's pool did.
func (se *SiteEntry) cardChain(cs *tls.ConnectionState) *CardChain {
	cc := &CardChain{Leaf: cs.PeerCertificates[0], Issuer: se.issuer}
	switch {
	case len(cs.VerifiedChains) > 0:
		cc.Verified = cs.VerifiedChains[0]
	case se.poolVerified:
		cc.Verified = append([]*x509.Certificate{cc.Leaf}, se.poolCAs...)
	}
	return cc
}

// userSiteEntry is the site entry of a password-signed-in user: no
// certificate, the assertion and access decision cached per username.
func (s *Site) userSiteEntry(username string, now time.Time) *SiteEntry {
	key := consent.UserPrincipal(username)
	if se, ok := s.users.Get(key); ok && now.Sub(se.created) < s.siteTTL {
		return se
	}
	se := &SiteEntry{created: now}
	s.users.Add(key, se)
	return se
}

// currentCard returns the site entry's card entry (revocation verdict and
// account), refreshing it from the core when it is stale.
func (s *Site) currentCard(r *http.Request, se *SiteEntry, now time.Time) (*Entry, error) {
	c := s.core
	if e := se.card.Load(); e != nil && !e.Stale(now, c.epoch.Load()) && (c.feedDownSince.Load() == 0 || !c.distrusted(e, now)) {
		c.cfg.Metrics.CacheHit.Inc()
		return e, nil
	}
	e, err := c.Card(r.Context(), r, se.ID, se.cardChain(r.TLS))
	if err != nil {
		return nil, err
	}
	se.card.Store(e)
	if e.Verdict.FailedOpen {
		fields := append(audit.Card(se.ID), zap.NamedError("revocation_error", e.Verdict.Err))
		if e.Verdict.CA != nil {
			fields = append(fields, audit.CA(e.Verdict.CA)...)
		}
		c.cfg.Audit.Request(r, "revocation.failed_open", audit.Failure, fields...)
	}
	return e, nil
}

// Assertion returns the signed assertion for an admitted request, cached:
// a new one is signed only when it is missing, for another audience,
// about the account's previous data, or three-quarters expired. "" if
// signing failed (logged loudly: the plain headers still describe the
// verified identity).
func (s *Site) Assertion(r *http.Request, d *Decision, now time.Time) string {
	se, card := d.Site, d.Entry
	aud := s.cfg.Audience
	if aud == "" {
		aud = hostOnly(r.Host)
	}
	if sa := se.assertion.Load(); sa != nil && sa.audience == aud && now.Before(sa.refreshAt) &&
		(sa.card == card || sa.card.Values == card.Values) {
		return sa.token
	}
	ttl := s.core.cfg.AssertionTTL
	tok, err := s.core.cfg.Signer.Sign(card.Claims(), aud, now, ttl)
	if err != nil {
		s.cfg.Logger.Error("signing assertion", zap.Error(err))
		return ""
	}
	se.assertion.Store(&signedAssertion{token: tok, audience: aud, card: card, refreshAt: now.Add(ttl * 3 / 4)})
	return tok
}

func hostOnly(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if i := strings.IndexByte(hostport, ']'); i > 0 {
			return hostport[1:i]
		}
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport, ':') == i {
		return hostport[:i]
	}
	return hostport
}
