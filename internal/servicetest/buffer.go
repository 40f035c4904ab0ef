package servicetest

import (
	"bytes"
	"sync"
)

// Buffer collects what a program under test writes from its own goroutines (a logger, a process's output) so that
// the test can read it at any time; the zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
