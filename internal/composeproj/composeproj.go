// Package composeproj runs a compose project rendered by package render (`ziti-bootstrap render --compose`) on one
// Docker Engine: it starts it with the compose CLI, waits until every long-running service is healthy and the
// one-shot services (the tool's copy, the bootstrap) have exited 0, and reads the bootstrap's report. `up
// --compose` and the end-to-end tests use it.
package composeproj

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/render"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Project is a rendered compose project.
type Project struct {
	Dir    string // the render's output directory (the project is in Dir/compose)
	Name   string // the compose project name (-p)
	Bin    string // the compose CLI; "" means docker-compose
	Engine *docker.Client
}

// Compose runs the compose CLI on the project and returns its combined output.
func (p Project) Compose(ctx context.Context, args ...string) (string, error) {
	bin := p.Bin
	if bin == "" {
		bin = "docker-compose"
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"-p", p.Name, "--no-ansi"}, args...)...)
	cmd.Dir = filepath.Join(p.Dir, render.ComposeDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", bin, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// Up runs `up -d` until it succeeds. Compose starts a service once the services it depends on are healthy, and
// gives up when one of them is unhealthy, which a slow first start (Keycloak's, on a loaded machine) can be for a
// while: Up then runs it again, as its user would, until the deadline, and stops at any other error.
func (p Project) Up(ctx context.Context, deadline time.Duration, progress wait.Progress) error {
	var out string
	err := wait.For(ctx, wait.Target{What: "compose up -d (each service once the services it depends on are healthy)", Where: "compose project " + p.Name,
		Deadline: deadline, Initial: 5 * time.Second, Max: 15 * time.Second, Progress: progress}, func(ctx context.Context) error {
		var err error
		out, err = p.Compose(ctx, "up", "-d")
		if err == nil {
			return nil
		}
		if m := unhealthy.FindString(out); m != "" {
			return fmt.Errorf("%s", m)
		}
		return wait.Permanent(fmt.Errorf("%w\n%s", err, out))
	})
	return err
}

// unhealthy is compose's message for a dependency that is not healthy (yet).
var unhealthy = regexp.MustCompile(`ERROR: for \S+ +Container "[0-9a-f]+" is unhealthy\.`)

// Services are the services of the rendered compose file, sorted.
func (p Project) Services() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(p.Dir, render.ComposeDir, render.ComposeFile))
	if err != nil {
		return nil, err
	}
	var doc struct{ Services map[string]any }
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", render.ComposeFile, err)
	}
	return slices.Sorted(maps.Keys(doc.Services)), nil
}

// Container is the name compose gives the (only) container of service.
func (p Project) Container(service string) string { return p.Name + "_" + service + "_1" }

// oneShot reports whether service runs once and exits.
func oneShot(service string) bool {
	return service == render.BootstrapService || service == render.ToolsService
}

// Converged waits until every long-running service is healthy and the one-shot services have exited 0, the
// bootstrap at since or later (a run of this `up`). A one-shot service that has failed for good (compose restarts
// the bootstrap at most 5 times) ends the wait at once.
func (p Project) Converged(ctx context.Context, since time.Time, deadline time.Duration, progress wait.Progress) error {
	services, err := p.Services()
	if err != nil {
		return err
	}
	return wait.For(ctx, wait.Target{What: "every service healthy and the bootstrap converged", Where: "compose project " + p.Name,
		Deadline: deadline, Initial: 2 * time.Second, Max: 5 * time.Second, Progress: progress}, func(ctx context.Context) error {
		for _, svc := range services {
			c, err := p.Engine.InspectContainer(ctx, p.Container(svc))
			if err != nil {
				return err
			}
			switch {
			case oneShot(svc):
				if c.Running || c.Status != "exited" {
					return fmt.Errorf("%s: %s", svc, c.Status)
				}
				if c.ExitCode != 0 && c.RestartCount >= 5 {
					return wait.Permanent(fmt.Errorf("%s exited %d after %d restarts: see `docker logs %s`", svc, c.ExitCode, c.RestartCount, p.Container(svc)))
				}
				if c.ExitCode != 0 || (svc == render.BootstrapService && c.FinishedAt.Before(since)) {
					return fmt.Errorf("%s: exit %d at %s, no success since %s yet", svc, c.ExitCode, c.FinishedAt.Format(time.RFC3339), since.Format(time.RFC3339))
				}
			case c.Health != "healthy":
				return fmt.Errorf("%s: %s %s %s", svc, c.Status, c.Health, c.HealthOutput)
			}
		}
		return nil
	})
}

var applyLine = regexp.MustCompile(`^apply: .*; (\d+) mutating call\(s\); (converged|not converged)`)

// Report is the bootstrap's last run: its report (standard output) and the mutating calls it counted.
type Report struct {
	Text          string
	MutatingCalls string // "" when the output has no apply summary
}

// BootstrapReport reads the report of the bootstrap's last run from its container's output (compose keeps the
// output of every run of the container: the last report is the text after the previous summary line).
func (p Project) BootstrapReport(ctx context.Context) (Report, error) {
	stdout, _, err := p.Engine.ContainerLogs(ctx, p.Container(render.BootstrapService))
	if err != nil {
		return Report{}, err
	}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	var ends []int
	for i, l := range lines {
		if applyLine.MatchString(l) {
			ends = append(ends, i)
		}
	}
	if len(ends) == 0 {
		return Report{Text: stdout}, nil
	}
	last := ends[len(ends)-1]
	from := 0
	if len(ends) > 1 {
		from = ends[len(ends)-2] + 1
	}
	return Report{Text: strings.Join(lines[from:last+1], "\n") + "\n", MutatingCalls: applyLine.FindStringSubmatch(lines[last])[1]}, nil
}
