package backups

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/app"
	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

// Schedule runs backups on the schedule until the context ends (SIGTERM), serving metrics and health.
func Schedule(ctx context.Context, c *command.CLI, env *app.Backup, tool string, noPrune bool) error {
	job, err := backup.NewJob(backup.JobConfig{Schedule: env.Settings.Schedule, Log: c.Log, Run: func(ctx context.Context) (*backup.Manifest, error) {
		m, _, err := env.RunOnce(ctx, c.Locker(), tool, noPrune)
		return m, err
	}, Busy: func(err error) bool { return errors.Is(err, lock.ErrHeld) }, InUse: inUse()})
	if err != nil {
		return exitcode.With(exitcode.InvalidConfig, err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return job.Serve(ctx, env.Settings.Listen)
}

// inUse is what keeps the scheduled job's container in use when the job is its init (pid 1: the backup service
// of the Swarm): a restore run there with docker exec (up's upgrade rollback, or an operator's).
func inUse() func() string {
	if os.Getpid() != 1 {
		return nil
	}
	return func() string { return backup.RestoreIn("/proc") }
}

// Once takes one snapshot set and prints it, and the sets the retention policy deleted.
func Once(ctx context.Context, c *command.CLI, env *app.Backup, tool string, noPrune bool) error {
	m, deleted, err := env.RunOnce(ctx, c.Locker(), tool, noPrune)
	if m == nil {
		return err
	}
	if c.Output == "json" {
		if perr := command.PrintJSON(c.Stdout, map[string]any{"manifest": m, "deleted": deleted}); perr != nil {
			return perr
		}
		return err
	}
	fmt.Fprintf(c.Stdout, "set %s complete: %d object(s), %s stored in %s\n", m.Set, len(m.Objects), BytesString(m.Size()),
		m.Finished.Sub(m.Started).Round(time.Millisecond))
	for _, obj := range m.Objects {
		fmt.Fprintf(c.Stdout, "  %-9s %-26s %10s (raw %s)  %s\n", obj.Source, obj.Key, BytesString(obj.Size), BytesString(obj.RawSize), obj.ServerVersion)
	}
	if m.Encryption != nil {
		fmt.Fprintf(c.Stdout, "  encrypted with key %s\n", m.Encryption.KeyID)
	}
	for _, id := range deleted {
		fmt.Fprintf(c.Stdout, "deleted set %s (retention)\n", id)
	}
	return err
}

// List prints the snapshot sets.
func List(ctx context.Context, c *command.CLI, env *app.Backup) error {
	now := time.Now()
	sets, err := env.Lister().List(ctx, now)
	if err != nil {
		return Classify(err)
	}
	return PrintSets(c.Stdout, c.Output, sets, now)
}

// Verify downloads set and checks it against its manifest, and says so.
func Verify(ctx context.Context, c *command.CLI, env *app.Backup, set string) error {
	m, authenticated, err := env.Restorer(nil, false).Verify(ctx, set)
	if err != nil {
		return Classify(err)
	}
	if c.Output == "json" {
		return command.PrintJSON(c.Stdout, map[string]any{"manifest": m, "authenticated": authenticated})
	}
	fmt.Fprintf(c.Stdout, "set %s verified: %d object(s), %s\n", m.Set, len(m.Objects), BytesString(m.Size()))
	if authenticated {
		fmt.Fprintf(c.Stdout, "  authenticated with key %s\n", m.Encryption.KeyID)
	} else {
		fmt.Fprintln(c.Stdout, "  NOT authenticated (no BACKUP_ENCRYPTION_KEY): its objects match its manifest, but anyone who can write to the bucket could have written both")
	}
	return nil
}

// SetView is a set as `backup list -o json` prints it.
type SetView struct {
	ID            string           `json:"id"`
	State         backup.SetState  `json:"state"`
	Authenticated bool             `json:"authenticated"`
	Started       time.Time        `json:"started"`
	AgeSeconds    int64            `json:"ageSeconds"`
	Bytes         int64            `json:"bytes"`
	Objects       int              `json:"objects"`
	Problem       string           `json:"problem,omitempty"`
	Manifest      *backup.Manifest `json:"manifest,omitempty"`
}

// PrintSets writes the sets, newest first, or as JSON.
func PrintSets(w io.Writer, format string, sets []backup.SetInfo, now time.Time) error {
	if format == "json" {
		views := []SetView{}
		for _, s := range sets {
			views = append(views, SetView{ID: s.ID, State: s.State, Authenticated: s.Authenticated, Started: s.Started, AgeSeconds: int64(now.Sub(s.Started).Seconds()),
				Bytes: s.Size, Objects: len(s.Objects), Problem: s.Problem, Manifest: s.Manifest})
		}
		return command.PrintJSON(w, views)
	}
	if len(sets) == 0 {
		_, err := fmt.Fprintln(w, "no snapshot sets")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tSTATE\tSIZE\tAGE\tSOURCES\tNOTE")
	for i := len(sets) - 1; i >= 0; i-- { // newest first
		s := sets[i]
		srcs := "-"
		if s.Manifest != nil {
			var names []string
			for _, o := range s.Manifest.Objects {
				names = append(names, o.Source)
			}
			srcs = strings.Join(names, ",")
			if s.Manifest.Encryption != nil {
				srcs += " (encrypted)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, BytesString(s.Size), Age(now.Sub(s.Started)), srcs, s.Problem)
	}
	return tw.Flush()
}

// Classify gives a backup or restore error its exit code: a key that does not fit the set is a configuration
// problem, a dependency that did not answer is unreachable, a refused set or failed run is a failure.
func Classify(err error) error {
	var ke *backup.KeyError
	var un *backup.UnauthenticatedError
	var ue *wait.UnreachableError
	_, coded := exitcode.Carried(err)
	switch {
	case err == nil, coded, config.IsInvalid(err):
		return err
	case errors.As(err, &ke), errors.As(err, &un):
		return exitcode.With(exitcode.InvalidConfig, err)
	case errors.As(err, &ue):
		return exitcode.With(exitcode.Unreachable, err)
	case errors.Is(err, context.Canceled):
		return err
	}
	return exitcode.With(exitcode.StepFailed, err)
}

// BytesString is n in B, KiB, MiB or GiB.
func BytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Age is d, short: 42s, 5m, 3h07m, 2d04h.
func Age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
