// Package trustbundle loads the CA certificates a site trusts for cards
// from the files the DoD PKI ships them in: DISA's PKCS#7 bundles (.p7b,
// DER or PEM), the .zip they are distributed in (with its checksum list),
// PEM or DER certificate files, and directories of any of these. Every
// certificate is judged on its own: one that is not a CA, has expired or
// has a weak key is refused and named (file, subject, reason), as is a
// file that does not parse or fails its checksum; a bundle with no usable
// CA is an error. It never adds the system roots: DoD trust stays apart
// from the Web PKI.
//
// It also writes bundles (PEM and certs-only PKCS#7, for the certificates
// download page) and compares two bundles (`caddy cacgate trust inspect`).
// Nothing here imports Caddy.
package trustbundle

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cacgate/cacgate/cacid"
)

// Bounds on what Load reads: a DISA archive is a few hundred kilobytes
// with a few dozen files, so these only stop a mistaken path (a disk
// image, /) or an archive built to exhaust memory.
const (
	// MaxFileSize bounds one file, or one archive member once inflated.
	MaxFileSize = 16 << 20
	// MaxFiles bounds the files read in all, archive members included.
	MaxFiles = 2000
	// maxTotal bounds the bytes read in all, archives inflated.
	maxTotal = 128 << 20
	// maxDepth bounds how deep directories are walked: DISA's archive
	// unpacks into one folder, which an operator may point at or at its
	// parent.
	maxDepth = 3
)

// signerChainFile is the file of DISA's archives that holds the chain of
// the DoD PKE code-signing certificate that signed the checksum list (a
// DoD root and one e-mail CA): it serves checking the archive, not
// admitting cards, so it is not loaded as trust.
const signerChainFile = "dod_pke_ca_chain.pem"

// CA is one accepted CA certificate and where it was found.
type CA struct {
	Cert *x509.Certificate
	// Source is the file, or archive!member, it was read from (the first
	// one, when several files carry it, as DISA's archives do).
	Source string
}

