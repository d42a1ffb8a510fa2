package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/credential"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("cacgate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("cacgate", parseHandlerDirective)
	// Authentication runs early, like basic_auth: before anything that
	// rewrites the request for the backend, responds, proxies or serves
	// files, so no route can be reached without it.
	httpcaddyfile.RegisterDirectiveOrder("cacgate", httpcaddyfile.Before, "basic_auth")
}

// parseGlobalOption parses the global "cacgate" option into the app config.
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "cacgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	cacgate {
//		store         <backend> [<args...>]
//		cache_size    <entries>
//		cache_ttl     <duration>
//		assertion_ttl <duration>
//		link_by_edipi on|off
//		eca_key       issuer_subject|email|upn
//		revocation    [<mode>] | { ... }
//		roster        csv <file> | http <url> [{ ... }]
//		hash_concurrency <n>
//		hash_queue    <n>
//		hash_wait     <duration>
//		password_hash argon2id | pbkdf2 [<iterations>]
//		node          <name>
//		event_history off | { max_age <duration>; max_events <n> }
//		mail          { ... }   (see MailConfig)
//		inactive_after <duration>
//		inactive_warning <duration>
//		password_expiry_warning <duration>
//		sweep_interval <duration>
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("%s specified more than once", sub)
		}
		seen[sub] = true
		switch sub {
		case "store":
			if !d.NextArg() {
				return d.ArgErr()
			}
			backend := d.Val()
			unm, err := caddyfile.UnmarshalModule(d, "cacgate.stores."+backend)
			if err != nil {
				return err
			}
			a.StoreRaw = caddyconfig.JSONModuleObject(unm, "backend", backend, nil)
		case "cache_size":
			n, err := intArg(d)
			if err != nil {
				return err
			}
			a.CacheSize = n
		case "cache_ttl":
			if err := durationArg(d, &a.CacheTTL); err != nil {
				return err
			}
		case "assertion_ttl":
			if err := durationArg(d, &a.AssertionTTL); err != nil {
				return err
			}
		case "link_by_edipi":
			on, err := onOffArg(d)
			if err != nil {
				return err
			}
			a.LinkByEDIPI = &on
		case "eca_key":
			if err := stringArg(d, &a.ECAKey); err != nil {
				return err
			}
			if _, ok := cacid.ParseKeySource(a.ECAKey); !ok {
				return d.Errf("eca_key must be issuer_subject, email or upn, got %q", a.ECAKey)
			}
		case "revocation":
			rc, err := unmarshalRevocation(d)
			if err != nil {
				return err
			}
			a.Revocation = rc
		case "roster":
			rc, err := unmarshalRoster(d)
			if err != nil {
				return err
			}
			a.Roster = rc
		case "hash_concurrency":
			n, err := intArg(d)
			if err != nil {
				return err
			}
			a.HashConcurrency = n
		case "hash_queue":
			n, err := intArg(d)
			if err != nil {
				return err
			}
			a.HashQueue = n
		case "hash_wait":
			if err := durationArg(d, &a.HashWait); err != nil {
				return err
			}
		case "password_hash":
			if !d.NextArg() {
				return d.ArgErr()
			}
			switch d.Val() {
			case credential.Argon2id:
				a.PasswordHash = credential.Argon2id
			case "pbkdf2", credential.PBKDF2SHA512:
				a.PasswordHash = credential.PBKDF2SHA512
				if d.NextArg() {
					n, err := strconv.Atoi(d.Val())
					if err != nil {
						return d.Errf("password_hash pbkdf2: iterations %q is not a number", d.Val())
					}
					a.PBKDF2Iterations = n
				}
			default:
				return d.Errf("password_hash must be argon2id or pbkdf2, got %q", d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "node":
			if err := stringArg(d, &a.Node); err != nil {
				return err
			}
		case "event_history":
			cfg, err := unmarshalEventHistory(d)
			if err != nil {
				return err
			}
			a.EventHistory = cfg
		case "mail", "inactive_after", "inactive_warning", "password_expiry_warning", "sweep_interval":
			if err := a.unmarshalLifecycle(d, sub); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized cacgate option %q", sub)
		}
	}
	return nil
}

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	cacgate {
//		banner            <file>
//		contact           <text> | [<text>] { name|phone|email|hours|url <value> }
//		admin_group       <group>
//		admin_read_group  <group>
//		refusals          page|handle_errors
//		consent_ttl       <duration>
//		allowed_issuers   <dn|sha256>...
//		required_policies [all|any] <oid>...
//		required_eku      <name|oid>...
//		max_chain_depth   <n>
//		accept            <kind>... | <kind> { issuers ...; policies ... }
//		exempt            <path>...
//		audience          <aud>
//		header            <field> <name|off>
//		trust_pool        <module> [...]
//		enroll            off | { ... }   (see EnrollConfig)
//		password_login    on|off
//		session_ttl       <duration>
//		session_idle      <duration>|off
//		session_limit     <n>|off
//		oidc              { ... }   (see OIDCConfig)
//		allow|require|deny <kind> <value>...   (see unmarshalAccessRule)
//	}
//
// allowed_issuers, accept, exempt, header and the access rules may be repeated;
// the rest may not.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		switch sub {
		case "allowed_issuers", "exempt", "header", "allow", "require", "deny", "accept":
		default:
			if seen[sub] {
				return d.Errf("%s specified more than once", sub)
			}
		}
		seen[sub] = true
		if ok, err := h.unmarshalOption(d, sub); ok {
			if err != nil {
				return err
			}
			continue
		}
		if ok, err := h.unmarshalAccessRule(d, sub); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch sub {
		case "banner":
			if err := stringArg(d, &h.Banner); err != nil {
				return err
			}
		case "contact":
			if err := h.unmarshalContact(d); err != nil {
				return err
			}
		case "admin_group":
			if err := stringArg(d, &h.AdminGroup); err != nil {
				return err
			}
		case "admin_read_group":
			if err := stringArg(d, &h.AdminReadGroup); err != nil {
				return err
			}
		case "refusals":
			if err := stringArg(d, &h.Refusals); err != nil {
				return err
			}
		case "consent_ttl":
			if err := durationArg(d, &h.ConsentTTL); err != nil {
				return err
			}
		case "audience":
			if err := stringArg(d, &h.Audience); err != nil {
				return err
			}
		case "exempt":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Exempt = append(h.Exempt, args...)
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if h.Headers == nil {
				h.Headers = map[string]string{}
			}
			if _, dup := h.Headers[args[0]]; dup {
				return d.Errf("header %s specified more than once", args[0])
			}
			name := args[1]
			switch name {
			case "off":
				name = ""
			case "on":
				// The field's default name (the assertion's is off
				// unless turned on).
				if name = defaultHeaderName(args[0]); name == "" {
					return d.Errf("header: unknown identity header field %q", args[0])
				}
			}
			h.Headers[args[0]] = name
		case "password_login":
			on, err := onOffArg(d)
			if err != nil {
				return err
			}
			h.PasswordLogin = on
		case "session_ttl":
			if err := durationArg(d, &h.SessionTTL); err != nil {
				return err
			}
		case "session_limit":
			var v string
			if err := stringArg(d, &v); err != nil {
				return err
			}
			if v == "off" {
				h.SessionLimit = 0
				break
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return d.Errf("session_limit must be a number from 1 to 100, or off; got %q", v)
			}
			h.SessionLimit = n
		case "session_idle":
			idle, err := durationOrOffArg(d)
			if err != nil {
				return err
			}
			h.SessionIdle = &idle
		case "oidc":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.OIDC = new(OIDCConfig)
			if err := h.OIDC.UnmarshalCaddyfile(d); err != nil {
				return err
			}
		case "enroll":
			ec, err := unmarshalEnroll(d)
			if err != nil {
				return err
			}
			h.Enroll = ec
		case "trust_pool":
			if !d.NextArg() {
				return d.ArgErr()
			}
			modStem := d.Val()
			modID := "tls.ca_pool.source." + modStem
			unm, err := caddyfile.UnmarshalModule(d, modID)
			if err != nil {
				return err
			}
			if _, ok := unm.(caddytls.CA); !ok {
				return d.Errf("module %s is not a CA pool", modID)
			}
			h.TrustPoolRaw = caddyconfig.JSONModuleObject(unm, "provider", modStem, nil)
		default:
			return d.Errf("unrecognized cacgate subdirective %q", sub)
		}
	}
	return nil
}

func stringArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func intArg(d *caddyfile.Dispenser) (int, error) {
	var s string
	if err := stringArg(d, &s); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, d.Errf("%s: %q is not a whole number", d.Val(), s)
	}
	return n, nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := stringArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("bad duration %q: %v", s, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// durationOrOffArg reads a duration, or "off" as 0.
func durationOrOffArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	var s string
	if err := stringArg(d, &s); err != nil {
		return 0, err
	}
	if s == "off" {
		return 0, nil
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("bad duration %q: %v", s, err)
	}
	return caddy.Duration(dur), nil
}

func onOffArg(d *caddyfile.Dispenser) (bool, error) {
	var s string
	if err := stringArg(d, &s); err != nil {
		return false, err
	}
	switch s {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.Errf("expected on or off, got %q", s)
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
