package trustbundle

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
)

// parseCertificates reads every certificate of a file: PKCS#7 (DER or
// PEM), PEM certificates (several blocks, PKCS#7 blocks among them), or
// DER certificates.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("empty file")
	}
	if !bytes.Contains(trimmed, []byte("-----BEGIN")) {
		// DER: a certificate (or several back to back), else PKCS#7.
		if certs, err := x509.ParseCertificates(trimmed); err == nil && len(certs) > 0 {
			return certs, nil
		}
		certs, err := ParsePKCS7(trimmed)
		if err != nil {
			return nil, errors.New("neither a DER certificate nor PKCS#7")
		}
		return certs, nil
	}
	var certs []*x509.Certificate
	rest := trimmed
	for n := 0; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %v", n+1, err)
			}
			certs = append(certs, c)
		case pemTypesPKCS7[block.Type]:
			p7, err := parsePKCS7(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM block %d: %v", n+1, err)
			}
			certs = append(certs, p7.Certificates...)
		default:
			return nil, fmt.Errorf("PEM block %d is %q, not a certificate", n+1, block.Type)
		}
	}
	if len(bytes.TrimSpace(rest)) > 0 && bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, errors.New("malformed PEM")
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates")
	}
	return certs, nil
}

// addZip loads an archive as a folder tree: DISA ships its bundles as a
// .zip of one folder holding the .p7b files and their checksum list.
func (l *loader) addZip(label string, data []byte) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		l.refuseFile(label, "not a zip archive: "+err.Error())
		return
	}
	var files []file
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || !wanted(zf.Name) || strings.HasPrefix(pathBase(zf.Name), ".") {
			continue
		}
		if err := l.count(int64(zf.UncompressedSize64)); err != nil {
			l.refuseFile(label, err.Error())
			return
		}
		if zf.UncompressedSize64 > MaxFileSize {
			l.refuseFile(label+"!"+zf.Name, fmt.Sprintf("larger than %d bytes", MaxFileSize))
			continue
		}
		member, err := readMember(zf)
		if err != nil {
			l.refuseFile(label+"!"+zf.Name, err.Error())
			continue
		}
		files = append(files, file{name: zf.Name, data: member})
	}
	l.addFolder(label, files)
}

func pathBase(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// readMember inflates one archive member, never past MaxFileSize whatever
// its header claims.
func readMember(zf *zip.File) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxFileSize)
	}
	return data, nil
}

// checksumList is a folder's SHA-256 list, by file name; err set when it
// is unusable, which refuses every file of the folder.
type checksumList struct {
	sums map[string][]byte
	err  error
}

// check verifies a file of the list's folder against it.
func (c *checksumList) check(name string, data []byte) error {
	if c.err != nil {
		return c.err
	}
	want, ok := c.sums[name]
	if !ok {
		return errors.New("not in its folder's checksum list")
	}
	got := sha256.Sum256(data)
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return errors.New("SHA-256 does not match its folder's checksum list (corrupted or altered)")
	}
	return nil
}

// parseChecksums reads a checksum list: DISA's (a CMS SignedData whose
// content is `sha256sum` output, signed by the DoD PKE code-signing
// certificate), or the plain `sha256sum` / `openssl dgst` text. A signed
// list's signature must verify. Its signer is not checked against any
// trust: the list guards against a corrupted download, not against
// someone able to replace the whole archive (verify DISA's published root
// fingerprints for that, as DISA's README says).
func parseChecksums(data []byte) (*checksumList, error) {
	text := data
	if !looksLikeText(data) || bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		der := data
		if block, _ := pem.Decode(data); block != nil {
			der = block.Bytes
		}
		p7, err := parsePKCS7(der)
		if err != nil {
			return nil, err
		}
		if len(p7.Signers) == 0 {
			return nil, errors.New("CMS list is not signed")
		}
		if err := p7.Verify(); err != nil {
			return nil, fmt.Errorf("signature does not verify: %v", err)
		}
		text = p7.Content
	}
	sums := map[string][]byte{}
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, sum, ok := parseChecksumLine(line)
		if !ok {
			return nil, fmt.Errorf("unreadable line %q", clip(line))
		}
		sums[name] = sum
	}
	if len(sums) == 0 {
		return nil, errors.New("no checksums")
	}
	return &checksumList{sums: sums}, nil
}

// parseChecksumLine reads "<hex>  name", "<hex> *name" (sha256sum) or
// "SHA256(name)= <hex>" (openssl dgst); the name is taken without its
// folder.
func parseChecksumLine(line string) (name string, sum []byte, ok bool) {
	if rest, found := strings.CutPrefix(line, "SHA256("); found {
		n, h, found := strings.Cut(rest, ")=")
		if !found {
			return "", nil, false
		}
		name, line = n, strings.TrimSpace(h)
	} else {
		h, n, found := strings.Cut(line, " ")
		if !found {
			return "", nil, false
		}
		name, line = strings.TrimPrefix(strings.TrimSpace(n), "*"), h
	}
	sum, err := hex.DecodeString(line)
	if err != nil || len(sum) != sha256.Size || name == "" {
		return "", nil, false
	}
	return pathBase(strings.ReplaceAll(name, `\`, "/")), sum, true
}

func looksLikeText(data []byte) bool {
	for _, b := range data[:min(len(data), 512)] {
		if b < 0x09 || (b > 0x0d && b < 0x20) || b == 0x7f {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
