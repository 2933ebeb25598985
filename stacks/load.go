package stacks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	interp "github.com/compose-spec/compose-go/v2/interpolation"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/tree"
	"github.com/compose-spec/compose-go/v2/types"
)

// Options says how to load a stack.
type Options struct {
	// Names are the namespaces of the stacks; nil means DefaultNames("").
	Names Names
	// Vars are the interpolation variables (the configuration). Missing ones take the defaults written in the
	// stack files; secrets and configs with an `environment:` source require theirs.
	Vars map[string]string
	// Without leaves these services out where a stack has them (e.g. "bootstrap" when ziti-bootstrap runs from
	// the operator's machine instead).
	Without []string
	// ExternalKeycloak: Keycloak runs elsewhere (no keycloak stack), so no service joins the keycloak stack's
	// network; the bootstrap job reaches Keycloak at KEYCLOAK_INTERNAL_URL.
	ExternalKeycloak bool
	// FS replaces the embedded files (tests); nil means the embedded ones.
	FS fs.FS
	// Parsed, when set, keeps what compose-go made of each embedded stack file, by the values of the variables
	// the file reads, so that the loads of one run parse each file once (see ParseCache).
	Parsed *ParseCache
	// Digests, when set, remembers the slow digits of secrets' names across processes (see SecretDigests).
	Digests SecretDigests
}

// Load reads the stack name ("spire", "keycloak", "openziti"), interpolates it and converts it. It never calls
// the Docker Engine. Errors name the file, line and key (see *Error).
func Load(ctx context.Context, name string, opts Options) (*Stack, error) {
	p, err := parse(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	c := &converter{src: p.src, ns: p.ns, project: p.project, fsys: p.fsys, vars: p.vars, digests: opts.Digests}
	st := c.convert()
	if len(c.problems) > 0 {
		return nil, &Error{File: p.src.file, Problems: c.problems}
	}
	st.Name = name
	return st, nil
}

// Project returns the stack name parsed and interpolated by compose-go, with the services of opts.Without left
// out, before any conversion to Swarm objects: the model the render package writes plain stack and compose
// files from. Load converts the same project.
func Project(ctx context.Context, name string, opts Options) (*types.Project, error) {
	p, err := parse(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	return p.project, nil
}

// parsed is a stack file read by compose-go, with what the converter needs.
type parsed struct {
	src     *source
	ns      string
	project *types.Project
	fsys    fs.FS
	vars    map[string]string
}

func parse(ctx context.Context, name string, opts Options) (*parsed, error) {
	fsys := opts.FS
	if fsys == nil {
		fsys = files
	}
	names := opts.Names
	if names == nil {
		names = DefaultNames("")
	}
	ns := names[name]
	if ns == "" {
		return nil, fmt.Errorf("stack %q: no namespace given (stacks: %s)", name, strings.Join(All, ", "))
	}
	if err := validNamespace(ns); err != nil {
		return nil, fmt.Errorf("stack %q: %w", name, err)
	}
	file := File(name)
	content, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("stack %q: %w", name, err)
	}
	vars := map[string]string{}
	maps.Copy(vars, opts.Vars)
	maps.Copy(vars, names.vars())
	src := &source{file: file, content: content, embedded: opts.FS == nil}
	cache := opts.Parsed
	if opts.FS != nil {
		cache = nil // only the embedded files are known never to change
	}
	project, err := cache.project(ctx, ns, src, vars)
	if err != nil {
		return nil, err
	}
	var without []string
	for _, w := range opts.Without {
		if _, err := project.GetService(w); err == nil {
			without = append(without, w)
		}
	}
	if len(without) > 0 {
		project = project.WithServicesDisabled(without...).WithoutUnnecessaryResources()
	}
	if opts.ExternalKeycloak {
		for name, svc := range project.Services {
			delete(svc.Networks, keycloakNetwork)
			project.Services[name] = svc
		}
		delete(project.Networks, keycloakNetwork)
	}
	return &parsed{src: src, ns: ns, project: project, fsys: fsys, vars: vars}, nil
}

// compose parses the stack file src with compose-go as project ns, interpolating it with vars.
func compose(ctx context.Context, ns string, src *source, vars map[string]string) (*types.Project, error) {
	details, opts := composeInput(ns, src, vars)
	project, err := loader.LoadWithContext(ctx, details, opts...)
	if err != nil {
		return nil, src.locate(err)
	}
	return project, nil
}

// composeInput is what compose gives compose-go: the file, a copy of vars, and the options.
func composeInput(ns string, src *source, vars map[string]string) (types.ConfigDetails, []func(*loader.Options)) {
	details := types.ConfigDetails{
		WorkingDir:  ".",
		ConfigFiles: []types.ConfigFile{{Filename: src.file, Content: src.content}},
		Environment: maps.Clone(vars),
	}
	return details, []func(*loader.Options){func(o *loader.Options) {
		o.SetProjectName(ns, true)
		o.ResolvePaths = false // files are read from this package, bind sources must be absolute
		o.SkipInclude = true
		o.SkipExtends = true
		o.SkipResolveLabels = true
		o.SkipConsistencyCheck = true // the converter checks references itself, and names their lines
		if src.embedded {
			o.Interpolate.TypeCastMapping = embeddedCasts()
			// the built-in files hold to compose's schema (TestEmbeddedCastsLoadAsTheFullTable loads them as
			// other files, validated), and the variables that fill typed fields are checked by the configuration
			// (ports, modes): compiling the schema and validating cost a third of a parse
			o.SkipValidation = true
		}
	}, loader.WithDiscardEnvFiles}
}

// castPatterns are the entries of compose-go's table of values it casts from strings after interpolation
// (numbers, booleans) that match a string of the embedded stack files (TestEmbeddedCastsCoverTheFiles derives
// them from the files). compose-go tries every entry of its table (93) on every string of a file, which was a
// quarter of the time a no-op up spent parsing; the embedded files need this one.
var castPatterns = []tree.Path{"services.*.ports.[].target"}

// embeddedCasts is compose-go's table cut down to castPatterns, with its own casts.
var embeddedCasts = sync.OnceValue(func() map[tree.Path]interp.Cast {
	full := loader.ToOptions(&types.ConfigDetails{}, nil).Interpolate.TypeCastMapping
	out := make(map[tree.Path]interp.Cast, len(castPatterns))
	for _, p := range castPatterns {
		if c, ok := full[p]; ok {
			out[p] = c
		}
	}
	return out
})

// keycloakNetwork is the key, in the stacks that use it, of the keycloak stack's network.
const keycloakNetwork = "keycloak"

// LoadStacks loads the stacks names at once and returns those that loaded, in the order of names, with the
// problems of all the others. (On this 2-core machine loading at once is no faster than one after the other,
// 40-48 ms for the three parses either way; the secrets' slow hashes take turns: dataHash.)
func LoadStacks(ctx context.Context, names []string, opts Options) ([]*Stack, error) {
	loaded := make([]*Stack, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { loaded[i], errs[i] = Load(ctx, name, opts) })
	}
	wg.Wait()
	return slices.DeleteFunc(loaded, func(st *Stack) bool { return st == nil }), errors.Join(errs...)
}

var namespaceRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func validNamespace(ns string) error {
	if !namespaceRE.MatchString(ns) || len(ns) > 32 {
		return fmt.Errorf("namespace %q: use 1 to 32 lowercase letters, digits, '-' or '_', starting with a letter or digit", ns)
	}
	return nil
}

// Problem is one thing wrong in a stack file.
type Problem struct {
	Line int    // 1-based; 0 when unknown
	Key  string // dotted path, e.g. services.spire-server.image
	Msg  string
}

// Error lists the problems of one stack file. Nothing has been written when it is returned.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		if p.Key != "" {
			b.WriteString(": " + p.Key)
		}
		b.WriteString(": " + p.Msg)
	}
	return b.String()
}

// IsInvalid reports whether err is (or wraps) an *Error: bad stack input, not a failure of the engine.
func IsInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// source is a stack file's text, to find the line of a key.
type source struct {
	file     string
	content  []byte
	embedded bool // one of the files built in (compose casts only what those need: embeddedCasts)
}

var (
	// compose-go's messages: "validating F: services.x additional properties 'y' not allowed",
	// "error while interpolating services.x.image: required variable X is missing a value",
	// "invalid interpolation format for services.x.image.\nYou may need to escape…"
	schemaPath  = regexp.MustCompile(`^validating [^:]+: (\S+) (.*)$`)
	interpPath  = regexp.MustCompile(`^error while interpolating (\S+): (.*)$`)
	formatPath  = regexp.MustCompile(`(?s)^invalid interpolation format for (\S+)\.\n.*?\n(.*)$`)
	extraKey    = regexp.MustCompile(`additional properties? '([^']+)'`)
	yamlLineErr = regexp.MustCompile(`line (\d+): (.*)`)
)

