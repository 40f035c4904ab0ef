// Package program builds dynopilot's programs and runs them for the benchmark and chaos programs under bench/: a
// process started, its URL read from what it prints, its memory read from /proc, and a clean stop.
package program

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles ./cmd/<name> for each name into dir (run from the repository root) and returns the paths.
func Build(dir string, names ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range names {
		bin := filepath.Join(dir, name)
		if b, err := exec.Command("go", "build", "-o", bin, "./cmd/"+name).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building %s (run from the repository root): %v\n%s", name, err, b)
		}
		out[name] = bin
	}
	return out, nil
}

// Process is a running program and what it printed.
type Process struct {
	Cmd *exec.Cmd
	URL string

	mu     sync.Mutex
	output strings.Builder
	done   chan struct{}
}

var urlRE = regexp.MustCompile(`(?:listening on |url=)(http://[0-9.:]+)`)

// Start runs bin with args and env (nil: this process's) and waits up to 20 s for the URL it prints
// ("listening on URL" or "url=URL").
func Start(bin string, args, env []string) (*Process, error) {
	return StartWithin(bin, args, env, 20*time.Second)
}

// StartWithin is Start waiting up to within for the URL: a daemon that loads thousands of policies first may take
// longer than 20 s to listen.
func StartWithin(bin string, args, env []string, within time.Duration) (*Process, error) {
	p := &Process{Cmd: exec.Command(bin, args...), done: make(chan struct{})}
	if env != nil {
		p.Cmd.Env = env
	}
	r, w := io.Pipe()
	p.Cmd.Stdout, p.Cmd.Stderr = w, w
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.Cmd.Wait(); w.Close(); close(p.done) }()
	found := make(chan string, 1)
	scanned := make(chan struct{}) // closed once all the program printed has been read: it has exited
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.output.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case p.URL = <-found:
		return p, nil
	case <-scanned:
		select {
		case p.URL = <-found: // printed, then exited: the caller finds out
			return p, nil
		default:
			return nil, fmt.Errorf("%s exited before it printed a URL:\n%s", filepath.Base(bin), p.Output())
		}
	case <-time.After(within):
		p.Stop()
		return nil, fmt.Errorf("%s printed no URL within %s:\n%s", filepath.Base(bin), within, p.Output())
	}
}

// Output is everything the program printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// Done is closed when the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM and waits for the program to exit.
func (p *Process) Stop() {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

// Kill sends SIGKILL and waits for the program to exit.
func (p *Process) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// MemoryMB reads a memory figure of the running program from /proc (Linux): VmRSS, or VmHWM for the peak.
func (p *Process) MemoryMB(field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return -1
}
