package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalLifecycle reads the global option's life-cycle settings: the
// mail block and the inactivity and warning durations.
func (a *App) unmarshalLifecycle(d *caddyfile.Dispenser, sub string) error {
	switch sub {
	case "inactive_after":
		if !d.NextArg() {
			return d.ArgErr()
		}
		if d.Val() == "off" {
			a.InactiveAfter = 0
			if d.NextArg() {
				return d.ArgErr()
			}
			return nil
		}
		d.Prev()
		return durationArg(d, &a.InactiveAfter)
	case "inactive_warning":
		return durationArg(d, &a.InactiveWarning)
	case "password_expiry_warning":
		return durationArg(d, &a.PasswordExpiryWarning)
	case "sweep_interval":
		return durationArg(d, &a.SweepInterval)
	}
	mc := new(MailConfig)
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("mail: %s specified more than once", opt)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "smtp":
			if !d.NextArg() {
				return d.ArgErr()
			}
			mc.Host = d.Val()
			if d.NextArg() {
				if mc.Port, err = strconv.Atoi(d.Val()); err != nil || mc.Port < 1 || mc.Port > 65535 {
					return d.Errf("mail: smtp port %q is not a port number", d.Val())
				}
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "tls":
			err = stringArg(d, &mc.TLS)
		case "username":
			err = stringArg(d, &mc.Username)
		case "password":
			err = stringArg(d, &mc.Password)
		case "from":
			err = stringArg(d, &mc.From)
		case "ca_file":
			err = stringArg(d, &mc.CAFile)
		case "templates":
			err = stringArg(d, &mc.Templates)
		case "site":
			err = stringArg(d, &mc.Site)
		case "contact":
			err = stringArg(d, &mc.Contact)
		case "account_page":
			err = stringArg(d, &mc.AccountPage)
		case "outbox_limit":
			mc.OutboxLimit, err = intArg(d)
		case "interval":
			err = durationArg(d, &mc.Interval)
		case "admin_notices":
			mc.AdminNotices = d.RemainingArgs()
			if len(mc.AdminNotices) == 0 {
				return d.ArgErr()
			}
		default:
			return d.Errf("mail: unrecognized option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	if mc.Host == "" || mc.From == "" {
		return d.Err("mail: smtp and from are required")
	}
	a.Mail = mc
	return nil
}
