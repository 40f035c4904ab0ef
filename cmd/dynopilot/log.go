package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"
)

// newLogger builds the slog logger LOG_LEVEL and LOG_FORMAT ask for: auto is tint on a terminal and logfmt text
// otherwise, which is what Heroku's log stream and log drains parse.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	format = strings.ToLower(format)
	if format == "auto" || format == "" {
		format = "text"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "pretty"
		}
	}
	switch format {
	case "pretty":
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: lvl, TimeFormat: time.TimeOnly}))
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}
