package pgstate

import (
	"context"
	"testing"
	"time"
)

// A leader whose confirmations cannot get through (its lock connection held up, as on a hung network) stops
// reporting Leading once its last confirmation is 2×Confirm old, and leads again once one succeeds.
func TestLeadingExpires(t *testing.T) {
	url, _, _ := emptySchema(t)
	const confirm = 200 * time.Millisecond
	s, err := Open(context.Background(), Options{URL: url, Confirm: confirm, Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); !s.Leading(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("did not lead")
		}
	}
	s.sem <- struct{}{} // no confirmation gets through from now on
	held := time.Now()
	time.Sleep(confirm)
	if !s.Leading() {
		t.Fatal("Leading false within Confirm of the last confirmation")
	}
	for s.Leading() {
		if time.Since(held) > 2*confirm+confirm/2 {
			<-s.sem
			t.Fatalf("still Leading %v after confirmations stopped: want false after 2×Confirm", time.Since(held))
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-s.sem
	for deadline := time.Now().Add(2 * time.Second); !s.Leading(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("did not lead again once confirmations got through")
		}
	}
}

// Confirm is bounded by its ctx even when the lock connection cannot answer, and its failure stops leading at once.
func TestConfirmBoundedByCtx(t *testing.T) {
	url, _, _ := emptySchema(t)
	s, err := Open(context.Background(), Options{URL: url, Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); !s.Leading(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("did not lead")
		}
	}
	s.sem <- struct{}{} // the lock connection is busy, as on a hung network
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	started := time.Now()
	err = s.Confirm(cctx)
	took := time.Since(started)
	<-s.sem
	if err == nil {
		t.Fatal("Confirm succeeded without a round trip")
	}
	if took > 500*time.Millisecond {
		t.Fatalf("Confirm took %v with a 100 ms ctx", took)
	}
	if s.Leading() {
		t.Fatal("still Leading after a failed Confirm")
	}
}
