package revocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

func TestAppendSerialMatchesDER(t *testing.T) {
	values := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(127), big.NewInt(128), big.NewInt(255), big.NewInt(256),
		big.NewInt(32767), big.NewInt(32768), big.NewInt(-1), big.NewInt(-128), big.NewInt(-129),
		new(big.Int).Lsh(big.NewInt(1), 159), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1)),
	}
	for _, v := range values {
		var b cryptobyte.Builder
		b.AddASN1BigInt(v)
		element := cryptobyte.String(b.BytesOrPanic())
		var want cryptobyte.String
		element.ReadASN1(&want, cryptobyteasn1.INTEGER)
		if got := appendSerial(nil, v); string(got) != string(want) {
			t.Errorf("appendSerial(%v) = %x, want %x", v, got, []byte(want))
		}
		if !isMinimalInteger(want) {
			t.Errorf("isMinimalInteger(%x) = false", []byte(want))
		}
	}
	for _, bad := range [][]byte{{}, {0x00, 0x01}, {0xff, 0x80}} {
		if isMinimalInteger(bad) {
			t.Errorf("isMinimalInteger(%x) = true", bad)
		}
	}
}

func TestIndexFindsExactlyTheListedSerials(t *testing.T) {
	ca := newTestPKI(t).ca
	var listed []*big.Int
	for i := range 2000 {
		n := randomSerial(t)
		switch i % 4 { // short serials and ones whose top bit forces a 00 octet
		case 1:
			n = big.NewInt(int64(i))
		case 2:
			n = new(big.Int).Lsh(big.NewInt(int64(0x80+i%0x7f)), uint(8*(i%19)))
		}
		listed = append(listed, n)
	}
	reasons := []int{0, 1, 2, 3, 4, 5, 6, 9, 10} // all but removeFromCRL (8)
	reasonOf := func(i int) int { return reasons[i%len(reasons)] }
	var entries []x509.RevocationListEntry
	for i, n := range listed {
		entries = append(entries, revokedEntry(n, reasonOf(i)))
	}
	// A serial listed twice keeps its first entry; removeFromCRL clears.
	duplicate, removed := randomSerial(t), randomSerial(t)
	entries = append(entries, revokedEntry(duplicate, 3), revokedEntry(duplicate, 5), revokedEntry(removed, reasonRemoveFromCRL))

	c := mustNew(t, Config{CRLIssuers: []*x509.Certificate{ca.cert}})
	index, err := c.indexCRL(ca.makeCRL(t, crlSpec{revoked: entries}), "test", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, n := range listed {
		pos, found := index.find(appendSerial(nil, n))
		if !found {
			t.Fatalf("serial %x not found", n)
		}
		key := n.String()
		if !seen[key] && int(index.reasons[pos]) != reasonOf(i) {
			t.Errorf("serial %x: reason %d, want %d", n, index.reasons[pos], reasonOf(i))
		}
		seen[key] = true
		for _, neighbour := range []*big.Int{new(big.Int).Add(n, big.NewInt(1)), new(big.Int).Sub(n, big.NewInt(1))} {
			if _, found := index.find(appendSerial(nil, neighbour)); found && !isListed(listed, neighbour) {
				t.Errorf("unlisted serial %x found", neighbour)
			}
		}
	}
	if pos, found := index.find(appendSerial(nil, duplicate)); !found || index.reasons[pos] != 3 {
		t.Errorf("duplicate serial: found %v, reason %d; want the first entry, reason 3", found, index.reasons[pos])
	}
	if _, found := index.find(appendSerial(nil, removed)); found {
		t.Error("serial with removeFromCRL reported revoked")
	}
	if index.thisUpdate.IsZero() || index.nextUpdate.Before(index.thisUpdate) || string(index.number) != "\x01" {
		t.Errorf("header: thisUpdate %v nextUpdate %v number %x", index.thisUpdate, index.nextUpdate, index.number)
	}
}

func isListed(list []*big.Int, n *big.Int) bool {
	for _, m := range list {
		if m.Cmp(n) == 0 {
			return true
		}
	}
	return false
}

func TestReadTime(t *testing.T) {
	cases := []struct {
		tag  cryptobyteasn1.Tag
		in   string
		want time.Time
		ok   bool
	}{
		{cryptobyteasn1.UTCTime, "491231235959Z", time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{cryptobyteasn1.UTCTime, "500101000000Z", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{cryptobyteasn1.GeneralizedTime, "20500101000000Z", time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{cryptobyteasn1.UTCTime, "250431000000Z", time.Time{}, false}, // 31 April
		{cryptobyteasn1.UTCTime, "251301000000Z", time.Time{}, false},
		{cryptobyteasn1.UTCTime, "250101240000Z", time.Time{}, false},
		{cryptobyteasn1.UTCTime, "2501010000+0Z", time.Time{}, false},
		{cryptobyteasn1.GeneralizedTime, "2025010100000Z", time.Time{}, false},
		{cryptobyteasn1.UTCTime, "250101000000+0100", time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), true}, // non-RFC 5280 form, via cryptobyte
	}
	for _, tc := range cases {
		var b cryptobyte.Builder
		b.AddASN1(tc.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(tc.in)) })
		s := cryptobyte.String(b.BytesOrPanic())
		var got time.Time
		ok := readTime(&s, &got)
		if ok != tc.ok || ok && !got.Equal(tc.want) {
			t.Errorf("readTime(%s) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseCRL feeds hostile bytes to the CRL parser and indexer, which
// must reject them without panicking.
func FuzzParseCRL(f *testing.F) {
	ca := newTestPKI(f).ca
	f.Add(ca.makeCRL(f, crlSpec{}))
	f.Add(ca.makeCRL(f, crlSpec{revoked: []x509.RevocationListEntry{revokedEntry(big.NewInt(1), 1), revokedEntry(big.NewInt(300), 6)}}))
	f.Add(ca.makeCRL(f, crlSpec{extensions: []pkix.Extension{issuingDistributionPoint(f, idp{
		OnlyContainsUserCerts: true,
		DistributionPoint:     distributionPointName{FullName: []asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("http://x/")}}},
	})}}))
	f.Add([]byte{0x30, 0x03, 0x30, 0x01})
	f.Fuzz(func(t *testing.T, der []byte) {
		h, err := parseCRLHeader(der)
		if err != nil {
			return
		}
		// Skip the signature: the point is the entry parsing behind it.
		index, err := buildIndex(h)
		if err != nil {
			return
		}
		for i := range index.len() {
			if _, found := index.find(index.serial(i)); !found {
				t.Fatalf("indexed serial %x not found", index.serial(i))
			}
		}
	})
}

// FuzzOCSPResponse feeds hostile responses to the validator.
func FuzzOCSPResponse(f *testing.F) {
	pki := newTestPKI(f)
	leaf := pki.ca.issueLeaf(f, leafOptions{})
	delegate := pki.ca.issueResponder(f, false)
	template := ocsp.Response{SerialNumber: leaf.SerialNumber, Status: ocsp.Good, ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}
	direct, err := ocsp.CreateResponse(pki.ca.cert, pki.ca.cert, template, pki.ca.key)
	if err != nil {
		f.Fatal(err)
	}
	template.Certificate = delegate.cert
	delegated, err := ocsp.CreateResponse(pki.ca.cert, delegate.cert, template, delegate.key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(direct)
	f.Add(delegated)
	f.Add(withResponseExtensions(f, direct, pki.ca.key, nonceExtension([]byte("nonce"))))
	f.Add(ocsp.UnauthorizedErrorResponse)
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = validateOCSPResponse(der, leaf, pki.ca.cert, []byte("nonce"), time.Now(), time.Minute)
		_, _ = readResponseExtras(der, leaf.SerialNumber)
	})
}
