#!/usr/bin/env bash
# Builds ./caddy with the cacgate module.
#
#   ./xcaddy.sh        build ./caddy
#   ./xcaddy.sh run    build, then run the demo Caddyfile (Ctrl-C to stop)
#
# Uses `xcaddy build --with github.com/cacgate/cacgate=.` when xcaddy is
# installed; otherwise a plain `go build` of ./cmd/caddy, which needs only Go.
# Set CACGATE_NO_XCADDY=1 to force the go build.
set -euo pipefail
# CADDY_OUTPUT: where to write the binary (default ./caddy).
output=${CADDY_OUTPUT:-./caddy}
cd "$(dirname "$0")"

build() {
	if command -v xcaddy >/dev/null 2>&1 && [ -z "${CACGATE_NO_XCADDY:-}" ]; then
		local version
		version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
		echo "building $output with xcaddy (Caddy $version)" >&2
		xcaddy build "$version" --with github.com/cacgate/cacgate=. --output "$output"
	else
		echo "building $output with go build (xcaddy not found)" >&2
		CGO_ENABLED=0 go build -trimpath -o "$output" ./cmd/caddy
	fi
}

# Demo accounts. The other test cards are left as they are on purpose:
# johnson.robert.e.jr has no account (the not-registered page), the expired,
# noeku and rogue cards are refused (see port 8444 for the explanations).
seed_demo_accounts() {
	local admin=(--address localhost:2019)
	./caddy cacgate accounts create "${admin[@]}" --edipi 1234567890 --username john.q.doe \
		--given-name John --middle-name Quincy --family-name Doe --email john.q.doe@mail.mil --affiliation USA
	./caddy cacgate accounts create "${admin[@]}" --edipi 1234567891 --username jane.smith \
		--given-name Jane --family-name Smith --email jane.smith@mail.mil --affiliation USN
	./caddy cacgate accounts create "${admin[@]}" --edipi 1234567895 --username mary.k.obrien-smith \
		--given-name "Mary Ann" --family-name "O'Brien-Smith" --affiliation CONTRACTOR --status disabled
	./caddy cacgate accounts create "${admin[@]}" --edipi 1234567896 --username luis.a.garcia \
		--given-name Luis --family-name Garcia --affiliation USAF --status pending
}

run_demo() {
	mkdir -p .demo
	./caddy run --config Caddyfile --adapter caddyfile &
	local pid=$!
	trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' INT TERM EXIT
	local i
	for i in $(seq 1 100); do
		if ./caddy cacgate accounts list --address localhost:2019 >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "caddy exited; see the log above" >&2
			exit 1
		fi
		sleep 0.2
	done
	if [ ! -f .demo/seeded ]; then
		seed_demo_accounts >/dev/null && touch .demo/seeded
	fi
	cat >&2 <<-MSG

	cacgate demo is running.
	  Gateway:    https://localhost:8443   (import testdata/pki/cards/doe.john.quincy.p12, password cacgate-test)
	  Explaining: https://localhost:8444   (refusals shown as pages: try the expired or noeku cards)
	  Legacy app: http://127.0.0.1:9080    (what the backend sees)
	  Try:  curl --cacert testdata/pki/root.pem --cert testdata/pki/cards/doe.john.quincy.pem \\
	          --key testdata/pki/cards/doe.john.quincy-key.pem https://localhost:8443/
	Ctrl-C to stop.
	MSG
	wait "$pid"
}

case "${1:-build}" in
build) build ;;
run) build && run_demo ;;
*)
	echo "usage: $0 [build|run]" >&2
	exit 2
	;;
esac
