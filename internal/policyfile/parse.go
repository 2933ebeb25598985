package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/yamlguard"
)

// MaxFileSize is the largest policy file Parse reads.
const MaxFileSize = safefile.MaxDocument

// Problem is one thing wrong with a policy file: where it is and what is expected instead.
type Problem struct {
	File string // the file's name as given to Parse
	Line int    // 1-based line of the problem (of the nearest enclosing element when a key is missing)
	Path string // e.g. services[2].intercept.portRanges[0].high; "" for the document as a whole
	Msg  string // what is wrong, and what is expected
}

func (p Problem) String() string {
	path := p.Path
	if path == "" {
		path = "(document)"
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, path, p.Msg)
}

// Error is what Parse and LoadFile return for a file that is not a valid policy: every problem found, in file
// order. Nothing is written to the controller for such a file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	n := len(e.Problems)
	fmt.Fprintf(&b, "policy file %s: %d problem%s", e.File, n, map[bool]string{true: "", false: "s"}[n == 1])
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// IsInvalid reports whether err is (or wraps) an *Error.
func IsInvalid(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// LoadFile reads and validates the policy file at path.
func LoadFile(path string) (*Policy, error) {
	data, err := safefile.Read(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a policy file; name is used in messages. Unknown keys, values of the wrong type
// and everything Validate checks are reported together in one *Error, each with its line and path.
func Parse(name string, data []byte) (*Policy, error) {
	f, w, err := decode(name, data)
	if err != nil {
		return nil, err
	}
	return validate(name, f, w)
}

// decode reads data into a File. Structural problems (syntax, unknown keys, wrong types) are recorded in the
// returned walker, which also knows the line of every path, for validate.
func decode(name string, data []byte) (f *File, w *walker, err error) {
	w = &walker{file: name, lines: map[string]int{}, byLine: map[int]string{}}
	fail := func(line int, path, format string, args ...any) (*File, *walker, error) {
		return nil, nil, &Error{File: name, Problems: []Problem{{File: name, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)}}}
	}
	if len(data) > MaxFileSize {
		return fail(1, "", "the file is larger than %d MiB; split it or remove what is not needed", MaxFileSize>>20)
	}
	if !utf8.Valid(data) {
		return fail(invalidUTF8Line(data), "", "the file is not UTF-8 text; save it as UTF-8")
	}
	var docs []*yaml.Node
	if err := safely(func() error {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			docs = append(docs, &n)
		}
	}); err != nil {
		line, msg := yamlErrorLine(err, data)
		return fail(line, "", "not valid YAML: %s", msg)
	}
	if len(docs) > 1 {
		return fail(docs[1].Line, "", "the file holds %d YAML documents (separated by ---); a policy file is one document", len(docs))
	}
	f = &File{}
	if len(docs) == 0 || len(docs[0].Content) == 0 {
		return f, w, nil // an empty file declares nothing
	}
	// before anything expands the aliases (the walk, the decoder)
	var bomb *yamlguard.BombError
	if errors.As(yamlguard.Check(docs[0], yamlguard.MaxNodes), &bomb) {
		return fail(bomb.Line, "", "%s", strings.TrimPrefix(bomb.Error(), fmt.Sprintf("line %d: ", bomb.Line)))
	}
	root := docs[0].Content[0]
	w.walk(root, reflect.TypeOf(File{}), "", 0)
	if w.stopped {
		return nil, nil, &Error{File: name, Problems: w.problems}
	}
	// The decoder's own strict pass (KnownFields) as a second opinion: anything it refuses that the walk did not
	// report is reported at its line.
	err = safely(func() error {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		return dec.Decode(f)
	})
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		for _, m := range te.Errors {
			line, msg := yamlErrorLine(errors.New(m), data)
			if !w.problemAt(line) {
				w.add(line, w.byLine[line], "%s", msg)
			}
		}
	case err != nil && !errors.Is(err, io.EOF):
		line, msg := yamlErrorLine(err, data)
		if !w.problemAt(line) {
			w.add(line, w.byLine[line], "%s", msg)
		}
	}
	return f, w, nil
}

// safely runs fn and turns a panic of the YAML library into an error.
func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	return fn()
}

var lineRE = regexp.MustCompile(`line (\d+)(?:, column \d+)?: ?`)

// yamlErrorLine finds the line a YAML error names (1 when it names none) and the message without the prefix.
func yamlErrorLine(err error, data []byte) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		rest := strings.TrimSpace(msg[:m[0]] + msg[m[1]:])
		if n < 1 {
			n = 1
		}
		return n, rest
	}
	if strings.Contains(msg, "control characters") {
		for i, r := range string(data) {
			if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
				return lineOf(data, i), msg
			}
		}
	}
	return 1, msg
}

func invalidUTF8Line(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return lineOf(data, i)
		}
		i += size
	}
	return 1
}

// lineOf returns the 1-based line of byte offset off in data, counting line breaks as the YAML parser does:
// \n, \r\n, a lone \r, and U+0085, U+2028, U+2029.
func lineOf(data []byte, off int) int {
	line := 1
	for i := 0; i < off && i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch r {
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				size = 2
			}
			line++
		case '\n', 0x85, 0x2028, 0x2029:
			line++
		}
		i += size
	}
	return line
}