// Refusal names a certificate or a file that was not loaded, and why.
type Refusal struct {
	Source string `json:"source"`
	// Subject is the refused certificate's subject; "" when the whole
	// file was refused.
	Subject string `json:"subject,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Reason  string `json:"reason"`
}

func (r Refusal) String() string {
	if r.Subject == "" {
		return r.Source + ": " + r.Reason
	}
	return fmt.Sprintf("%s: %q: %s", r.Source, r.Subject, r.Reason)
}

// Bundle is the outcome of one Load: the accepted CAs (distinct, sorted
// by subject) and the refusals.
type Bundle struct {
	CAs     []CA
	Refused []Refusal
	// Digest is the hex SHA-256 of every file read (names and contents):
	// equal digests, equal bundles. A watcher compares it to see whether
	// the files changed.
	Digest string

	pool *x509.CertPool
}

// Pool returns the accepted CAs as a certificate pool. Every call returns
// the same pool: do not add to it.
func (b *Bundle) Pool() *x509.CertPool { return b.pool }

// Certificates returns the accepted CA certificates, sorted by subject.
func (b *Bundle) Certificates() []*x509.Certificate {
	certs := make([]*x509.Certificate, len(b.CAs))
	for i, ca := range b.CAs {
		certs[i] = ca.Cert
	}
	return certs
}

// ErrNoCA is wrapped by Load's error when nothing usable was found.
var ErrNoCA = errors.New("no usable CA certificate")

// Load reads the CA certificates in paths (files of any supported kind,
// or directories of them) as of now. A path that cannot be read is an
// error; so is a bundle without a single usable CA (the error names the
// refusals). Other refusals are in Bundle.Refused for the caller to log.
func Load(paths []string, now time.Time) (*Bundle, error) {
	if len(paths) == 0 {
		return nil, errors.New("trustbundle: no files given")
	}
	l := &loader{now: now, b: &Bundle{pool: x509.NewCertPool()}, seen: map[string]bool{}, digest: sha256.New()}
	for _, p := range paths {
		if err := l.addPath(p); err != nil {
			return nil, err
		}
	}
	b := l.b
	b.Digest = hex.EncodeToString(l.digest.Sum(nil))
	slices.SortStableFunc(b.CAs, func(x, y CA) int {
		if c := strings.Compare(Subject(x.Cert), Subject(y.Cert)); c != 0 {
			return c
		}
		return strings.Compare(cacid.Fingerprint(x.Cert.Raw), cacid.Fingerprint(y.Cert.Raw))
	})
	if len(b.CAs) == 0 {
		return b, fmt.Errorf("trustbundle: %s: %w%s", strings.Join(paths, ", "), ErrNoCA, refusalSummary(b.Refused))
	}
	return b, nil
}

// refusalSummary lists the first refusals for an error message.
func refusalSummary(refused []Refusal) string {
	const shown = 8
	if len(refused) == 0 {
		return ""
	}
	var sb strings.Builder
	sb.WriteString("; refused: ")
	for i, r := range refused {
		if i == shown {
			fmt.Fprintf(&sb, "; and %d more", len(refused)-shown)
			break
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(r.String())
	}
	return sb.String()
}

// Subject is a certificate's subject as `openssl x509 -nameopt RFC2253`
// prints it (the form allowed_issuers takes).
func Subject(c *x509.Certificate) string { return cacid.DistinguishedName(c.RawSubject, c.Subject) }

// Issuer is a certificate's issuer in the same form.
func Issuer(c *x509.Certificate) string { return cacid.DistinguishedName(c.RawIssuer, c.Issuer) }

type loader struct {
	now    time.Time
	b      *Bundle
	seen   map[string]bool // fingerprints already judged
	digest hash.Hash
	files  int
	total  int64
}

// file is one file's name (slash-separated, relative to its folder's
// root) and contents.
type file struct {
	name string
	data []byte
}

func (l *loader) addPath(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("trustbundle: %w", err)
	}
	if fi.IsDir() {
		files, err := l.readDir(p)
		if err != nil {
			return err
		}
		l.addFolder(p, files)
		return nil
	}
	data, err := l.readFile(p, fi)
	if err != nil {
		return err
	}
	l.hashFile(p, data)
	switch ext := strings.ToLower(filepath.Ext(p)); ext {
	case ".zip":
		l.addZip(p, data)
	case ".sha256":
		return fmt.Errorf("trustbundle: %s is a checksum list, not certificates: name the archive or directory it belongs to", p)
	default:
		l.addCertFile(p, data)
	}
	return nil
}

func (l *loader) readFile(p string, fi os.FileInfo) ([]byte, error) {
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("trustbundle: %s is not a regular file", p)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("trustbundle: %s is larger than %d bytes", p, MaxFileSize)
	}
	if err := l.count(fi.Size()); err != nil {
		return nil, fmt.Errorf("trustbundle: %s: %w", p, err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("trustbundle: %w", err)
	}
	if len(data) > MaxFileSize { // grew since the stat
		return nil, fmt.Errorf("trustbundle: %s is larger than %d bytes", p, MaxFileSize)
	}
	return data, nil
}

// count charges one file of n bytes against the bounds.
func (l *loader) count(n int64) error {
	l.files++
	l.total += n
	if l.files > MaxFiles {
		return fmt.Errorf("more than %d files", MaxFiles)
	}
	if l.total > maxTotal {
		return fmt.Errorf("more than %d bytes in all", maxTotal)
	}
	return nil
}

func (l *loader) hashFile(name string, data []byte) {
	fmt.Fprintf(l.digest, "%d:%s:%d:", len(name), name, len(data))
	l.digest.Write(data)
}

// readDir reads the files under dir, maxDepth levels deep, in name order.
func (l *loader) readDir(dir string) ([]file, error) {
	var files []file
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("trustbundle: %w", err)
		}
		for _, e := range entries {
			name := path.Join(rel, e.Name())
			full := filepath.Join(dir, filepath.FromSlash(name))
			if strings.HasPrefix(e.Name(), ".") {
				continue // editor and VCS files, the ..data links of Kubernetes mounts
			}
			fi, err := os.Stat(full) // follows links (ConfigMap mounts are links)
			if err != nil {
				return fmt.Errorf("trustbundle: %w", err)
			}
			if fi.IsDir() {
				if depth < maxDepth {
					if err := walk(name, depth+1); err != nil {
						return err
					}
				}
				continue
			}
			if !wanted(name) && !strings.EqualFold(path.Ext(name), ".zip") {
				continue
			}
			data, err := l.readFile(full, fi)
			if err != nil {
				return err
			}
			l.hashFile(full, data)
			files = append(files, file{name: name, data: data})
		}
		return nil
	}
	if err := walk("", 1); err != nil {
		return nil, err
	}
	return files, nil
}

// certExtensions are the files a directory or archive is searched for;
// others (README.txt, DISA's .html notes) are passed over.
var certExtensions = map[string]bool{".p7b": true, ".p7c": true, ".pem": true, ".crt": true, ".cer": true, ".der": true, ".sha256": true}

func wanted(name string) bool { return certExtensions[strings.ToLower(path.Ext(name))] }

// addFolder loads a directory's or an archive's files, after checking
// them against the checksum list of their folder when there is one.
func (l *loader) addFolder(label string, files []file) {
	sums := map[string]*checksumList{} // by folder
	for _, f := range files {
		if strings.EqualFold(path.Ext(f.name), ".sha256") {
			dir := path.Dir(f.name)
			list, err := parseChecksums(f.data)
			if err != nil {
				l.refuseFile(join(label, f.name), "checksum list unusable: "+err.Error())
				list = &checksumList{err: fmt.Errorf("its checksum list %s is unusable", path.Base(f.name))}
			}
			if prev := sums[dir]; prev != nil {
				list = &checksumList{err: errors.New("its folder has more than one checksum list")}
			}
			sums[dir] = list
		}
	}
	for _, f := range files {
		base := strings.ToLower(path.Base(f.name))
		if strings.EqualFold(path.Ext(f.name), ".sha256") || base == signerChainFile {
			continue
		}
		if list := sums[path.Dir(f.name)]; list != nil {
			if err := list.check(path.Base(f.name), f.data); err != nil {
				l.refuseFile(join(label, f.name), err.Error())
				continue
			}
		}
		if strings.EqualFold(path.Ext(f.name), ".zip") {
			// DISA's archive in a directory (readDir passes archives on;
			// addZip does not, so archives do not nest).
			l.addZip(join(label, f.name), f.data)
			continue
		}
		l.addCertFile(join(label, f.name), f.data)
	}
}

func join(label, name string) string {
	if strings.HasSuffix(strings.ToLower(label), ".zip") {
		return label + "!" + name
	}
	return filepath.Join(label, filepath.FromSlash(name))
}

// addCertFile loads a certificate file of any supported encoding: PKCS#7
// (DER or PEM), PEM certificates, DER certificates.
func (l *loader) addCertFile(source string, data []byte) {
	certs, err := parseCertificates(data)
	if err != nil {
		l.refuseFile(source, err.Error())
		return
	}
	for _, c := range certs {
		l.judge(source, c)
	}
}

func (l *loader) refuseFile(source, reason string) {
	l.b.Refused = append(l.b.Refused, Refusal{Source: source, Reason: reason})
}

// judge accepts c or records why not.
func (l *loader) judge(source string, c *x509.Certificate) {
	fp := cacid.Fingerprint(c.Raw)
	if l.seen[fp] {
		return
	}
	l.seen[fp] = true
	if reason := Refuse(c, l.now); reason != "" {
		l.b.Refused = append(l.b.Refused, Refusal{Source: source, Subject: Subject(c), SHA256: fp, Reason: reason})
		return
	}
	l.b.CAs = append(l.b.CAs, CA{Cert: c, Source: source})
	l.b.pool.AddCert(c)
}
