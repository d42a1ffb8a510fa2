package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// serverConfig is one Caddy process of the run. Every server is the same
// binary with the same TLS setup (the README's recommended one: the
// handshake verifies the card, client_auth verify_if_given + trust_pool);
// gateways add the cacgate app and handler, bare servers do not.
type serverConfig struct {
	name      string
	gate      bool // cacgate in front of reverse_proxy
	rsa       bool // RSA-2048 server key instead of ECDSA P-256
	cacheSize int  // cacgate cache_size; 0 for the default (10,000)
	// cacheTTL is cacgate's cache_ttl (0: the default minute).
	cacheTTL time.Duration
	db       string // account database (gateways)
	roster   string // roster CSV: self-enrollment on (the flood needs it)
	// headers is the identity the gateway sends the backend.
	headers headerSet
	// quietProxyLog routes reverse_proxy's own logger nowhere (see
	// options.quietProxyLog).
	quietProxyLog bool

	// The soak's additions (zero values: as for the other scenarios).
	// pgDSN puts the account database on PostgreSQL instead of db; the
	// node gets it in its environment, as a cluster's nodes do, so it is
	// in no file.
	pgDSN string
	// node names the gateway in its audit entries.
	node string
	// passwordLogin turns on password sign-in without a card.
	passwordLogin bool
	// crlRefresh and maxCacheAge are the revocation refresh_interval and
	// max_cache_age (0: the defaults).
	crlRefresh, maxCacheAge time.Duration
	// contact is the refusal pages' contact line (default "bench"); the
	// soak's config reloads change it.
	contact string
}

// headerSet is which identity headers a gateway sends the backend.
type headerSet int

const (
	headersDefault  headerSet = iota // the eight plain headers
	headersAll                       // the eight and the signed assertion
	headersUserOnly                  // X-Remote-User alone
)

// server is a running Caddy.
type server struct {
	cfg       serverConfig
	dir       string
	port      int
	adminPort int
	proc      *proc
}

func (s *server) baseURL() string { return fmt.Sprintf("https://localhost:%d", s.port) }
func (s *server) adminURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", s.adminPort)
}

// caddyfile renders the server's configuration. The access log is off (no
// log directive in the site); Caddy's own log, with the audit trail, goes
// to a file at INFO, as in production. Admin listens on loopback only, for
// /metrics and /debug/pprof.
func (s *server) caddyfile(p *benchPKI, backend string) string {
	cert, key := p.serverCert, p.serverKey
	if s.cfg.rsa {
		cert, key = p.rsaCert, p.rsaKey
	}
	var global, site strings.Builder
	if s.cfg.gate {
		global.WriteString("\tcacgate {\n")
		if s.cfg.pgDSN != "" {
			global.WriteString("\t\tstore postgres {env.CACGATE_PG_DSN}\n")
		} else {
			fmt.Fprintf(&global, "\t\tstore sqlite %s\n", s.cfg.db)
		}
		if s.cfg.node != "" {
			fmt.Fprintf(&global, "\t\tnode %s\n", s.cfg.node)
		}
		if s.cfg.cacheSize > 0 {
			fmt.Fprintf(&global, "\t\tcache_size %d\n", s.cfg.cacheSize)
		}
		if s.cfg.cacheTTL > 0 {
			fmt.Fprintf(&global, "\t\tcache_ttl %s\n", s.cfg.cacheTTL)
		}
		// DoD's revocation data are CRLs; the test CA's is loaded from a
		// file, as an air-gapped gateway would.
		fmt.Fprintf(&global, "\t\trevocation {\n\t\t\tmode crl\n\t\t\tcrl_files %s\n\t\t\tcrl_issuers %s\n\t\t\tfetch_crls off\n",
			p.crlFile, p.intermediateFile)
		if s.cfg.crlRefresh > 0 {
			fmt.Fprintf(&global, "\t\t\trefresh_interval %s\n", s.cfg.crlRefresh)
		}
		if s.cfg.maxCacheAge > 0 {
			fmt.Fprintf(&global, "\t\t\tmax_cache_age %s\n", s.cfg.maxCacheAge)
		}
		global.WriteString("\t\t}\n")
		if s.cfg.roster != "" {
			fmt.Fprintf(&global, "\t\troster csv %s\n", s.cfg.roster)
		}
		global.WriteString("\t}\n")
		contact := s.cfg.contact
		if contact == "" {
			contact = "bench"
		}
		fmt.Fprintf(&site, "\tcacgate {\n\t\tcontact %q\n", contact)
		if s.cfg.roster != "" {
			// The enrollment flood (and the soak's enrollments and
			// password sign-ins) come from one loopback address; the
			// flood takes a fresh state (an identity check) for every
			// hashing post: they stand for many addresses.
			site.WriteString("\t\tenroll {\n\t\t\tattempts_per_ip 10000\n\t\t}\n")
		}
		if s.cfg.passwordLogin {
			site.WriteString("\t\tpassword_login on\n")
		}
		switch s.cfg.headers {
		case headersUserOnly:
			for _, f := range []string{"edipi", "given_name", "family_name", "email", "affiliation", "cert_sha256", "auth_method"} {
				fmt.Fprintf(&site, "\t\theader %s off\n", f)
			}
		case headersAll:
			site.WriteString("\t\theader assertion on\n")
		}
		site.WriteString("\t}\n")
	}
	logExtra := ""
	if s.cfg.quietProxyLog {
		logExtra = "\t\texclude http.handlers.reverse_proxy\n"
	}
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	auto_https off
	persist_config off
	storage file_system %[2]s/storage
	log {
		output file %[2]s/caddy.log
		level INFO
%[10]s	}
%[3]s}

