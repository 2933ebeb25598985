package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
)

// readDotenv reads and parses the .env file at path, bounded (safefile.MaxDocument, regular files only).
func readDotenv(path string) (map[string]string, error) {
	b, err := safefile.Read(path, safefile.MaxDocument)
	if err != nil {
		return nil, err
	}
	return ParseDotenv(bytes.NewReader(b), path)
}

// ParseDotenv reads KEY=VALUE lines: blank lines and #-comments are skipped, an optional "export " prefix is
// allowed, and a value may be wrapped in single or double quotes. A malformed line is an error naming its line.
func ParseDotenv(r io.Reader, name string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !validKey(k) {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE with KEY of letters, digits and _", name, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
			if v[len(v)-1] != v[0] {
				return nil, fmt.Errorf("%s:%d: %s: unterminated quote", name, n, k)
			}
			v = v[1 : len(v)-1]
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func validKey(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
