// Command caddy is Caddy with the standard modules and cacgate: the same
// binary `xcaddy build --with github.com/cacgate/cacgate` produces, built
// with plain `go build` where xcaddy is not available.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/cacgate/cacgate"
)

func main() {
	caddycmd.Main()
}
