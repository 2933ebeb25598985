package deploy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// A model kept in the state directory (0600) is found by the next process under its key only; a missing or
// unwritable directory is a miss, never an error.
func TestDevModelsKeepOneModelAFile(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenDevModels(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Model("spire.yml", "k1"); ok {
		t.Fatal("a model found in an empty directory")
	}
	m.KeepModel("spire.yml", "k1", []byte(`{"services":{}}`))
	m.KeepModel("openziti.yml", "k1", []byte(`{}`))
	next, _ := OpenDevModels(dir)
	if b, ok := next.Model("spire.yml", "k1"); !ok || string(b) != `{"services":{}}` {
		t.Errorf("kept model: %q %v", b, ok)
	}
	if _, ok := next.Model("spire.yml", "k2"); ok {
		t.Error("a model found under another key")
	}
	next.KeepModel("spire.yml", "k2", []byte(`{"a":1}`))
	if _, ok := next.Model("spire.yml", "k1"); ok {
		t.Error("the replaced model is still found")
	}
	fi, err := os.Stat(filepath.Join(dir, "stack-model-spire.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	gone, _ := OpenDevModels(filepath.Join(dir, "missing"))
	gone.KeepModel("spire.yml", "k1", []byte(`{}`))
	if _, ok := gone.Model("spire.yml", "k1"); ok {
		t.Error("a model found in a missing directory")
	}
}

// countedModels counts the models found.
type countedModels struct {
	DevModels
	found int
}

func (c *countedModels) Model(file, key string) ([]byte, bool) {
	b, ok := c.DevModels.Model(file, key)
	if ok {
		c.found++
	}
	return b, ok
}

// up --dev's second process loads the SPIRE stack from the model its first kept, and gets the same stack.
func TestDevModelsServeTheNextProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	vars := map[string]string{"SPIRE_UPSTREAM_CA_CERT": "c", "SPIRE_UPSTREAM_CA_KEY": "k", "SPIRE_NODE_CA": "ca"}
	var dumps [2]string
	for run := range 2 {
		m, _ := OpenDevModels(dir)
		counted := &countedModels{DevModels: m}
		cache := stacks.NewParseCache()
		cache.KeepModels(counted)
		st, err := stacks.Load(ctx, stacks.Spire, stacks.Options{Vars: vars, Parsed: cache})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		dumps[run] = string(b)
		if counted.found != run {
			t.Errorf("run %d found %d kept model(s), want %d", run, counted.found, run)
		}
	}
	if dumps[0] != dumps[1] {
		t.Errorf("the stack loaded from the kept model differs:\n%s\n%s", dumps[1], dumps[0])
	}
}