// walker checks a YAML tree against the File type: keys it knows, lists where lists belong, numbers and
// booleans where they belong. It records the line of every path it visits.
type walker struct {
	file     string
	lines    map[string]int // path → line
	byLine   map[int]string // line → the last path seen on it
	problems []Problem
	bad      []string // paths with a structural problem
	nodes    int
	stopped  bool
}

const (
	maxDepth = 64
	maxNodes = 1_000_000 // aliases can make a small file a huge tree
)

func (w *walker) add(line int, path, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	w.problems = append(w.problems, Problem{File: w.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
	w.bad = append(w.bad, path)
}

func (w *walker) problemAt(line int) bool {
	for _, p := range w.problems {
		if p.Line == line {
			return true
		}
	}
	return false
}

func (w *walker) record(path string, line int) {
	if _, ok := w.lines[path]; !ok {
		w.lines[path] = line
	}
	w.byLine[line] = path
}

var typeNames = map[reflect.Kind]string{reflect.String: "text", reflect.Int: "a whole number", reflect.Bool: "true or false"}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if w.stopped {
		return
	}
	w.nodes++
	if depth > maxDepth || w.nodes > maxNodes {
		w.add(n.Line, path, "the document is nested too deeply or expands to too many elements (through aliases); write it out plainly")
		w.stopped = true
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			w.add(n.Line, path, "alias to an unknown anchor")
			return
		}
		n = n.Alias
		if depth++; depth > maxDepth {
			w.add(n.Line, path, "aliases nest too deeply")
			w.stopped = true
			return
		}
	}
	if path != "" {
		w.record(path, n.Line)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent value: the field's zero value
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		w.mapping(n, t, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(n.Line, path, "expected a list (e.g. [a, b], or one `- item` per line), got %s", describe(n))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.add(n.Line, path, "expected text, got %s", describe(n))
		}
	case reflect.Int:
		var v int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
			w.add(n.Line, path, "expected %s, got %s", typeNames[reflect.Int], describe(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			w.add(n.Line, path, "expected true or false, got %s", describe(n))
		}
	}
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string, depth int) {
	fields := fieldsOf(t)
	if n.Kind != yaml.MappingNode {
		w.add(n.Line, path, "expected a mapping with the keys %s, got %s", strings.Join(keysOf(fields), ", "), describe(n))
		return
	}
	explicit := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" { // <<: *anchor, walked after the explicit keys
			merges = append(merges, k, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.add(k.Line, path, "a key must be a plain name, got %s", describe(k))
			continue
		}
		if first, dup := explicit[k.Value]; dup {
			w.add(k.Line, join(path, k.Value), "key %q is given twice (first at line %d); keep one", k.Value, first)
			continue
		}
		explicit[k.Value] = k.Line
		w.pair(k, v, fields, path, depth)
	}
	// Merged keys fill in what the mapping does not say itself (YAML merge semantics).
	done := map[string]bool{}
	for i := 0; i+1 < len(merges); i += 2 {
		k, v := merges[i], merges[i+1]
		for v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		srcs := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			srcs = v.Content
		}
		for _, m := range srcs {
			for m.Kind == yaml.AliasNode && m.Alias != nil {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				w.add(k.Line, path, "<< merges mappings only, got %s", describe(m))
				continue
			}
			if w.nodes += len(m.Content); depth >= maxDepth || w.nodes > maxNodes {
				w.add(k.Line, path, "merges nest too deeply or expand to too many elements; write the mapping out plainly")
				w.stopped = true
				return
			}
			for j := 0; j+1 < len(m.Content); j += 2 {
				mk, mv := m.Content[j], m.Content[j+1]
				if mk.Kind != yaml.ScalarNode || mk.Tag == "!!merge" {
					w.add(mk.Line, path, "a merged mapping must hold plain keys only")
					continue
				}
				if _, ok := explicit[mk.Value]; ok || done[mk.Value] {
					continue
				}
				done[mk.Value] = true
				w.pair(mk, mv, fields, path, depth+1)
			}
		}
	}
}

// pair checks one key and its value.
func (w *walker) pair(k, v *yaml.Node, fields map[string]reflect.Type, path string, depth int) {
	child := join(path, k.Value)
	w.record(child, k.Line)
	ft, ok := fields[k.Value]
	if !ok {
		msg := fmt.Sprintf("unknown key %q; expected one of %s", k.Value, strings.Join(keysOf(fields), ", "))
		if s := suggest(k.Value, fields); s != "" {
			msg = fmt.Sprintf("unknown key %q (did you mean %q?); expected one of %s", k.Value, s, strings.Join(keysOf(fields), ", "))
		}
		w.add(k.Line, child, "%s", msg)
		return
	}
	w.walk(v, ft, child, depth+1)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			out[tag] = sf.Type
		}
	}
	fieldCache.Store(t, out)
	return out
}

func keysOf(fields map[string]reflect.Type) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest returns the known key closest to k (case-insensitively equal, or within two edits), or "".
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for _, f := range keysOf(fields) {
		if strings.EqualFold(f, k) {
			return f
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(f)); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = slices.Min([]int{prev[j] + 1, cur[j-1] + 1, prev[j-1] + cost})
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
