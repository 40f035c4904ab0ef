package herokuapi

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoToken is returned by LookupToken when neither HEROKU_API_KEY nor ~/.netrc has a token.
var ErrNoToken = errors.New("no Heroku API token: set HEROKU_API_KEY (create a long-lived one with `heroku authorizations:create -d dynopilot`) or log in with `heroku login` so that ~/.netrc has one")

// LookupToken finds the API token the way the Heroku CLI's users expect: apiKey (the value of HEROKU_API_KEY),
// else the password of `machine api.heroku.com` in the netrc file at netrcPath (usually ~/.netrc). It returns where
// the token came from, for logs; the token itself must never be logged.
func LookupToken(apiKey, netrcPath string) (token, source string, err error) {
	if t := strings.TrimSpace(apiKey); t != "" {
		return t, "HEROKU_API_KEY", nil
	}
	if netrcPath == "" {
		return "", "", ErrNoToken
	}
	f, err := os.Open(netrcPath)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", ErrNoToken
	}
	if err != nil {
		return "", "", fmt.Errorf("reading Heroku token from %s: %w", netrcPath, err)
	}
	defer f.Close()
	t, err := netrcPassword(bufio.NewScanner(f), "api.heroku.com")
	if err != nil {
		return "", "", fmt.Errorf("reading Heroku token from %s: %w", netrcPath, err)
	}
	if t == "" {
		return "", "", ErrNoToken
	}
	return t, netrcPath, nil
}

// DefaultNetrcPath returns ~/.netrc, or "" when there is no home directory.
func DefaultNetrcPath() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".netrc")
}

// netrcPassword reads netrc tokens (whitespace separated, any layout) and returns the password of machine.
func netrcPassword(sc *bufio.Scanner, machine string) (string, error) {
	sc.Split(bufio.ScanWords)
	var words []string
	for sc.Scan() {
		words = append(words, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	inMachine := false
	for i := 0; i < len(words); i++ {
		switch words[i] {
		case "machine":
			inMachine = i+1 < len(words) && words[i+1] == machine
			i++
		case "default":
			inMachine = false
		case "macdef":
			return "", nil // a macro runs to the end of the paragraph; nothing after it is ours in practice
		case "password":
			if inMachine && i+1 < len(words) {
				return words[i+1], nil
			}
			i++
		case "login", "account":
			i++
		}
	}
	return "", nil
}
