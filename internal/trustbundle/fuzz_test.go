package trustbundle

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// FuzzLoadBytes feeds one hostile file, as every kind Load reads (a
// certificate file, an archive, a checksum list), through the parsers in
// memory: no panic, and no bundle without CAs reported as loaded.
func FuzzLoadBytes(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fuzz Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	p7, _ := EncodePKCS7([]*x509.Certificate{c})
	p7pem, _ := EncodePKCS7PEM([]*x509.Certificate{c})
	f.Add(p7)
	f.Add(p7pem)
	f.Add(EncodePEM([]*x509.Certificate{c}))
	f.Add(der)
	f.Add([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a.p7b\r\n"))
	f.Add([]byte("PK\x03\x04"))
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []string{"cert", "zip", "sums"} {
			l := &loader{now: now, b: &Bundle{pool: x509.NewCertPool()}, seen: map[string]bool{}, digest: sha256.New()}
			switch kind {
			case "cert":
				l.addCertFile("f.p7b", data)
			case "zip":
				l.addZip("f.zip", data)
			case "sums":
				_, _ = parseChecksums(data)
				continue
			}
			for _, ca := range l.b.CAs {
				if Refuse(ca.Cert, now) != "" {
					t.Fatalf("%s: accepted a certificate Refuse refuses", kind)
				}
			}
		}
	})
}
