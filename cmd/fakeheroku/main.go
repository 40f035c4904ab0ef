// Command fakeheroku serves the fake Heroku Platform API of package herokuapi/fake on a local port, so that
// dynopilot (or anything else speaking the Platform API) can be run and tested end to end with no Heroku account.
//
//	fakeheroku -token secret -app shop:web=2:Standard-1X,worker=1 -listen 127.0.0.1:8080
//
// Flags:
//
//	-listen ADDR   address to listen on (default 127.0.0.1:0, a free port)
//	-token T       the accepted bearer token; if empty, $FAKEHEROKU_TOKEN; if that is empty too, any token is
//	               accepted (a request without one still gets 401)
//	-app SPEC      NAME:TYPE=QTY[:SIZE][,TYPE=QTY[:SIZE]…], repeatable; SIZE defaults to Standard-1X
//	-rate N        size of the account's token pool (default 4500)
//	-refill N      tokens returned per minute (default 75)
//
// On start it prints exactly one line, `listening on http://HOST:PORT`, to stdout; it logs each request to stderr
// (never the token) and serves until SIGTERM or SIGINT, then shuts down gracefully and exits 0. Bad flags exit 2
// with every problem listed; a failure to listen exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dynopilot/dynopilot/herokuapi/fake"
	"github.com/dynopilot/dynopilot/internal/setting"
)

// TokenEnv is read for the token when -token is not given, so that it need not appear in a process listing.
const TokenEnv = "FAKEHEROKU_TOKEN"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// config is what the flags say.
type config struct {
	listen string
	token  string
	apps   []fake.AppSpec
	rate   int
	refill float64
}

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (config, error) {
	var c config
	var appSpecs []string
	fs := flag.NewFlagSet("fakeheroku", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:0", "address to listen on")
	fs.StringVar(&c.token, "token", "", "the accepted bearer token (default $"+TokenEnv+"; if both are empty, any token)")
	fs.Func("app", "an app, NAME:TYPE=QTY[:SIZE][,TYPE=QTY[:SIZE]…] (repeatable)", func(v string) error {
		appSpecs = append(appSpecs, v)
		return nil
	})
	fs.IntVar(&c.rate, "rate", fake.DefaultPool, "size of the account's token pool")
	fs.Float64Var(&c.refill, "refill", fake.DefaultRefillPerMinute, "tokens returned per minute")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var problems setting.List
	if fs.NArg() > 0 {
		problems.Add(setting.Errorf("arguments", strings.Join(fs.Args(), " "), "none: everything is a flag"))
	}
	if c.rate <= 0 {
		problems.Add(setting.Errorf("-rate", fmt.Sprint(c.rate), "a pool size of 1 or more"))
	}
	if c.refill <= 0 {
		problems.Add(setting.Errorf("-refill", fmt.Sprint(c.refill), "tokens per minute, more than 0"))
	}
	names := map[string]bool{}
	for _, spec := range appSpecs {
		app, err := fake.ParseApp(spec)
		if err != nil {
			problems.Add(err)
			continue
		}
		if names[app.Name] {
			problems.Add(setting.Errorf(fake.AppFlag, spec, "app %q only once", app.Name))
			continue
		}
		names[app.Name] = true
		c.apps = append(c.apps, app)
	}
	if c.token == "" {
		c.token = getenv(TokenEnv)
	}
	return c, problems.Err()
}

// run is the program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fakeheroku: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv := fake.New(fake.Options{Token: c.token, Pool: c.rate, RefillPerMinute: c.refill, Logger: logger})
	names := make([]string, len(c.apps))
	for i, app := range c.apps {
		srv.AddApp(app.Name, app.Processes...)
		names[i] = app.Name
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		fmt.Fprintf(stderr, "fakeheroku: listen on -listen=%q: %v\n", c.listen, err)
		return 1
	}
	// Cancelled at shutdown so that requests held by an injected latency end instead of holding shutdown up.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	if _, err := fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr()); err != nil {
		logger.Error("cannot write the listening line to stdout", "err", err)
	}
	if f, ok := stdout.(interface{ Sync() error }); ok {
		_ = f.Sync() // os.Stdout is unbuffered; a pipe reader sees the line at once, Sync is for files
	}
	token := "any non-empty token accepted"
	if c.token != "" {
		token = "set"
	}
	logger.Info("fakeheroku started", "addr", ln.Addr().String(), "apps", names, "pool", c.rate,
		"refill_per_minute", c.refill, "token", token)

	select {
	case err := <-served:
		logger.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		logger.Error("shutdown did not finish", "err", err)
		return 1
	}
	<-served
	return 0
}
