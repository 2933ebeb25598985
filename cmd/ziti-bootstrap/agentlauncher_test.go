package main

import (
	"strings"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
)

func TestAgentLauncherBadSettingsExit2NamingTheVariable(t *testing.T) {
	for _, v := range []string{agentlauncher.EnvImage, agentlauncher.EnvContainer, agentlauncher.EnvNamespace, agentlauncher.EnvNetwork,
		agentlauncher.EnvFilesDir, agentlauncher.EnvSocketVolume, agentlauncher.EnvDataVolume, agentlauncher.EnvBinds} {
		t.Setenv(v, "")
	}
	t.Setenv(agentlauncher.EnvBinds, "/var/run/docker.sock")
	for _, args := range [][]string{{"agent-launcher"}, {"agent-launcher", "healthcheck"}} {
		code, out, errs := cli(t, args...)
		if code != exitcode.InvalidConfig {
			t.Errorf("%v: exit %d, want %d (stdout %q, stderr %q)", args, code, exitcode.InvalidConfig, out, errs)
		}
		for _, v := range []string{agentlauncher.EnvImage, agentlauncher.EnvFilesDir, agentlauncher.EnvBinds} {
			if !strings.Contains(errs, v+": ") {
				t.Errorf("%v: stderr does not name %s:\n%s", args, v, errs)
			}
		}
	}
}
