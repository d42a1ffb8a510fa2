package portal

import (
	"crypto/x509"
	"net/http"
	"strconv"
	"strings"

	"github.com/cacgate/cacgate/cacid"
	"github.com/cacgate/cacgate/internal/trustbundle"
	"github.com/cacgate/cacgate/internal/ui"
)

// The certificates page (seed 003's "DoD Certificates Download"): the CAs
// the site trusts for cards, to download and install, for people whose
// browser lacks the DoD roots and so does not trust the site or does not
// offer their card. Public: they may have no working card yet.
const (
	PathCertificates = ui.CertificatesPath
	// certificatesFile is the downloads' file name, without extension.
	certificatesFile    = "dod-certificates"
	PathCertificatesPEM = PathCertificates + "/" + certificatesFile + ".pem"
	PathCertificatesP7B = PathCertificates + "/" + certificatesFile + ".p7b"
)

// CertificatesData fills templates/certificates.html.
type CertificatesData struct {
	CAs              []CertificateRow
	PEMPath, PEMName string
	P7BPath, P7BName string
	Contact          string
}

// CertificateRow is one CA of the page's table.
type CertificateRow struct {
	Name, IssuerName, NotAfter, SHA256 string
}

// serveCertificates serves the page and its two downloads.
func (p *Portal) serveCertificates(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return MethodNotAllowed(w, r, "GET, HEAD")
	}
	var certs []*x509.Certificate
	if p.cfg.TrustCertificates != nil {
		certs = p.cfg.TrustCertificates(r)
	}
	switch r.URL.Path {
	case PathCertificatesPEM:
		if len(certs) == 0 {
			return p.noCertificates(w, r)
		}
		return download(w, r, "application/x-pem-file", certificatesFile+".pem", trustbundle.EncodePEM(certs))
	case PathCertificatesP7B:
		if len(certs) == 0 {
			return p.noCertificates(w, r)
		}
		der, err := trustbundle.EncodePKCS7(certs)
		if err != nil {
			return err
		}
		return download(w, r, "application/pkcs7-mime; smime-type=certs-only", certificatesFile+".p7b", der)
	case PathCertificates:
	default:
		return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "not_found", Title: "Not found", Detail: "No such file.", Contact: p.cfg.Contact})
	}
	data := CertificatesData{
		PEMPath: PathCertificatesPEM, PEMName: certificatesFile + ".pem",
		P7BPath: PathCertificatesP7B, P7BName: certificatesFile + ".p7b",
		Contact: p.cfg.Contact,
	}
	for _, c := range certs {
		data.CAs = append(data.CAs, CertificateRow{
			Name: displayName(c.Subject.CommonName, trustbundle.Subject(c)), IssuerName: displayName(c.Issuer.CommonName, trustbundle.Issuer(c)),
			NotAfter: c.NotAfter.UTC().Format("2 January 2006"), SHA256: colonHex(cacid.Fingerprint(c.Raw)),
		})
	}
	return ui.WriteHTML(w, http.StatusOK, p.certificatesPage, data)
}

func displayName(cn, dn string) string {
	if cn != "" {
		return cn
	}
	return dn
}

// colonHex writes a hex fingerprint as browsers and certutil show it.
func colonHex(h string) string {
	var b strings.Builder
	for i := 0; i+1 < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(h[i : i+2]))
	}
	return b.String()
}

func (p *Portal) noCertificates(w http.ResponseWriter, r *http.Request) error {
	return ui.WriteProblem(w, r, ui.Problem{Status: http.StatusNotFound, Code: "certificates_unknown", Title: "No certificates offered here",
		Detail:  "This site's gateway cannot tell from its configuration which certificate authorities it accepts, so it offers no certificates to download.",
		Steps:   []string{"Get the DoD certificates from the DoD Cyber Exchange (public.cyber.mil, \"PKI/PKE\").", "Or ask the site's administrators which ones you need."},
		Contact: p.cfg.Contact})
}

// download answers with a file to save. The CAs are public, so it may be
// cached briefly, not for long: a bundle changes when DISA adds a CA.
func download(w http.ResponseWriter, r *http.Request, contentType, name string, body []byte) error {
	h := w.Header()
	ui.SetSecurityHeaders(h)
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(body)
	return err
}
