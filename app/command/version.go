package command

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the version line of the tool of version tool: with the commit it was built from and Go's version.
func Version(tool string) string {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return fmt.Sprintf("ziti-bootstrap %s (commit %s, %s)", tool, commit, runtime.Version())
}
