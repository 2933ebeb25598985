// Package upgrade decides whether an `up` is an upgrade of a stateful server, and how it is carried out: which
// services change version, in which order, which data a snapshot set must hold first, and which in-place jumps are
// refused with the supported path. It is pure: the caller observes the running services, deploys, snapshots and
// restores (app/up/upgrade.go), following the Plan made here.
//
// Stateful services are the ones whose data a new version may migrate on start: SPIRE's server (its SQLite
// datastore, one minor version at a time), PostgreSQL under Keycloak, Keycloak (it migrates the schema of its
// database on start, table MIGRATION_MODEL) and the OpenZiti controller (its bbolt database). A new image of the
// tool itself (ZB_IMAGE, ZB_BACKUP_IMAGE) or of a router changes no data of these and stays a plain rolling update.
package upgrade

import (
	"fmt"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// Server is a stateful service up knows how to upgrade.
type Server struct {
	Stack string // the stack's base name: spire, keycloak, openziti
	Key   string // the compose key of the service
	// Var is the stack variable that selects its image.
	Var string
	// Source is the backup source that holds its data (backup --sources), "" when it has none of its own.
	Source string
	// Name is the server as the operator knows it, for messages.
	Name string
}

// Servers are the stateful services in the order up upgrades them: the stacks' deployment order (SPIRE →
// Keycloak → OpenZiti), a database before the server that uses it.
var Servers = []Server{
	{Stack: "spire", Key: "spire-server", Var: "SPIRE_SERVER_IMAGE", Source: "spire", Name: "SPIRE server"},
	{Stack: "keycloak", Key: "keycloak-db", Var: "POSTGRES_IMAGE", Source: "keycloak", Name: "Keycloak's PostgreSQL"},
	{Stack: "keycloak", Key: "keycloak", Var: "KEYCLOAK_IMAGE", Source: "keycloak", Name: "Keycloak"},
	{Stack: "openziti", Key: "ziti-controller", Var: "ZITI_CONTROLLER_IMAGE", Source: "ziti", Name: "OpenZiti controller"},
}

// Running is a service as it runs now, and as the stack files want it.
type Running struct {
	Server
	Service string // the Swarm service's name, <namespace>_<key>
	From    string // the image that runs ("" when the service does not exist yet: a first deployment)
	To      string // the image of the stack file
	// FreshData is true when the new version starts on fresh data beside the old, which it leaves alone (SPIRE
	// jumping more than one minor version: stacks.PlanSpireDatastore): no snapshot is needed for the way back.
	FreshData bool
	// Previous are other stack variables the previous version ran with, set back on rollback (SPIRE's
	// SPIRE_DATASTORE_SUFFIX).
	Previous map[string]string
}

// Step is one server's upgrade.
type Step struct {
	Running
	// Restore is true when a rollback must put the server's data back from the pre-upgrade set: the new version
	// may have migrated it in place.
	Restore bool
}

// Plan is an upgrade: the servers whose version changes, in order, and the backup sources a snapshot set taken
// before must hold. An empty Plan is no upgrade.
type Plan struct {
	Steps []Step
	// Sources are the backup sources of the steps that migrate data in place, in config.BackupSources order; none
	// means no snapshot is needed.
	Sources []string
}

// Empty reports whether there is nothing to upgrade.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

// Snapshot reports whether a snapshot set must be taken before the upgrade.
func (p Plan) Snapshot() bool { return len(p.Sources) > 0 }

// Refused is an in-place jump up does not make: Why says what would break, Path the supported way.
type Refused struct {
	Service, Var, From, To string
	Why, Path              string
}

func (r *Refused) Error() string { return r.Var + " " + r.Detail() }

// Detail is the refusal without the variable's name (for a config.Problem, which names it).
func (r *Refused) Detail() string {
	return fmt.Sprintf("%s → %s is refused: %s; supported: %s", r.From, r.To, r.Why, r.Path)
}

// Make plans the upgrade of the running services (those absent from running are first deployments, not
// upgrades). A server whose image does not change is left out; so is one whose tags are not versions (latest):
// its upgrade is the operator's business, as it is for any image up cannot read.
func Make(running []Running) (Plan, error) {
	var p Plan
	for _, r := range running {
		if r.From == "" || r.From == r.To {
			continue
		}
		if err := refuse(r); err != nil {
			return Plan{}, err
		}
		st := Step{Running: r, Restore: !r.FreshData && r.Source != ""}
		p.Steps = append(p.Steps, st)
	}
	for _, src := range []string{"ziti", "spire", "keycloak"} { // config.BackupSources
		for _, st := range p.Steps {
			if st.Restore && st.Source == src {
				p.Sources = append(p.Sources, src)
				break
			}
		}
	}
	return p, nil
}

// refuse says why the jump from r.From to r.To cannot be made in place, or nil.
func refuse(r Running) error {
	from, ok1 := stacks.ImageVersion(r.From)
	to, ok2 := stacks.ImageVersion(r.To)
	if !ok1 || !ok2 {
		return nil
	}
	ref := &Refused{Service: r.Service, Var: r.Var, From: r.From, To: r.To}
	switch {
	case r.Key == "keycloak-db" && to[0] != from[0]:
		ref.Why = fmt.Sprintf("PostgreSQL %d → %d cannot open the other major version's data directory", from[0], to[0])
		ref.Path = fmt.Sprintf("keep %s; take a set (ziti-bootstrap backup), deploy the new major on a new volume and restore the set into it", r.From)
		return ref
	case less(to, from) && r.Key != "spire-server": // SPIRE's downgrades: stacks.PlanSpireDatastore says it
		ref.Why = fmt.Sprintf("%s %s is older than the running %s, and %s cannot open data a newer version migrated", r.Name, dotted(to), dotted(from), r.Name)
		ref.Path = fmt.Sprintf("keep %s, or restore a set taken before the upgrade (ziti-bootstrap restore SET --swarm) and then deploy the older image", r.From)
		return ref
	}
	return nil
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func dotted(v [3]int) string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// Lines describe the plan for the operator (up --dry-run, and the log of up).
func (p Plan) Lines(backupService string) []string {
	if p.Empty() {
		return nil
	}
	out := []string{"upgrade plan (stateful servers one at a time, in this order, each behind its health gate):"}
	for i, st := range p.Steps {
		l := fmt.Sprintf("  %d. %s (%s): %s → %s", i+1, st.Name, st.Service, st.From, st.To)
		switch {
		case st.FreshData:
			l += " (fresh datastore beside the old one: the way back needs no restore)"
		case st.Restore:
			l += " (migrates its data in place: restored from the snapshot on rollback)"
		}
		out = append(out, l)
	}
	if p.Snapshot() {
		out = append(out, fmt.Sprintf("  first: a snapshot set of %s, taken by the backup service %s", strings.Join(p.Sources, ", "), backupService))
	} else {
		out = append(out, "  no snapshot: no server migrates its data in place")
	}
	out = append(out, "  then: the bootstrap job runs again; checks: every step converged, Keycloak's admin OIDC login",
		"  on failure: each upgraded server back to its previous image, its data back from the snapshot, checked again; up exits non-zero")
	return out
}