https://localhost:%[4]d {
	bind 127.0.0.1
	tls %[5]s %[6]s {
		client_auth {
			mode verify_if_given
			trust_pool file %[7]s
		}
	}
%[8]s	reverse_proxy %[9]s
}
`, s.adminPort, s.dir, global.String(), s.port, cert, key, p.rootFile, site.String(), backend, logExtra)
}

// startServer writes the Caddyfile and starts caddy, retrying with fresh
// ports if another process took one first.
func startServer(ctx context.Context, caddyBin, workDir string, cfg serverConfig, p *benchPKI, backend string) (*server, error) {
	s := &server{cfg: cfg, dir: filepath.Join(workDir, "servers", cfg.name)}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		s.port, s.adminPort = ports[0], ports[1]
		cfgPath := filepath.Join(s.dir, "Caddyfile")
		if err := os.WriteFile(cfgPath, []byte(s.caddyfile(p, backend)), 0o600); err != nil {
			return nil, err
		}
		cmd := exec.Command(caddyBin, "run", "--config", cfgPath, "--adapter", "caddyfile")
		// Caddy's data and config directories under the run's own
		// directory; GOMAXPROCS and everything else as inherited.
		cmd.Env = append(os.Environ(), "HOME="+s.dir, "XDG_DATA_HOME="+filepath.Join(s.dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(s.dir, "config"))
		if cfg.pgDSN != "" {
			cmd.Env = append(cmd.Env, "CACGATE_PG_DSN="+cfg.pgDSN)
		}
		if s.proc, err = startProc(cfg.name, cmd, filepath.Join(s.dir, "stderr.log")); err != nil {
			return nil, err
		}
		if lastErr = s.waitReady(ctx, 60*time.Second); lastErr == nil {
			return s, nil
		}
		s.proc.stop(5 * time.Second)
		log := s.proc.logTail(5) + readTail(filepath.Join(s.dir, "caddy.log"), 5)
		if !strings.Contains(log, "address already in use") {
			return nil, fmt.Errorf("server %s: %w\n%s", cfg.name, lastErr, log)
		}
	}
	return nil, fmt.Errorf("server %s: %w", cfg.name, lastErr)
}

// waitReady waits until the admin endpoint answers and the site accepts
// TCP connections.
func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		if s.proc.exited() {
			return fmt.Errorf("caddy exited: %v", s.proc.err)
		}
		resp, err := c.Get(s.adminURL() + "/config/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second); err == nil {
				conn.Close()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("not ready in time")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePorts returns n distinct free loopback ports (listeners are held
// until all are chosen).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// backendEnv set to 1 makes this program (or its test binary) the echo
// backend instead of the run.
const backendEnv = "CACGATE_BENCH_BACKEND"

// startBackendProc starts the echo backend (this program again, with
// backendEnv set) and returns its address.
func startBackendProc(workDir string) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), backendEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := os.Create(filepath.Join(workDir, "backend.log"))
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, "", err
	}
	p := &proc{name: "backend", cmd: cmd, log: out.Name(), done: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			addrCh <- strings.TrimSpace(sc.Text())
		}
		close(addrCh)
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	select {
	case addr, ok := <-addrCh:
		if !ok || addr == "" {
			p.stop(time.Second)
			return nil, "", fmt.Errorf("backend did not start: %s", p.logTail(5))
		}
		return p, addr, nil
	case <-time.After(30 * time.Second):
		p.stop(time.Second)
		return nil, "", errors.New("backend did not start in 30s")
	}
}

func readTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
