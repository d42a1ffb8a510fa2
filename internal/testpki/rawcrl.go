package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RawCRL returns an empty v2 CRL signed by a carrying exactly extensions,
// in the order given. crypto/x509's CreateRevocationList always adds a
// non-critical CRL number; this makes the CRLs it will not, such as one
// without a CRL number or with a critical one (RFC 5280 section 5.2.3
// forbids both), to test that they are refused.
func (a *Authority) RawCRL(thisUpdate, nextUpdate time.Time, extensions []pkix.Extension) ([]byte, error) {
	return RawCRL(a.Cert, a.Key, thisUpdate, nextUpdate, extensions)
}

// RawCRL is Authority.RawCRL for any CA certificate and its key (ECDSA or
// RSA), signed with SHA-256.
func RawCRL(issuer *x509.Certificate, key crypto.Signer, thisUpdate, nextUpdate time.Time, extensions []pkix.Extension) ([]byte, error) {
	var alg []byte
	var err error
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		alg, err = asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}})
	case *rsa.PublicKey:
		alg, err = asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue})
	default:
		return nil, errors.New("testpki: RawCRL signs with ECDSA or RSA keys only")
	}
	if err != nil {
		return nil, err
	}
	var exts [][]byte
	for _, ext := range extensions {
		der, err := asn1.Marshal(ext)
		if err != nil {
			return nil, err
		}
		exts = append(exts, der)
	}
	var b cryptobyte.Builder
	b.AddASN1(cryptobyteasn1.SEQUENCE, func(tbs *cryptobyte.Builder) {
		tbs.AddASN1Int64(1) // v2
		tbs.AddBytes(alg)
		tbs.AddBytes(issuer.RawSubject)
		tbs.AddASN1UTCTime(thisUpdate.UTC())
		tbs.AddASN1UTCTime(nextUpdate.UTC())
		if len(exts) == 0 {
			return
		}
		tbs.AddASN1(cryptobyteasn1.Tag(0).Constructed().ContextSpecific(), func(wrapper *cryptobyte.Builder) {
			wrapper.AddASN1(cryptobyteasn1.SEQUENCE, func(list *cryptobyte.Builder) {
				for _, der := range exts {
					list.AddBytes(der)
				}
			})
		})
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tbs)
	signature, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var out cryptobyte.Builder
	out.AddASN1(cryptobyteasn1.SEQUENCE, func(list *cryptobyte.Builder) {
		list.AddBytes(tbs)
		list.AddBytes(alg)
		list.AddASN1BitString(signature)
	})
	return out.Bytes()
}

// CRLNumberExtension is the CRL number extension (RFC 5280 section 5.2.3)
// for number, marked critical or not, for RawCRL.
func CRLNumberExtension(number int64, critical bool) (pkix.Extension, error) {
	value, err := asn1.Marshal(number)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 20}, Critical: critical, Value: value}, nil
}
