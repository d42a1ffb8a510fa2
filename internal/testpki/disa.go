package testpki

import (
	"archive/zip"
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/cacgate/cacgate/internal/trustbundle"
)

// DISA-style bundle of the test CAs, laid out as DISA's
// unclass-certificates_pkcs7_DoD.zip is: one folder named after the
// bundle version holding the whole set as DER and PEM PKCS#7, one .p7b per
// root, the signer's chain, a README, and a checksum list that is a CMS
// SignedData over `sha256sum` output with CRLF line ends.
const (
	// DISABundleName is the folder (and file stem) inside the archive.
	DISABundleName = "Certificates_PKCS7_v5_14_TestDoD"
	// DISAZip is the archive, relative to the PKI directory.
	DISAZip = "disa/unclass-certificates_pkcs7_TestDoD.zip"
	// DISADERFile and DISAPEMFile are the whole set, unpacked.
	DISADERFile = "disa/" + DISABundleName + ".der.p7b"
	DISAPEMFile = "disa/" + DISABundleName + ".pem.p7b"
)

// disaEpoch dates every archive member, so an archive of the same files
// is the same bytes.
var disaEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// DISAFiles returns the DISA-style files of cas (roots and intermediates):
// the archive and the unpacked DER and PEM bundles, by the paths above.
// The checksum list is signed by a throwaway code-signing certificate made
// here (DISA's is the DoD PKE code-signing credential), whose certificate
// is the archive's DoD_PKE_CA_chain.pem.
func DISAFiles(cas []*x509.Certificate) (map[string][]byte, error) {
	der, err := trustbundle.EncodePKCS7(cas)
	if err != nil {
		return nil, err
	}
	pemBundle, err := trustbundle.EncodePKCS7PEM(cas)
	if err != nil {
		return nil, err
	}
	members := []outputFile{
		{path: DISABundleName + ".der.p7b", data: der},
		{path: DISABundleName + ".pem.p7b", data: pemBundle},
	}
	for _, root := range cas {
		if !bytes.Equal(root.RawSubject, root.RawIssuer) {
			continue
		}
		// Each root with the CAs under it, as DISA's per-root files are.
		set := []*x509.Certificate{root}
		for _, c := range cas {
			if c != root && bytes.Equal(c.RawIssuer, root.RawSubject) {
				set = append(set, c)
			}
		}
		p7, err := trustbundle.EncodePKCS7(set)
		if err != nil {
			return nil, err
		}
		stem := strings.ReplaceAll(root.Subject.CommonName, " ", "_")
		members = append(members, outputFile{path: DISABundleName + "_" + stem + ".der.p7b", data: p7})
	}
	members = append(members, outputFile{path: "README.txt", data: []byte(disaReadme)})
	signer, key, err := newCodeSigner()
	if err != nil {
		return nil, err
	}
	members = append(members, outputFile{path: "DoD_PKE_CA_chain.pem", data: certificatesPEM(signer)})
	var sums strings.Builder
	for _, m := range members {
		sum := sha256.Sum256(m.data)
		fmt.Fprintf(&sums, "%s  %s\r\n", hex.EncodeToString(sum[:]), m.path)
	}
	signed, err := signChecksums([]byte(sums.String()), signer, key)
	if err != nil {
		return nil, err
	}
	members = append(members, outputFile{path: DISABundleName + ".sha256", data: signed})

	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: DISABundleName + "/" + m.path, Method: zip.Deflate, Modified: disaEpoch})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(m.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return map[string][]byte{DISAZip: zbuf.Bytes(), DISADERFile: der, DISAPEMFile: pemBundle}, nil
}

// newCodeSigner makes the self-signed certificate that signs the checksum
// list.
func newCodeSigner() (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey(false)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "TEST DoD PKE Code Signing (throwaway)", Organization: []string{"U.S. Government"}, Country: []string{"US"}},
		NotBefore:   disaEpoch,
		NotAfter:    disaEpoch.AddDate(20, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("testpki: code-signing certificate: %w", err)
	}
	return cert, key, nil
}

// signChecksums wraps the list in a CMS SignedData, as DISA's .sha256 is
// (`openssl smime -verify -inform DER` prints the list back).
func signChecksums(list []byte, signer *x509.Certificate, key crypto.Signer) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(list)
	if err != nil {
		return nil, err
	}
	if err := sd.AddSigner(signer, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("testpki: signing the checksum list: %w", err)
	}
	return sd.Finish()
}

const disaReadme = `TEST PKI - FOR TESTING ONLY

A DISA-style PKCS#7 bundle of the cacgate test PKI's CAs, laid out like
DISA's unclass-certificates_pkcs7_DoD.zip:

  ` + DISABundleName + `.der.p7b   every CA, PKCS#7, DER
  ` + DISABundleName + `.pem.p7b   every CA, PKCS#7, PEM
  ` + DISABundleName + `_<root>.der.p7b   one root and the CAs under it
  ` + DISABundleName + `.sha256    SHA-256 of every file, CMS-signed
  DoD_PKE_CA_chain.pem   the certificate that signed the checksum list

Check it:
  openssl smime -verify -noverify -in ` + DISABundleName + `.sha256 -inform DER | sha256sum -c
List it:
  openssl pkcs7 -in ` + DISABundleName + `.pem.p7b -print_certs -noout
`
