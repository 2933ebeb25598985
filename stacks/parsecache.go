package stacks

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
)

// ParseCache keeps what compose-go made of the embedded stack files, so that the loads of one run parse each
// file once: parsing (interpolation, schema validation, normalisation) is most of the cost of a load, and up
// loads each stack up to three times (to check the configuration before any call, again with what it read from
// the Swarm, and the OpenZiti stack with its controller alone). A parse is a pure function of the file, the
// project name and the values of the variables the file reads (${NAME…}): those are the key, and compose-go
// is given only those variables, so that what it sees and what the key holds are the same. Variables read by
// the conversion alone (the `environment:` sources of secrets and configs, the `file:` sources) do not enter
// it: SPIRE_NODE_CA, read from the Swarm after the first load, reuses the first parse. Every load gets its own
// deep copy. A nil *ParseCache parses every time. With KeepModels, a parse starts from compose-go's model kept by
// an earlier process, when it has one for the same key (see Models).
type ParseCache struct {
	mu     sync.Mutex
	parsed map[string]*parseResult
	models Models
}

// parseResult is one parse, made once however many loads ask for it at the same time.
type parseResult struct {
	once    sync.Once
	project *types.Project
	err     error
}

// NewParseCache returns an empty cache, for the loads of one run.
func NewParseCache() *ParseCache { return &ParseCache{parsed: map[string]*parseResult{}} }

// KeepModels makes the cache's parses of embedded files start from the models m keeps, and keep theirs there.
func (c *ParseCache) KeepModels(m Models) { c.models = m }

// Parses is the number of parses made (each once, whatever the number of loads).
func (c *ParseCache) Parses() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.parsed)
}

// project returns the stack file src parsed as project ns with vars, from the cache when it has it; the caller
// may change what it gets.
func (c *ParseCache) project(ctx context.Context, ns string, src *source, vars map[string]string) (*types.Project, error) {
	read := readVars(src.content)
	env := make(map[string]string, len(read))
	var key strings.Builder
	key.WriteString(src.file + "\x00" + ns)
	for _, k := range read {
		if v, ok := vars[k]; ok {
			env[k] = v
			key.WriteString("\x00" + k + "=" + v)
		}
	}
	if c == nil {
		return compose(ctx, ns, src, env)
	}
	c.mu.Lock()
	r, ok := c.parsed[key.String()]
	if !ok {
		r = &parseResult{}
		c.parsed[key.String()] = r
	}
	c.mu.Unlock()
	r.once.Do(func() {
		if c.models != nil && src.embedded {
			r.project, r.err = composeKept(ctx, ns, src, env, c.models)
		} else {
			r.project, r.err = compose(ctx, ns, src, env)
		}
	})
	if r.err != nil {
		return nil, r.err
	}
	return r.project.WithServicesDisabled(), nil // a deep copy
}

// readVars are the names of the variables the text reads (${NAME…} or $NAME; $$ is a literal $), sorted,
// without repeats.
func readVars(text []byte) []string {
	var out []string
	for i := 0; i < len(text); i++ {
		if text[i] != '$' {
			continue
		}
		j := i + 1
		if j < len(text) && text[j] == '$' {
			i = j
			continue
		}
		if j < len(text) && text[j] == '{' {
			j++
		}
		k := j
		for k < len(text) && (text[k] == '_' || 'A' <= text[k] && text[k] <= 'Z' || 'a' <= text[k] && text[k] <= 'z' || k > j && '0' <= text[k] && text[k] <= '9') {
			k++
		}
		if k > j {
			out = append(out, string(text[j:k]))
		}
		i = k - 1
	}
	slices.Sort(out)
	return slices.Compact(out)
}
