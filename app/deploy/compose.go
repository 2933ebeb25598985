package deploy

import (
	"path/filepath"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/composeproj"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
)

// ComposeOptions are the flags of up --compose and down --compose: the system as a compose project on one Docker
// Engine without Swarm (rendered by render --compose).
type ComposeOptions struct {
	Enabled bool
	Project string
	Dir     string
	Bin     string
	Host    string
}

// ProjectIn is the rendered project for dev's state directory.
func (c *ComposeOptions) ProjectIn(dev *DevOptions, engine *docker.Client) composeproj.Project {
	dir := c.Dir
	if dir == "" {
		dir = filepath.Join(dev.Dir(), "compose-"+c.Project)
	}
	return composeproj.Project{Dir: dir, Name: c.Project, Bin: c.Bin, Engine: engine}
}

// LastLines is the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
