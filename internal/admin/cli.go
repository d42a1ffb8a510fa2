package admin

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/store"
)

// Helpers of the accounts commands that need no Caddy: reading the files
// they are given and writing the export file.

// DirectChangeNote tells when running servers see a change the CLI made in
// the database directly, on a store that does not announce changes.
const DirectChangeNote = "Note: changed in the database directly; a running server applies it within its cache_ttl (default 1m). Use --address or --api to apply it at once through the server."

// FingerprintArg accepts a card's hex SHA-256 (colons allowed, any case)
// or the path of its PEM certificate.
func FingerprintArg(arg string) (string, error) {
	clean := strings.ToLower(strings.ReplaceAll(arg, ":", ""))
	if store.ValidFingerprint(clean) {
		return clean, nil
	}
	data, err := ReadSmallFile(arg, MaxPEM)
	if err != nil {
		return "", fmt.Errorf("%q is neither a SHA-256 fingerprint nor a readable certificate file", arg)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s holds no PEM certificate", arg)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", err
	}
	return cacid.Fingerprint(block.Bytes), nil
}

// WriteExportFile writes an export to path with write. The file holds
// personal data, so it is made readable by its owner only (mode 0600), and
// only complete exports reach path: a failed one leaves nothing behind.
// Without force an existing file is refused (fs.ErrExist) before the
// export starts. With force the export goes to a temporary file beside
// path, made 0600 whatever mode the old file had, synced and renamed over
// path only once complete, so a failure leaves the previous file as it was.
func WriteExportFile(path string, force bool, write func(io.Writer) error) (err error) {
	var f *os.File
	if force {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name()) // a partial export is worse than none
		}
	}()
	if force {
		// CreateTemp makes the file 0600; say so in case that ever changes.
		if err := f.Chmod(0o600); err != nil {
			return err
		}
	}
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if force {
		return os.Rename(f.Name(), path)
	}
	return nil
}

// ReadSmallFile reads a file the user named, refusing one larger than max.
func ReadSmallFile(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return data, nil
}
