#!/usr/bin/env bash
# Builds ./caddy with the cacgate module.
#
#   ./xcaddy.sh        build ./caddy
#   ./xcaddy.sh run    build, then run the demo Caddyfile (Ctrl-C to stop)
#
# Uses `xcaddy build --with github.com/cacgate/cacgate=.` when xcaddy is
# installed; otherwise a plain `go build` of ./cmd/caddy, which needs only Go.
# Set CACGATE_NO_XCADDY=1 to force the go build.
#
# CADDY_OUTPUT: where to write the binary (default ./caddy in this checkout;
# a relative path is taken from the directory the script is run in).
set -euo pipefail
output=${CADDY_OUTPUT:-}
if [ -n "$output" ] && [[ $output != /* ]]; then
	output=$PWD/$output
fi
cd "$(dirname "$0")"
output=${output:-./caddy}

# Background processes of this script, stopped however it ends (Ctrl-C, a
# failed command, or normally). Globals: the EXIT trap runs after the
# function that started them has returned.
caddy_pid=
ticker_pid=
cleanup() {
	if [ -n "$ticker_pid" ]; then
		kill "$ticker_pid" 2>/dev/null || true
		wait "$ticker_pid" 2>/dev/null || true
		ticker_pid=
		echo >&2
	fi
	if [ -n "$caddy_pid" ]; then
		# SIGTERM: Caddy shuts down gracefully.
		kill "$caddy_pid" 2>/dev/null || true
		wait "$caddy_pid" 2>/dev/null || true
		caddy_pid=
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build() {
	local cmd version
	if command -v xcaddy >/dev/null 2>&1 && [ -z "${CACGATE_NO_XCADDY:-}" ]; then
		version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
		echo "building $output with xcaddy (Caddy $version)" >&2
		cmd=(xcaddy build "$version" --with github.com/cacgate/cacgate=. --output "$output")
	else
		echo "building $output with go build (xcaddy not found)" >&2
		cmd=(env CGO_ENABLED=0 go build -trimpath -o "$output" ./cmd/caddy)
	fi
	echo "  the first build compiles Caddy and its dependencies and takes a few minutes; later builds take seconds" >&2
	# On a terminal, a dot every 5 seconds shows the build is alive; logs
	# (CI, pipes) get only the lines before and after.
	if [ -t 2 ]; then
		(while sleep 5; do printf . >&2; done) &
		ticker_pid=$!
	fi
	local start=$SECONDS status=0
	"${cmd[@]}" || status=$?
	if [ -n "$ticker_pid" ]; then
		kill "$ticker_pid" 2>/dev/null || true
		wait "$ticker_pid" 2>/dev/null || true
		ticker_pid=
		echo >&2
	fi
	if [ "$status" -ne 0 ]; then
		echo "build failed (exit status $status)" >&2
		return "$status"
	fi
	echo "built $output in $((SECONDS - start))s" >&2
}

# Demo accounts. The other test cards are left as they are on purpose:
# johnson.robert.e.jr has no account (self-enrollment), the expired,
# noeku and rogue cards are refused (see port 8444 for the explanations).
seed_demo_accounts() {
	local failed=0
	create_account --edipi 1234567890 --username john.q.doe \
		--given-name John --middle-name Quincy --family-name Doe --email john.q.doe@mail.mil --affiliation USA || failed=1
	create_account --edipi 1234567891 --username jane.smith \
		--given-name Jane --family-name Smith --email jane.smith@mail.mil --affiliation USN || failed=1
	create_account --edipi 1234567895 --username mary.k.obrien-smith \
		--given-name "Mary Ann" --family-name "O'Brien-Smith" --affiliation CONTRACTOR --status disabled || failed=1
	create_account --edipi 1234567896 --username luis.a.garcia \
		--given-name Luis --family-name Garcia --affiliation USAF --status pending || failed=1
	# An ECA contractor, known by the email address in the certificate
	# (eca_key email in the Caddyfile).
	create_account --credential eca --key carl.contractor@example.com --username carl.contractor \
		--given-name Carl --family-name Contractor --email carl.contractor@example.com --affiliation CONTRACTOR || failed=1
	return "$failed"
}

create_account() {
	"$output" cacgate accounts create --address localhost:2019 "$@"
}

# The start-up hint: a walk-through that works as printed (pasted into a
# shell in any directory).
print_hint() {
	cat >&2 <<'MSG'

cacgate demo is running. Ctrl-C to stop.
  https://localhost:8443   the gateway (the TLS handshake verifies the card)
  https://localhost:8444   the same gateway, explaining refused cards in pages
  http://127.0.0.1:9080    the legacy app itself: shows the headers it receives
  localhost:2019           Caddy's admin API (accounts under /cacgate/)

Try it with curl in another shell. A browser (or curl with Accept: text/html)
is first sent to the consent banner; the cookie jar keeps the "I Accept":
MSG
	printf '  cd %q\n' "$PWD" >&2
	cat >&2 <<'MSG'
  card=testdata/pki/cards/doe.john.quincy jar=$(mktemp)
  c() { curl -sS --cacert testdata/pki/root.pem --cert $card.pem --key $card-key.pem -b "$jar" -c "$jar" "$@"; }
  c -o /dev/null -w '%{http_code} %{redirect_url}\n' -H 'Accept: text/html' https://localhost:8443/  # 303 to the banner
  csrf=$(c 'https://localhost:8443/.cacgate/consent?next=/' | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
  c -o /dev/null -w '%{http_code}\n' -d "csrf=$csrf" -d next=/ https://localhost:8443/.cacgate/consent  # 303: accepted
  c https://localhost:8443/ | grep -E 'X-Remote-User|X-Cac-Edipi'  # the legacy app, as john.q.doe
  curl -sS --cacert testdata/pki/root.pem https://localhost:8443/api  # no card: 401 certificate_required

In a browser: import testdata/pki/cards/doe.john.quincy.p12 (password
cacgate-test) and trust testdata/pki/root.pem in a throwaway profile; the
exact commands are in README.md, "Walk-through with a browser".
MSG
}

run_demo() {
	mkdir -p .demo
	"$output" run --config Caddyfile --adapter caddyfile &
	caddy_pid=$!
	local ready=
	for _ in {1..150}; do
		if "$output" cacgate accounts list --address localhost:2019 >/dev/null 2>&1; then
			ready=1
			break
		fi
		if ! kill -0 "$caddy_pid" 2>/dev/null; then
			echo "caddy exited; see the log above" >&2
			exit 1
		fi
		sleep 0.2
	done
	if [ -z "$ready" ]; then
		echo "caddy's admin API (localhost:2019) did not answer within 30s; stopping it" >&2
		exit 1
	fi
	if [ ! -f .demo/seeded ]; then
		if seed_demo_accounts >/dev/null; then
			touch .demo/seeded
		else
			echo "some demo accounts could not be created (see above); delete .demo/ to start over" >&2
		fi
	fi
	print_hint
	local status=0
	wait "$caddy_pid" || status=$?
	caddy_pid=
	return "$status"
}

case "${1:-build}" in
build) build ;;
run)
	build
	run_demo
	;;
*)
	echo "usage: $0 [build|run]" >&2
	exit 2
	;;
esac
