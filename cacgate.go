// Package cacgate registers the cacgate Caddy modules: DoD Common Access
// Card (CAC/PIV) sign-in in front of legacy web applications.
//
// Build a Caddy binary that includes it with
//
//	xcaddy build --with github.com/cacgate/cacgate
//
// or, without xcaddy, ./xcaddy.sh in this repository.
package cacgate

import (
	// Registers the cacgate app, handler, store, admin API and CLI.
	_ "github.com/cacgate/cacgate/caddymodule"
)
