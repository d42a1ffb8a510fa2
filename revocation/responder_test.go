package revocation

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cryptobyteasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"
)

// nonceMode is how the test responder treats a request's nonce.
type nonceMode int

const (
	nonceIgnore nonceMode = iota // no nonce in the response, like a pre-signing responder
	nonceEcho                    // echo it in the single response's extensions
	nonceWrong                   // answer with a different nonce
)

// testResponder is a real OCSP responder: it parses requests and signs
// responses with ocsp.CreateResponse.
type testResponder struct {
	t      testing.TB
	server *httptest.Server

	mu       sync.Mutex
	ca       *testCA // whose certificates it answers for (CertID issuer)
	signer   *testCA // who signs; the CA itself by default
	status   map[string]int
	hold     chan struct{} // if set, answers wait until it is closed (holdAnswers)
	nonce    nonceMode
	httpCode int
	// thisUpdate and nextUpdate are offsets from now; nextUpdate 0 omits it.
	thisUpdate, nextUpdate time.Duration
	mutate                 func(resp, nonce []byte) []byte // rewrites the signed response

	requests atomic.Int32
}

func newTestResponder(t testing.TB, ca *testCA) *testResponder {
	r := &testResponder{
		t:          t,
		ca:         ca,
		signer:     ca,
		status:     make(map[string]int),
		thisUpdate: -time.Minute,
		nextUpdate: 4 * time.Hour,
	}
	r.server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.server.Close)
	return r
}

func (r *testResponder) url() string { return r.server.URL + "/ocsp" }

func (r *testResponder) set(serial *big.Int, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[serial.String()] = status
}

// holdAnswers makes the responder keep every request waiting (until its
// client gives up) until release is called: a slow responder whose
// slowness does not depend on how busy the machine is. The test's cleanup
// releases whatever is still held.
func (r *testResponder) holdAnswers(t testing.TB) (release func()) {
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	r.configure(func(r *testResponder) { r.hold = hold })
	t.Cleanup(release)
	return release
}

