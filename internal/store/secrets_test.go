package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func randomSecret() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

func TestEnsureSecretGeneratesOnce(t *testing.T) { forEachBackend(t, testEnsureSecretGeneratesOnce) }

func testEnsureSecretGeneratesOnce(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)

	var calls atomic.Int32
	generate := func() ([]byte, error) {
		calls.Add(1)
		return randomSecret()
	}
	first, err := s.EnsureSecret(ctx, "session-key", generate)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.EnsureSecret(ctx, "session-key", generate)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) || len(first) != 32 {
		t.Errorf("EnsureSecret returned %x then %x", first, second)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("generate called %d times, want 1", n)
	}

	other, err := s.EnsureSecret(ctx, "csrf-key", randomSecret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, other) {
		t.Error("two secret names share one value")
	}
}

func TestEnsureSecretGenerateFailureStoresNothing(t *testing.T) {
	forEachBackend(t, testEnsureSecretGenerateFailureStoresNothing)
}

func testEnsureSecretGenerateFailureStoresNothing(t *testing.T, be backend) {
	ctx := context.Background()
	s := be.openStore(t)
	errBroken := errors.New("entropy source broken")

	_, err := s.EnsureSecret(ctx, "key", func() ([]byte, error) { return nil, errBroken })
	assertErrorIs(t, err, errBroken)
	_, err = s.EnsureSecret(ctx, "key", func() ([]byte, error) { return []byte{}, nil })
	assertErrorIs(t, err, errEmptySecret)

	got, err := s.EnsureSecret(ctx, "key", func() ([]byte, error) { return []byte("good"), nil })
	if err != nil || string(got) != "good" {
		t.Errorf("EnsureSecret after failures = %q, %v; want \"good\"", got, err)
	}
}

// Two stores on one file stand for two cacgate nodes starting together.
func TestEnsureSecretRaceAcrossNodes(t *testing.T) {
	forEachBackend(t, testEnsureSecretRaceAcrossNodes)
}

func testEnsureSecretRaceAcrossNodes(t *testing.T, be backend) {
	const perNode = 8
	db := be.newDatabase(t)
	nodes := []*SQLStore{db.open(t), db.open(t)}

	var (
		start   = make(chan struct{})
		wg      sync.WaitGroup
		results = make([][]byte, len(nodes)*perNode)
		errs    = make([]error, len(results))
	)
	for i := range results {
		node := nodes[i%len(nodes)]
		wg.Go(func() {
			<-start
			results[i], errs[i] = node.EnsureSecret(context.Background(), "signing-key", randomSecret)
		})
	}
	close(start)
	wg.Wait()

	for i := range results {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !bytes.Equal(results[i], results[0]) {
			t.Fatalf("caller %d got %x, caller 0 got %x", i, results[i], results[0])
		}
	}
}
