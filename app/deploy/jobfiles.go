package deploy

import (
	"errors"
	"fmt"
	"os"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/policyfile"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/safefile"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireentries"
)

// jobFile is a file of the operator's configuration that the bootstrap job reads: up checks it and ships it
// to the job as a Swarm config (a changed file is a new config, so the job runs again).
type jobFile struct {
	Var    string                                                       // the variable naming the file here, and in the job
	Key    string                                                       // the config's key in the stack
	Target string                                                       // where the job finds it
	Check  func(path string, data []byte, vars map[string]string) error // data: the file's content, read once
}

var jobFiles = []jobFile{
	{"POLICIES_FILE", "bootstrap-policies", "/etc/ziti-bootstrap/policies.yaml", func(path string, data []byte, _ map[string]string) error {
		_, err := policyfile.Parse(path, data)
		return err
	}},
	{"SPIRE_ENTRIES_FILE", "bootstrap-spire-entries", "/etc/ziti-bootstrap/spire-entries.yaml", func(path string, data []byte, vars map[string]string) error {
		if _, err := spireentries.Parse(data, vars["TRUST_DOMAIN"]); err != nil {
			return fmt.Errorf("SPIRE entries file %s: %w", path, err)
		}
		return nil
	}},
}

// JobFileVars are the variables of jobFiles, loaded with the stack variables.
func JobFileVars() []string {
	var out []string
	for _, f := range jobFiles {
		out = append(out, f.Var)
	}
	return out
}

// AddJobFiles ships the job files set in vars to the job service of st (when st has it). Every file is
// checked first, as apply would check it; the problems name the variable.
func AddJobFiles(st *stacks.Stack, vars map[string]string) error {
	if !st.HasService(stacks.BootstrapService) {
		return nil
	}
	var problems []config.Problem
	for _, f := range jobFiles {
		path := vars[f.Var]
		if path == "" {
			continue
		}
		data, err := safefile.Read(path, safefile.MaxDocument)
		if err == nil {
			err = f.Check(path, data, vars)
		}
		if err == nil {
			err = st.AddConfig(stacks.BootstrapService, f.Key, f.Target, f.Var, data)
		}
		if err != nil {
			problems = append(problems, config.Problem{Var: f.Var, Msg: fmt.Sprintf("%v (the bootstrap job reads it: fix it, or unset %s)", unwrapPath(err), f.Var)})
		}
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

// unwrapPath drops the *PathError's operation ("open …:") for a shorter message.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read %s: %w", pe.Path, pe.Err)
	}
	return err
}
