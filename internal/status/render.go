package status

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Render writes the document for a person.
func Render(w io.Writer, d *Doc) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	for _, c := range d.Systems {
		line := fmt.Sprintf("%-22s %-9s %s", c.Name, c.Status, c.Detail)
		if c.Error != "" {
			line += "error: " + c.Error
		}
		p("%s", strings.TrimRight(line, " "))
	}
	switch {
	case d.Drift.Converged:
		p("drift: none (a plan found nothing to change in %d step(s))", len(d.Drift.Steps))
	default:
		p("drift: %d change(s) pending", d.Drift.Changes)
		for _, c := range d.Drift.Steps {
			if c.Status == "unchanged" {
				continue
			}
			p("  %-20s %s %s", c.Name, c.Status, c.Error)
			for _, ch := range c.Changes {
				p("    %s", ch)
			}
		}
	}
	if c := d.Convergence; c != nil {
		switch {
		case c.Error != "":
			p("convergence: unknown: %s", c.Error)
		case c.LastConverged.IsZero():
			p("convergence: not converged yet (%d pass(es), last: %s)", c.Passes, c.LastResult)
		default:
			p("convergence: last converged %s (%s ago; drift %d, %d write(s)); last pass %s; next by %s",
				c.LastConverged.Format(time.RFC3339), ago(d.Time, c.LastConverged), c.LastDrift, c.LastWrites, c.LastResult, c.Next.Format(time.RFC3339))
		}
	}
	if b := d.Backups; b != nil {
		set := func(s *BackupSet) string {
			return fmt.Sprintf("%s, %s ago, %d bytes, %s, verified %v", s.ID, (time.Duration(s.AgeSeconds) * time.Second).String(), s.SizeBytes, s.State, s.Verified)
		}
		switch {
		case b.Last == nil:
			p("backups: none under %q", b.Prefix)
		case b.LastValid != nil && b.LastValid.ID == b.Last.ID:
			p("backups: %d set(s); last: %s", b.Sets, set(b.Last))
		default:
			p("backups: %d set(s); last: %s", b.Sets, set(b.Last))
			if b.LastValid != nil {
				p("  last valid: %s", set(b.LastValid))
			}
		}
		if b.Schedule != "" {
			p("  next scheduled: %s (%s)", b.NextScheduled.Format(time.RFC3339), b.Schedule)
		}
		if b.Error != "" {
			p("  error: %s", b.Error)
		}
	}
	if s := d.Swarm; s != nil {
		for _, n := range s.Nodes {
			p("node %s (%s, %s, %s):", n.Hostname, n.ID, n.Role, n.State)
			for _, a := range n.SpireAgents {
				p("  SPIRE agent %s (%s, SVID until %s, banned %v)", a.ID, a.AttestationType, a.SVIDExpires.Format(time.RFC3339), a.Banned)
			}
			if len(n.SpireAgents) == 0 {
				p("  no SPIRE agent")
			}
			for _, t := range n.Tasks {
				line := fmt.Sprintf("  %-40s %s since %s", t.Service, t.State, t.Since.Format(time.RFC3339))
				if t.Error != "" {
					line += ": " + t.Error
				}
				p("%s", line)
			}
		}
		for _, a := range s.SpireAgentsWithoutNode {
			p("SPIRE agent without a Swarm node: %s (%s)", a.ID, a.AttestationType)
		}
		if s.Error != "" {
			p("swarm: error: %s", s.Error)
		}
	}
	verdict := "converged"
	if !d.Converged {
		verdict = "NOT converged"
	}
	_, err := fmt.Fprintf(w, "status: %s\n", verdict)
	return err
}

func ago(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() }
