package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynopilot/dynopilot/internal/servicetest"
)

const secret = "s3cret-token-for-test"

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles the command once per test run into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakeheroku-test-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "fakeheroku")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

func start(t *testing.T, env []string, args ...string) (*exec.Cmd, string, *servicetest.Buffer) {
	t.Helper()
	cmd := exec.Command(build(t), args...)
	cmd.Env = append(os.Environ(), env...)
	stderr := &servicetest.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout) // stdout must hold nothing more; keep the pipe drained anyway
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("no `listening on` line within 10s; stderr:\n%s", stderr)
	}
	m := regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first stdout line = %q, want `listening on http://127.0.0.1:PORT`; stderr:\n%s", line, stderr)
	}
	return cmd, m[1], stderr
}

func get(t *testing.T, url, tok string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// stop sends SIGTERM and returns the exit code, failing if the process takes more than a generous 10s.
func stop(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM")
	}
	return cmd.ProcessState.ExitCode()
}

func TestServesAndStopsOnSIGTERM(t *testing.T) {
	cmd, url, stderr := start(t, []string{"FAKEHEROKU_TOKEN="},
		"-listen", "127.0.0.1:0", "-token", secret, "-app", "shop:web=2:Standard-1X,worker=1:performance-m",
		"-app", "blog:web=1:Basic", "-rate", "100", "-refill", "10")

	status, body := get(t, url+"/apps/shop/formation", secret)
	var list []struct {
		Type     string `json:"type"`
		Quantity int    `json:"quantity"`
		Size     string `json:"size"`
	}
	if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list) != 2 ||
		list[0].Type != "web" || list[0].Quantity != 2 || list[1].Size != "Performance-M" {
		t.Errorf("GET /apps/shop/formation = %d %s", status, body)
	}
	if status, _ := get(t, url+"/apps/blog/formation/web", secret); status != 200 {
		t.Errorf("second -app: status %d, want 200", status)
	}
	if status, _ := get(t, url+"/apps/shop/formation", "wrong"); status != 401 {
		t.Errorf("wrong token: status %d, want 401", status)
	}
	status, body = get(t, url+"/account/rate-limits", secret)
	if status != 200 || !strings.Contains(string(body), `"remaining":98`) {
		t.Errorf("rate limits with -rate 100 after 2 counted calls (the 401 takes none) = %d %s, want remaining 98", status, body)
	}

	if code := stop(t, cmd); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; stderr:\n%s", code, stderr)
	}
	logs := stderr.String()
	if strings.Contains(logs, secret) {
		t.Errorf("stderr contains the token:\n%s", logs)
	}
	if !strings.Contains(logs, "path=/apps/shop/formation") || !strings.Contains(logs, "status=401") {
		t.Errorf("stderr does not log the requests:\n%s", logs)
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	cmd, url, _ := start(t, []string{"FAKEHEROKU_TOKEN=" + secret}, "-app", "shop:web=1")
	if status, _ := get(t, url+"/apps/shop/formation", secret); status != 200 {
		t.Errorf("token from FAKEHEROKU_TOKEN: status %d, want 200", status)
	}
	if status, _ := get(t, url+"/apps/shop/formation", "other"); status != 401 {
		t.Errorf("another token: status %d, want 401", status)
	}
	if code := stop(t, cmd); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func TestShutdownEndsDelayedRequests(t *testing.T) {
	cmd, url, _ := start(t, []string{"FAKEHEROKU_TOKEN="}, "-token", secret, "-app", "shop:web=1")
	resp, err := http.Post(url+"/_fake/faults", "application/json", strings.NewReader(`{"latency":"1h","count":1}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /_fake/faults: %v %v", resp, err)
	}
	resp.Body.Close()
	go func() {
		req, _ := http.NewRequest(http.MethodGet, url+"/apps/shop/formation", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// Wait until the delayed request has taken the fault, so that it is in flight at SIGTERM.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err := http.Get(url + "/_fake/faults")
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			LatencyCount int `json:"latency_count"`
		}
		_ = json.NewDecoder(r.Body).Decode(&f)
		r.Body.Close()
		if f.LatencyCount == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := stop(t, cmd); code != 0 {
		t.Errorf("exit code with a request held by a 1h latency = %d, want 0", code)
	}
}

func TestBadFlags(t *testing.T) {
	cmd := exec.Command(build(t), "-app", "shop:web=x,worker=11:Performance-M", "-app", "Bad", "-rate", "0", "-token", secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("exit code = %d (%v), want 2; stderr:\n%s", code, err, &stderr)
	}
	for _, want := range []string{`-rate="0"`, `-app="web=x"`, `-app="worker=11:Performance-M": expected at most 10 Performance-M`, `-app="Bad"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not name %s:\n%s", want, &stderr)
		}
	}
	if strings.Contains(stderr.String(), secret) {
		t.Errorf("stderr contains the token:\n%s", &stderr)
	}
}
