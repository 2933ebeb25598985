package stacks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/compose-spec/compose-go/v2/consts"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/buildid"
)

// Models keeps, across processes, compose-go's model of an embedded stack file: the maps, lists and scalars its
// loader makes of the file (parsed, interpolated, in canonical form, with its defaults) before its last stage turns
// them into a project. A project made from a kept model skips most of a parse (two thirds of its CPU time: the
// YAML, the interpolation and the canonical transformations walk every node of the file against compose-go's
// tables). Model returns the model kept for file under key; KeepModel keeps one in place of the file's previous
// one. A model is kept only when it gives back the very project the parse made, under a key of everything the
// parse read: this executable's Go build ID (the code of compose-go and of this package, and the embedded files),
// the file, the project name and the values of the variables the file reads. Those are not secrets (secrets reach
// the stacks through the `environment:` sources of secrets, read by the conversion, not the parse); a file that
// read one (SecretVariables) would be parsed every time, its key and model never written.
type Models interface {
	Model(file, key string) ([]byte, bool)
	KeepModel(file, key string, model []byte)
}

// composeKept is compose with models: the project from the model kept under this parse's key, or else the parse,
// whose model is kept if it gives the same project back. Without a build ID it is compose.
func composeKept(ctx context.Context, ns string, src *source, vars map[string]string, models Models) (*types.Project, error) {
	build := buildid.Self()
	if build == "" || slices.ContainsFunc(slices.Collect(maps.Keys(vars)), secretVariable) {
		return compose(ctx, ns, src, vars)
	}
	key := modelKey(build, ns, src, vars)
	if b, ok := models.Model(src.file, key); ok {
		if project, err := fromModel(b, ns, src, vars); err == nil {
			return project, nil
		}
	}
	// compose's loader.LoadWithContext in its two stages, to keep the model between them
	details, opts := composeInput(ns, src, vars)
	dict, err := loader.LoadModelWithContext(ctx, details, opts...)
	if err != nil {
		return nil, src.locate(err)
	}
	model, encErr := json.Marshal(dict) // before ModelToProject takes dict apart
	project, err := loader.ModelToProject(dict, loader.ToOptions(&details, opts), details)
	if err != nil {
		return nil, src.locate(err)
	}
	if encErr == nil {
		if back, err := fromModel(model, ns, src, vars); err == nil && reflect.DeepEqual(back, project) {
			models.KeepModel(src.file, key, model)
		}
	}
	return project, nil
}

// secretVariable reports whether name is one of SecretVariables.
func secretVariable(name string) bool { return secretVariables()[name] }

var secretVariables = sync.OnceValue(func() map[string]bool {
	out := map[string]bool{}
	for _, v := range SecretVariables() {
		out[v] = true
	}
	return out
})

// modelKey is the key of src's model: a hash of the build ID, the file and its text, the project name ns and the
// variables (vars: only those the file reads).
func modelKey(build, ns string, src *source, vars map[string]string) string {
	h := sha256.New()
	for _, s := range []string{"ziti-bootstrap stack model 1", build, src.file, string(src.content), ns} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(vars[k]), vars[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fromModel is loader.ModelToProject of a kept model, with the input the loader's first stage would have left
// (the project name among the variables). A model it cannot load (a damaged file: compose-go panics on some
// shapes it never makes itself) is an error.
func fromModel(b []byte, ns string, src *source, vars map[string]string) (project *types.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			project, err = nil, fmt.Errorf("stack model of %s: %v", src.file, r)
		}
	}()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var dict map[string]any
	if err := d.Decode(&dict); err != nil {
		return nil, err
	}
	if err := numbers(dict); err != nil {
		return nil, err
	}
	details, opts := composeInput(ns, src, vars)
	details.Environment[consts.ComposeProjectName] = ns
	return loader.ModelToProject(dict, loader.ToOptions(&details, opts), details)
}

// numbers turns the JSON numbers in v (maps and lists, in place) into the ints compose-go's model holds, or
// float64 for those that are not integers.
func numbers(v any) error {
	value := func(e any) (any, error) {
		n, ok := e.(json.Number)
		if !ok {
			return e, numbers(e)
		}
		if i, err := n.Int64(); err == nil && int64(int(i)) == i {
			return int(i), nil
		}
		return n.Float64()
	}
	var err error
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if x[k], err = value(e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if x[i], err = value(e); err != nil {
				return err
			}
		}
	}
	return nil
}
