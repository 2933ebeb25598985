package deploy

import (
	"bytes"
	"path/filepath"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// DevModels keeps, in the dev state directory, compose-go's model of each embedded stack file (stacks.Models),
// one file each (stack-model-<file>.json: the key on its first line, then the model), so that an `up --dev`
// process parses no stack file whose model an earlier one kept under the same key: about two thirds of the
// CPU time of its three parses. A missing, unreadable or foreign file is a miss; a failed write costs the next
// run its parse, nothing else.
type DevModels struct{ dir string }

var _ stacks.Models = DevModels{}

// OpenDevModels returns the models kept in the state directory dir.
func OpenDevModels(dir string) (DevModels, error) {
	dir, err := filepath.Abs(dir)
	return DevModels{dir: dir}, err
}

func (m DevModels) path(file string) string {
	return filepath.Join(m.dir, "stack-model-"+strings.TrimSuffix(file, ".yml")+".json")
}

// Model returns the model kept for file if it is kept under key.
func (m DevModels) Model(file, key string) ([]byte, bool) {
	b, err := safefile.Read(m.path(file), safefile.MaxDocument)
	if err != nil {
		return nil, false
	}
	k, model, ok := bytes.Cut(b, []byte("\n"))
	return model, ok && string(k) == key
}

// KeepModel keeps model for file under key, in place of the one kept before.
func (m DevModels) KeepModel(file, key string, model []byte) {
	_ = replaceFile(m.path(file), append([]byte(key+"\n"), model...))
}
