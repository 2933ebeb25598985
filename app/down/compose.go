package down

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/deploy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
)

// Compose stops and removes the compose project (with volumes: its data too).
func Compose(ctx context.Context, c *command.CLI, dev *deploy.DevOptions, comp *deploy.ComposeOptions, volumes bool) error {
	p := comp.ProjectIn(dev, nil)
	if _, err := os.Stat(filepath.Join(p.Dir, render.ComposeDir, render.ComposeFile)); errors.Is(err, fs.ErrNotExist) {
		return exitcode.With(exitcode.InvalidConfig, fmt.Errorf("no compose project rendered in %s: give the --state-dir/--compose-dir and --project of up --compose", p.Dir))
	}
	args := []string{"down", "--remove-orphans"}
	if volumes {
		args = append(args, "--volumes")
	}
	out, err := p.Compose(ctx, args...)
	if err != nil {
		return exitcode.With(exitcode.StepFailed, fmt.Errorf("%w\n%s", err, deploy.LastLines(out, 20)))
	}
	_, err = fmt.Fprintf(c.Stdout, "%scompose project %s removed\n", out, p.Name)
	return err
}
