package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/cacgate/cacgate/internal/gateway"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden adapt files with the current output (review the diff!)")

// TestCaddyfileAdapt checks golden files: a Caddyfile, a "----------" line,
// and the JSON it must adapt to. The JSON shows the directive order (cacgate
// before basic_auth, file_server and reverse_proxy) and every option.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(data), "\n----------\n")
			if *updateGolden {
				out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				json.Indent(&pretty, out, "", "\t")
				if err := os.WriteFile(f, []byte(in+"\n----------\n"+pretty.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !ok {
				t.Fatal("golden file has no ---------- separator")
			}
			if !caddytest.CompareAdapt(t, f, in, "caddyfile", want) {
				t.Fatal("adapted config differs from the golden file")
			}
		})
	}
}

func TestHandlerCaddyfileErrors(t *testing.T) {
	for _, src := range []string{
		`cacgate extra`,
		`cacgate {
banner
}`,
		`cacgate {
banner a b
}`,
		`cacgate {
contact a
contact b
}`,
		`cacgate {
consent_ttl forever
}`,
		`cacgate {
required_policies any
}`,
		`cacgate {
header user
}`,
		"cacgate {\noidc extra {\n}\n}",
		"cacgate {\noidc {\nissuer\n}\n}",
		"cacgate {\noidc {\nissuer a\nissuer b\n}\n}",
		"cacgate {\noidc {\ncode_ttl soon\n}\n}",
		"cacgate {\noidc {\nbogus 1\n}\n}",
		"cacgate {\noidc {\nclient\n}\n}",
		"cacgate {\noidc {\nclient a b {\n}\n}\n}",
		"cacgate {\noidc {\nclient a {\nsecret\n}\n}\n}",
		"cacgate {\noidc {\nclient a {\nredirect_uri\n}\n}\n}",
		"cacgate {\noidc {\nclient a {\nallow_password yes\n}\n}\n}",
		"cacgate {\noidc {\nclient a {\nrefresh_ttl never\n}\n}\n}",
		"cacgate {\noidc {\nclient a {\nname x\nname y\n}\n}\n}",
		"cacgate {\noidc {\nclient a {\nbogus\n}\n}\n}",
		"cacgate {\noidc {\n}\noidc {\n}\n}",
		`cacgate {
header user A
header user B
}`,
		`cacgate {
exempt
}`,
		`cacgate {
trust_pool
}`,
		`cacgate {
trust_pool nosuchpool
}`,
		`cacgate {
unknown_option 1
}`,
		`cacgate {
accept
}`,
		`cacgate {
accept twic
}`,
		`cacgate {
accept piv eca {
issuers x
}
}`,
		`cacgate {
accept eca {
colour blue
}
}`,
		`cacgate {
session_idle
}`,
		`cacgate {
session_limit 0
}`,
		`cacgate {
session_limit many
}`,
		`cacgate {
session_idle soon
}`,
		`cacgate {
enroll {
password_min_age
}
}`,
		`cacgate {
enroll {
password_max_age soon
}
}`,
		`cacgate {
enroll {
password_min_age -1h
}
}`,
		`cacgate {
enroll {
password_max_age 10m
}
}`,
		`cacgate {
enroll {
password_max_age 24h
password_min_age 48h
}
}`,
		`cacgate {
enroll {
password_min_age 1h 2h
}
}`,
	} {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
}

func TestGlobalCaddyfileErrors(t *testing.T) {
	for _, src := range []string{
		`cacgate {
mail {
smtp relay.example.mil
}
}`,
		`cacgate {
mail {
from a@example.mil
}
}`,
		`cacgate {
mail {
smtp relay.example.mil 99999
from a@example.mil
}
}`,
		`cacgate {
mail {
smtp relay.example.mil
from a@example.mil
from b@example.mil
}
}`,
		`cacgate {
mail {
smtp relay.example.mil
from a@example.mil
bogus
}
}`,
		`cacgate {
inactive_after soon
}`,
		`cacgate arg`,
		`cacgate {
roster http https://roster.example/verify {
keys
}
}`,
		`cacgate {
roster http https://roster.example/verify {
keys card_uuid edipi
}
}`,
		`cacgate {
roster http https://roster.example/verify {
keys ssn
}
}`,
		`cacgate {
roster csv roster.csv {
keys card_uuid
}
}`,
		`cacgate {
cache_size many
}`,
		`cacgate {
cache_ttl 1s
cache_ttl 2s
}`,
		`cacgate {
link_by_edipi maybe
}`,
		`cacgate {
store nosuchstore
}`,
		`cacgate {
store sqlite a b
}`,
		`cacgate {
store
}`,
		`cacgate {
bogus
}`,
		`cacgate {
revocation {
mode
}
}`,
		`cacgate {
revocation {
fail_open
fail_closed
}
}`,
		`cacgate {
revocation {
crl_files
}
}`,
		`cacgate {
revocation {
ocsp_timeout soon
}
}`,
		`cacgate {
revocation {
fetch_crls maybe
}
}`,
		`cacgate {
revocation {
bogus
}
}`,
		`cacgate {
revocation off extra
}`,
	} {
		var a App
		if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
}

func TestProvisionRejectsBadHeaderConfig(t *testing.T) {
	for _, headers := range []map[string]string{
		{"user": "X Bad Name"},
		{"nickname": "X-Nick"},
	} {
		h := Handler{Headers: headers}
		if err := h.provisionHeaders(); err == nil {
			t.Errorf("accepted %v", headers)
		}
	}
	h := Handler{Headers: map[string]string{"user": "x-forwarded-user", "email": ""}}
	if err := h.provisionHeaders(); err != nil {
		t.Fatal(err)
	}
	if h.headerNames[gateway.FieldUser] != "X-Forwarded-User" || h.headerNames[gateway.FieldEmail] != "" {
		t.Errorf("header names %q", h.headerNames)
	}
	// The defaults are stripped even when renamed or disabled.
	for _, n := range []string{"X-Remote-User", "x-forwarded-user", "X_Cac_Email", "x-cac-assertion", "X-Cac-Auth-Method"} {
		if !h.stripNames.Match(n) {
			t.Errorf("%s is not stripped", n)
		}
	}
	for _, n := range []string{"Accept", "X-Remote-Users", "X-Cac-Emai", "Cookie"} {
		if h.stripNames.Match(n) {
			t.Errorf("%s would be stripped", n)
		}
	}
}

func TestVerifierCaddyfileErrors(t *testing.T) {
	for _, src := range []string{
		"cacgate extra",
		"cacgate {\nrevocation maybe\n}",
		"cacgate {\nmax_chain_depth deep\n}",
		"cacgate {\nrequired_eku\n}",
		"cacgate {\nallowed_issuers a\nallowed_issuers b\n}",
		"cacgate {\nbogus\n}",
	} {
		var v Verifier
		if err := v.UnmarshalCaddyfile(caddyfile.NewTestDispenser(src)); err == nil {
			t.Errorf("accepted %q", src)
		}
	}
}

func TestPasswordAgesDefaults(t *testing.T) {
	dur := func(d time.Duration) *caddy.Duration { c := caddy.Duration(d); return &c }
	for _, tc := range []struct {
		ec             EnrollConfig
		minAge, maxAge time.Duration
		bad            bool
	}{
		{ec: EnrollConfig{}, minAge: 24 * time.Hour, maxAge: 60 * 24 * time.Hour},
		{ec: EnrollConfig{PasswordMinAge: dur(0), PasswordMaxAge: dur(0)}},
		{ec: EnrollConfig{PasswordMaxAge: dur(90 * 24 * time.Hour)}, minAge: 24 * time.Hour, maxAge: 90 * 24 * time.Hour},
		{ec: EnrollConfig{PasswordMinAge: dur(48 * time.Hour), PasswordMaxAge: dur(0)}, minAge: 48 * time.Hour},
		{ec: EnrollConfig{PasswordMinAge: dur(-time.Hour)}, bad: true},
		{ec: EnrollConfig{PasswordMaxAge: dur(12 * time.Hour)}, bad: true}, // shorter than the default minimum
	} {
		minAge, maxAge, err := tc.ec.passwordAges()
		if (err != nil) != tc.bad || minAge != tc.minAge || maxAge != tc.maxAge {
			t.Errorf("%+v: got %v %v %v", tc.ec, minAge, maxAge, err)
		}
	}
}

func TestSessionIdleValidate(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		ok   bool
	}{{0, true}, {2 * time.Minute, true}, {15 * time.Minute, true}, {30 * time.Second, false}, {-time.Minute, false}} {
		d := caddy.Duration(tc.idle)
		h := Handler{ConsentTTL: caddy.Duration(time.Hour), SessionIdle: &d}
		if err := h.Validate(); (err == nil) != tc.ok {
			t.Errorf("session_idle %v: Validate() = %v", tc.idle, err)
		}
	}
}
