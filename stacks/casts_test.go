package stacks

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/tree"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// TestEmbeddedCastsCoverTheFiles derives from the embedded stack files the entries of compose-go's cast table
// that match one of their strings (the only values compose-go casts): castPatterns must hold exactly those, and
// compose-go must still have them.
func TestEmbeddedCastsCoverTheFiles(t *testing.T) {
	full := loader.ToOptions(&types.ConfigDetails{}, nil).Interpolate.TypeCastMapping
	var need []tree.Path
	for _, name := range All {
		data, err := files.ReadFile(File(name))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		var walk func(v any, p tree.Path)
		walk = func(v any, p tree.Path) {
			switch v := v.(type) {
			case string:
				for pattern := range full {
					if p.Matches(pattern) && !slices.Contains(need, pattern) {
						need = append(need, pattern)
					}
				}
			case map[string]any:
				for k, e := range v {
					walk(e, p.Next(k))
				}
			case []any:
				for _, e := range v {
					walk(e, p.Next(tree.PathMatchList))
				}
			}
		}
		walk(doc, "")
	}
	slices.Sort(need)
	have := slices.Sorted(slices.Values(castPatterns))
	if !slices.Equal(need, have) {
		t.Errorf("the embedded files' strings need the casts %q; castPatterns has %q", need, have)
	}
	if got := embeddedCasts(); len(got) != len(castPatterns) {
		t.Errorf("compose-go's table has %d of castPatterns %q", len(got), castPatterns)
	}
}

// TestEmbeddedCastsLoadAsTheFullTable loads every embedded stack with the cut-down table and without schema
// validation, and with compose-go's whole table and validation (the same files given as Options.FS): the files
// are valid, and the stacks are the same.
func TestEmbeddedCastsLoadAsTheFullTable(t *testing.T) {
	for _, name := range All {
		opts := Options{Vars: fullVars()}
		cut, err := Load(context.Background(), name, opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.FS = files
		whole, err := Load(context.Background(), name, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cut, whole) {
			t.Errorf("stack %s loads differently with the cut-down cast table", name)
		}
	}
}
