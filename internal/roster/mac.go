package roster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
)

// digest is the keyed hash of one normalized secret. The roster keeps
// digests instead of values, so a heap dump or core file of the gateway
// shows no SSNs, and a digest leaked without the key cannot be tested
// against guesses, which a plain hash of a 9-digit number could.
type digest [sha256.Size]byte

// macKey is drawn at random for each loaded roster and never leaves
// memory; nothing is ever compared across processes.
type macKey [32]byte

func newMACKey() *macKey {
	var k macKey
	rand.Read(k[:]) // never fails; see crypto/rand.Read
	return &k
}

// Labels keep the kinds of secret apart: a FIN that happens to equal an
// SSN, or a PEBD equal to a DOB, yields a different digest.
const (
	labelSSN  = "ssn"
	labelFIN  = "fin"
	labelDOB  = "dob"
	labelPEBD = "pebd"
)

func (k *macKey) sum(label string, value []byte) digest {
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(value)
	var d digest
	m.Sum(d[:0])
	return d
}

// claimDigests is what a CSV lookup compares: the claim's secrets, keyed
// with the roster's key.
type claimDigests struct {
	kind      idKind
	id        digest
	dob, pebd digest
	hasPEBD   int // 1 when the claim carries a PEBD, for constant-time use
}

func (k *macKey) claimDigests(n *normalizedClaim) claimDigests {
	d := claimDigests{kind: n.kind, dob: k.sum(labelDOB, n.dob.bytes())}
	if n.kind == idSSN {
		d.id = k.sum(labelSSN, n.id.bytes())
	} else {
		d.id = k.sum(labelFIN, n.id.bytes())
	}
	if !n.pebd.empty() {
		d.pebd, d.hasPEBD = k.sum(labelPEBD, n.pebd.bytes()), 1
	}
	return d
}
