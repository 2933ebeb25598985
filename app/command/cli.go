// Package command is what a command of ziti-bootstrap runs with, as docker/cli's command.Cli: its output streams, its
// logger and live view, and the global flags (--env-file, --set, --output), with the one --set parse and the
// configuration loaders built on it, the apply lock, and the one path that runs steps and prints their report.
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/liveview"
)

// CLI is a command's environment: built by the command from the global flags, once they are parsed.
type CLI struct {
	EnvFile string    // --env-file
	Output  string    // --output: text or json
	Set     []string  // --set NAME=VALUE
	Stdout  io.Writer // the report
	Stderr  io.Writer // logs and warnings
	Log     *slog.Logger
	Live    *liveview.View // the live view on a terminal; nil: logs only
	// StartLive starts the live view of a command (on a terminal with text output; else it does nothing) and
	// sets Live and Log; the returned function closes it. nil: never.
	StartLive func(title string) func()

	src    *config.Sources  // the sources, read once (Sources)
	setBad []config.Problem // what is wrong with --set
}

// LiveView starts the live view titled title (StartLive); the returned function closes it.
func (c *CLI) LiveView(title string) func() {
	if c.StartLive == nil {
		return func() {}
	}
	return c.StartLive(title)
}

// ParseSet parses --set values (and more, e.g. up's --var) into variables by name. A secret (a known secret
// variable, or one that isSecret says is) is refused: secrets never come from the command line.
func ParseSet(kvs []string, isSecret func(name string) bool) (map[string]string, []config.Problem) {
	flags := map[string]string{}
	var bad []config.Problem
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			bad = append(bad, config.Problem{Var: "--set " + kv, Msg: "expected NAME=VALUE"})
			continue
		}
		if meta, known := config.Lookup(k); (known && meta.Secret) || (isSecret != nil && isSecret(k)) {
			fix := fmt.Sprintf("set %s or %s_FILE in the environment or the --env-file", k, k)
			if known && meta.SecretName != "" {
				fix += ", or the Docker secret " + meta.SecretName
			}
			bad = append(bad, config.Problem{Var: "--set " + k, Msg: "secrets are not accepted on the command line; " + fix})
			continue
		}
		flags[k] = v
	}
	return flags, bad
}

// withProblems returns the problems of the command line (bad) before those of err, a loader's error.
func withProblems(bad []config.Problem, err error) error {
	if len(bad) == 0 {
		return err
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		bad = append(bad, ce.Problems...)
	}
	return &config.Error{Problems: bad}
}

// Sources are the configuration's sources for every section loader (config.Load, LoadStack, LoadLock,
// LoadBackup, …): --set, parsed once, and the --env-file, read once, on first use.
func (c *CLI) Sources() config.Sources {
	if c.src == nil {
		flags, bad := ParseSet(c.Set, nil)
		src := config.Sources{Flags: flags, EnvFile: c.EnvFile}.Read()
		c.src, c.setBad = &src, bad
	}
	return *c.src
}

// AddSet adds a --set value (NAME=VALUE) before the configuration is loaded again.
func (c *CLI) AddSet(kv string) {
	c.Set = append(c.Set[:len(c.Set):len(c.Set)], kv)
	c.src = nil
}

// SetFlags returns a copy of the --set values by name (LoadConfig reports the malformed ones).
func (c *CLI) SetFlags() map[string]string { return maps.Clone(c.Sources().Flags) }

// LoadConfig reads the configuration from --set, the environment and --env-file.
func (c *CLI) LoadConfig() (*config.Config, error) { return c.LoadConfigWithout() }

// LoadConfigWithout is LoadConfig for a command that never uses the secrets unused (config.LoadWithout).
func (c *CLI) LoadConfigWithout(unused ...string) (*config.Config, error) {
	cfg, err := config.LoadWithout(c.Sources(), unused...)
	if err = withProblems(c.setBad, err); err != nil {
		return nil, err
	}
	return cfg, nil
}

// LoadStack reads the stack variables names (and the Docker Engine settings): --set and more (up's --var), the
// environment, the --env-file, then defaults; secrets (secret) also from NAME_FILE or the Docker secrets
// directory, never from the command line.
func (c *CLI) LoadStack(more []string, defaults map[string]string, names, secret []string) (*config.Stack, error) {
	isSecret := func(k string) bool { return slices.Contains(secret, k) }
	src := c.Sources()
	flags, bad := ParseSet(more, isSecret)
	bad = append(slices.Clone(c.setBad), bad...)
	for k := range src.Flags {
		if isSecret(k) {
			_, more := ParseSet([]string{k + "="}, isSecret)
			bad = append(bad, more...)
		}
	}
	src.Flags = maps.Clone(src.Flags)
	maps.Copy(src.Flags, flags)
	for _, p := range bad {
		delete(src.Flags, strings.TrimPrefix(p.Var, "--set "))
	}
	if defaults != nil {
		src = src.WithDefaults(defaults)
	}
	sc, err := config.LoadStack(src, names)
	if err = withProblems(bad, err); err != nil {
		return nil, err
	}
	return sc, nil
}

// WithLock runs fn while holding the tool's lock (app.WithLock), configured by --set and --env-file.
func (c *CLI) WithLock(ctx context.Context, cfg *config.Config, fn func(ctx context.Context) error) error {
	lcfg, err := config.LoadLock(c.Sources())
	if err != nil {
		return err
	}
	return app.WithLock(ctx, c.Log, cfg, lcfg, fn)
}

// ReadOnlyPass runs fn as a read-only pass, without the lock (app.ReadOnlyPass): true when the pass stands.
func (c *CLI) ReadOnlyPass(ctx context.Context, cfg *config.Config, fn func(ctx context.Context) (whyNot string)) bool {
	lcfg, err := config.LoadLock(c.Sources())
	if err != nil {
		return false // the run under the lock reports it
	}
	return app.ReadOnlyPass(ctx, c.Log, cfg, lcfg, fn)
}

// Locker is WithLock for the application layer (app.Locker).
func (c *CLI) Locker() app.Locker { return c.WithLock }

// PrintJSON writes v as indented JSON.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
