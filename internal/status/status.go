// Package status answers an operator's questions about a deployment as one document: is every system reachable,
// has the configuration drifted, when did the converge service last converge, when was the last backup taken
// (and is it sound), when is the next, and per Swarm node what runs there and which SPIRE agent serves it.
// `ziti-bootstrap status -o json` prints the Doc; its schema is below and versioned by Doc.Schema.
//
// # Schema "ziti-bootstrap.status/v1"
//
//	{
//	  "schema": "ziti-bootstrap.status/v1",
//	  "time": RFC 3339,                      // when the document was made
//	  "converged": bool,                     // every system reachable, no drift, no failed check
//	  "systems": [{"name": "ziti/reachable", "status": "unchanged"|"failed"|"skipped", "detail": "...", "error": "..."}],
//	  "drift": {
//	    "converged": bool,                   // a plan found nothing to change
//	    "changes": int,                      // how many changes it found
//	    "steps": [{"name": "ziti/oidc", "status": "unchanged"|"planned"|"failed"|"skipped",
//	               "changes": [Change ...],   // as in `plan -o json`
//	               "error": "..."}]
//	  },
//	  "convergence": {                       // absent unless ZB_CONVERGE_URL is set
//	    "url": "http://...:9109",
//	    "lastConverged": RFC 3339,           // the last pass that ended converged (omitted: none yet)
//	    "lastPass": RFC 3339, "lastResult": "converged"|"failed"|"busy", "lastDrift": int, "lastWrites": int,
//	    "lastReason": "start"|"interval"|"trust-bundle-changed"|"retry", "lastError": "...",
//	    "failuresInRow": int, "next": RFC 3339, "passes": int, "started": RFC 3339, "running": bool,
//	    "bundleChanges": int, "bundleFingerprint": "...",   // SPIRE trust bundle changes seen; the bundle's digest
//	    "error": "..."                       // the service could not be asked
//	  },
//	  "backups": {                           // absent unless S3_ENDPOINT is set
//	    "prefix": "ziti-bootstrap", "sets": int,
//	    "last": BackupSet,                   // the newest set, whatever its state (omitted: none)
//	    "lastValid": BackupSet,              // the newest set restore would take as "latest" (omitted: none)
//	    "schedule": "0 3 * * *", "nextScheduled": RFC 3339,   // omitted without BACKUP_SCHEDULE
//	    "error": "..."
//	  },
//	  "swarm": {                             // absent unless ZB_DOCKER=true
//	    "nodes": [{"id", "hostname", "role": "manager"|"worker", "state": "ready"|"down"|...,
//	               "tasks": [{"stack", "service", "state": "running"|..., "since": RFC 3339, "error": "..."}],
//	               "spireAgents": [Agent ...]}],
//	    "spireAgentsWithoutNode": [Agent ...],   // agents whose ID names no node of the Swarm
//	    "error": "..."
//	  }
//	}
//
// BackupSet: {"id", "started": RFC 3339, "ageSeconds": int, "sizeBytes": int, "state": "complete"|"damaged"|...,
// "authenticated": bool, "verified": bool}; verified means the listing found the set complete (every object
// stored with the size its manifest names) and its manifest authenticated with BACKUP_ENCRYPTION_KEY — what can
// be known without downloading it (`backup verify SET` reads every byte).
//
// Agent: {"id": "spiffe://TD/spire/agent/x509pop/<node ID>", "attestationType", "svidExpires": RFC 3339,
// "banned": bool}. Agents are matched to nodes by the node ID their ID ends with (x509pop with the node's Swarm
// certificate, see stacks/README.md).
//
// A section that could not be gathered carries "error" and what was found; other sections are unaffected.
// Fields are only ever added to v1; a change of meaning gets a new schema name.
package status

import (
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/converge"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// Schema names the version of Doc.
const Schema = "ziti-bootstrap.status/v1"

// Doc is the status document (see the package comment).
type Doc struct {
	Schema      string       `json:"schema"`
	Time        time.Time    `json:"time"`
	Converged   bool         `json:"converged"`
	Systems     []Check      `json:"systems"`
	Drift       Drift        `json:"drift"`
	Convergence *Convergence `json:"convergence,omitempty"`
	Backups     *Backups     `json:"backups,omitempty"`
	Swarm       *Swarm       `json:"swarm,omitempty"`
}

// Check is one step's result.
type Check struct {
	Name    string         `json:"name"`
	Status  steps.Status   `json:"status"`
	Detail  string         `json:"detail,omitempty"`
	Changes []steps.Change `json:"changes,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// Drift is what a plan found.
type Drift struct {
	Converged bool    `json:"converged"`
	Changes   int     `json:"changes"`
	Steps     []Check `json:"steps"`
}

// Convergence is what the converge service says about its passes: its /status (converge.State), inline.
type Convergence struct {
	URL string `json:"url"`
	converge.State
	Error string `json:"error,omitempty"`
}

// Backups is the state of the snapshot sets.
type Backups struct {
	Prefix        string     `json:"prefix"`
	Sets          int        `json:"sets"`
	Last          *BackupSet `json:"last,omitempty"`
	LastValid     *BackupSet `json:"lastValid,omitempty"`
	Schedule      string     `json:"schedule,omitempty"`
	NextScheduled time.Time  `json:"nextScheduled,omitzero"`
	Error         string     `json:"error,omitempty"`
}

// BackupSet is one snapshot set.
type BackupSet struct {
	ID            string    `json:"id"`
	Started       time.Time `json:"started"`
	AgeSeconds    int64     `json:"ageSeconds"`
	SizeBytes     int64     `json:"sizeBytes"`
	State         string    `json:"state"`
	Authenticated bool      `json:"authenticated"`
	Verified      bool      `json:"verified"`
}

// Swarm is what runs on each node.
type Swarm struct {
	Nodes                  []Node        `json:"nodes"`
	SpireAgentsWithoutNode []spire.Agent `json:"spireAgentsWithoutNode,omitempty"`
	Error                  string        `json:"error,omitempty"`
}

// Node is one Swarm node.
type Node struct {
	ID          string        `json:"id"`
	Hostname    string        `json:"hostname"`
	Role        string        `json:"role"`
	State       string        `json:"state"`
	Tasks       []Task        `json:"tasks"`
	SpireAgents []spire.Agent `json:"spireAgents"`
}

// Task is a task of a stack's service on a node (its current task: desired running, or a job's last run).
type Task struct {
	Stack   string    `json:"stack"`
	Service string    `json:"service"`
	State   string    `json:"state"`
	Since   time.Time `json:"since"`
	Error   string    `json:"error,omitempty"`
}