// locate turns a compose-go error into an *Error with the key's line where it can be found.
func (s *source) locate(err error) error {
	var probs []Problem
	for _, e := range splitJoined(err) {
		msg := e.Error()
		p := Problem{Msg: msg}
		switch {
		case schemaPath.MatchString(msg):
			m := schemaPath.FindStringSubmatch(msg)
			p.Key, p.Msg = m[1], m[2]
			if m[2] == "false schema" { // a key the schema does not allow here
				parts := strings.Split(m[1], ".")
				p.Msg = "unknown key " + parts[len(parts)-1]
			}
			if k := extraKey.FindStringSubmatch(m[2]); k != nil {
				p.Key += "." + k[1]
				p.Msg = "unknown key " + k[1] + " (" + m[2] + ")"
			}
		case interpPath.MatchString(msg):
			m := interpPath.FindStringSubmatch(msg)
			p.Key, p.Msg = m[1], "interpolation: "+m[2]
		case formatPath.MatchString(msg):
			m := formatPath.FindStringSubmatch(msg)
			p.Key, p.Msg = m[1], "bad interpolation "+strings.TrimPrefix(m[2], "Invalid template: ")+"; write $$ for a literal $"
		case yamlLineErr.MatchString(msg):
			m := yamlLineErr.FindStringSubmatch(msg)
			fmt.Sscan(m[1], &p.Line)
			p.Msg = "YAML: " + m[2]
		}
		if p.Key != "" {
			p.Line = s.line(p.Key)
		}
		probs = append(probs, p)
	}
	return &Error{File: s.file, Problems: probs}
}

func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	return []error{err}
}

// line returns the 1-based line of the dotted key path (e.g. services.spire-server.deploy.replicas, or
// services.x.healthcheck.test.2), or of its closest existing ancestor; 0 when not even the first part is found.
// It reads the indentation of the block-style YAML the stack files are written in.
func (s *source) line(key string) int {
	parts := strings.Split(key, ".")
	lines := strings.Split(string(s.content), "\n")
	best, from, indent := 0, 0, -1
	// service and key names may contain dots: try the longest segments first
	for i := 0; i < len(parts); {
		found := false
		for j := len(parts); j > i; j-- {
			name := strings.Join(parts[i:j], ".")
			if ln, ind, ok := findKey(lines, from, indent, name); ok {
				best, from, indent, i, found = ln+1, ln+1, ind, j, true
				break
			}
		}
		if !found {
			break
		}
	}
	return best
}

// findKey finds `name:` (or a list item `- name` / the n-th list item) in the block that starts at line from
// and is indented more than parent; it returns the 0-based line and its indentation.
func findKey(lines []string, from, parent int, name string) (int, int, bool) {
	childIndent := -1
	item := -1
	for i := from; i < len(lines); i++ {
		l := lines[i]
		t := strings.TrimLeft(l, " ")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		ind := len(l) - len(t)
		if ind <= parent {
			return 0, 0, false // left the parent's block
		}
		if childIndent == -1 {
			childIndent = ind
		}
		if ind != childIndent {
			continue
		}
		if strings.HasPrefix(t, "- ") || t == "-" {
			item++
			if fmt.Sprint(item) == name {
				return i, ind, true
			}
			t = strings.TrimPrefix(t, "- ")
		}
		k, _, ok := strings.Cut(t, ":")
		if ok && strings.Trim(strings.TrimSpace(k), `"'`) == name {
			return i, ind, true
		}
		if strings.Trim(strings.TrimSpace(t), `"'`) == name {
			return i, ind, true
		}
	}
	return 0, 0, false
}

// readFile reads a `file:` source of a secret or config from the package's files and interpolates it.
func (c *converter) readFile(kind, key, file string) ([]byte, bool) {
	p := path.Clean(file)
	if path.IsAbs(p) || strings.HasPrefix(p, "../") {
		c.fail(kind+"."+key+".file", "%q: give a path relative to the stack file, inside this package", file)
		return nil, false
	}
	b, err := fs.ReadFile(c.fsys, p)
	if err != nil {
		c.fail(kind+"."+key+".file", "%v", err)
		return nil, false
	}
	lookup := func(k string) (string, bool) { v, ok := c.vars[k]; return v, ok }
	out, err := template.Substitute(string(b), lookup)
	if err == nil {
		return []byte(out), true
	}
	// find the line of the file that fails, for the message
	for i, l := range strings.Split(string(b), "\n") {
		if _, lerr := template.Substitute(l, lookup); lerr != nil {
			c.problems = append(c.problems, Problem{Line: c.src.line(kind + "." + key + ".file"), Key: kind + "." + key + ".file",
				Msg: fmt.Sprintf("%s:%d: %v; write $$ for a literal $", p, i+1, lerr)})
			return nil, false
		}
	}
	c.fail(kind+"."+key+".file", "%s: %v", p, err)
	return nil, false
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