func (r *testResponder) configure(f func(r *testResponder)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func (r *testResponder) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	body, err := io.ReadAll(req.Body)
	if err != nil || req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/ocsp-request" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	parsed, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	r.mu.Lock()
	ca, signer, hold, mode, code, mutate := r.ca, r.signer, r.hold, r.nonce, r.httpCode, r.mutate
	status, known := r.status[parsed.SerialNumber.String()]
	now := time.Now()
	template := ocsp.Response{
		SerialNumber: parsed.SerialNumber,
		Status:       ocsp.Unknown,
		ThisUpdate:   now.Add(r.thisUpdate).Truncate(time.Second),
	}
	if r.nextUpdate != 0 {
		template.NextUpdate = now.Add(r.nextUpdate).Truncate(time.Second)
	}
	r.mu.Unlock()

	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
			return
		}
	}
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	if known {
		template.Status = status
	}
	if template.Status == ocsp.Revoked {
		template.RevokedAt = now.Add(-24 * time.Hour).Truncate(time.Second)
		template.RevocationReason = ocsp.KeyCompromise
	}
	nonce := requestNonce(body)
	switch {
	case mode == nonceEcho && nonce != nil:
		template.ExtraExtensions = []pkix.Extension{nonceExtension(nonce)}
	case mode == nonceWrong:
		template.ExtraExtensions = []pkix.Extension{nonceExtension([]byte("not the nonce that was sent...."))}
	}
	if signer != ca {
		template.Certificate = signer.cert // as delegated responders do
	}
	resp, err := ocsp.CreateResponse(ca.cert, signer.cert, template, signer.key)
	if err != nil {
		r.t.Errorf("CreateResponse: %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if mutate != nil {
		resp = mutate(resp, nonce)
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

// nonceExtension wraps a nonce as RFC 8954 says: an OCTET STRING in
// extnValue.
func nonceExtension(nonce []byte) pkix.Extension {
	var b cryptobyte.Builder
	b.AddASN1OctetString(nonce)
	return pkix.Extension{Id: oidOCSPNonce, Value: b.BytesOrPanic()}
}

// requestNonce extracts the nonce from a request's extensions, written
// independently of the code under test.
func requestNonce(request []byte) []byte {
	s := cryptobyte.String(request)
	var req, tbs, exts, list cryptobyte.String
	if !s.ReadASN1(&req, cryptobyteasn1.SEQUENCE) || !req.ReadASN1(&tbs, cryptobyteasn1.SEQUENCE) {
		return nil
	}
	tbs.SkipOptionalASN1(cryptobyteasn1.Tag(0).Constructed().ContextSpecific())
	tbs.SkipOptionalASN1(cryptobyteasn1.Tag(1).Constructed().ContextSpecific())
	if !tbs.SkipASN1(cryptobyteasn1.SEQUENCE) ||
		!tbs.ReadASN1(&exts, cryptobyteasn1.Tag(2).Constructed().ContextSpecific()) ||
		!exts.ReadASN1(&list, cryptobyteasn1.SEQUENCE) {
		return nil
	}
	for !list.Empty() {
		var ext, id, value, nonce cryptobyte.String
		if !list.ReadASN1(&ext, cryptobyteasn1.SEQUENCE) || !ext.ReadASN1Element(&id, cryptobyteasn1.OBJECT_IDENTIFIER) ||
			!ext.ReadASN1(&value, cryptobyteasn1.OCTET_STRING) || !value.ReadASN1(&nonce, cryptobyteasn1.OCTET_STRING) {
			return nil
		}
		var want cryptobyte.Builder
		want.AddASN1ObjectIdentifier(oidOCSPNonce)
		if string(id) == string(want.BytesOrPanic()) {
			return nonce
		}
	}
	return nil
}

// withResponseExtensions re-signs a response made by ocsp.CreateResponse
// (signed by the CA itself with ECDSA SHA-256, no embedded certificate)
// with responseExtensions added to its ResponseData, where RFC 8954 puts
// the nonce and where x/crypto cannot put anything.
func withResponseExtensions(t testing.TB, resp []byte, signer crypto.Signer, exts ...pkix.Extension) []byte {
	t.Helper()
	s := cryptobyte.String(resp)
	var response, wrapper, responseBytes, basicOctets, basic, data, sigAlg cryptobyte.String
	var responseType asn1.ObjectIdentifier
	var status int
	if !s.ReadASN1(&response, cryptobyteasn1.SEQUENCE) || !response.ReadASN1Enum(&status) ||
		!response.ReadASN1(&wrapper, cryptobyteasn1.Tag(0).Constructed().ContextSpecific()) ||
		!wrapper.ReadASN1(&responseBytes, cryptobyteasn1.SEQUENCE) ||
		!responseBytes.ReadASN1ObjectIdentifier(&responseType) ||
		!responseBytes.ReadASN1(&basicOctets, cryptobyteasn1.OCTET_STRING) ||
		!basicOctets.ReadASN1(&basic, cryptobyteasn1.SEQUENCE) ||
		!basic.ReadASN1(&data, cryptobyteasn1.SEQUENCE) ||
		!basic.ReadASN1Element(&sigAlg, cryptobyteasn1.SEQUENCE) {
		t.Fatal("cannot take the OCSP response apart")
	}

	var tbs cryptobyte.Builder
	tbs.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(data)
		b.AddASN1(cryptobyteasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, ext := range exts {
					b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(ext.Id)
						if ext.Critical {
							b.AddASN1Boolean(true)
						}
						b.AddASN1OctetString(ext.Value)
					})
				}
			})
		})
	})
	tbsDER := tbs.BytesOrPanic()
	digest := sha256.Sum256(tbsDER)
	signature, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}

	var out cryptobyte.Builder
	out.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(int64(status))
		b.AddASN1(cryptobyteasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(responseType)
				b.AddASN1(cryptobyteasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
					b.AddASN1(cryptobyteasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddBytes(tbsDER)
						b.AddBytes(sigAlg)
						b.AddASN1BitString(signature)
					})
				})
			})
		})
	})
	return out.BytesOrPanic()
}
