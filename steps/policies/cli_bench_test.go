package policies_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps/policies"
)

// BenchmarkCLIBaseline compares the step with what it replaces: the ziti CLI creating one object per process
// (`ziti edge create config|service|service-policy`, after a single `ziti edge login`), for ZB_BENCH_SERVICES
// (default 100) services with an intercept.v1 config and a Dial policy each, then the step reconciling the same
// objects under other names, in the same run. It reports cli-ms/obj, step-ms/obj and cli/step, the speed-up.
//
// The login's password goes to the CLI's prompt through a pseudo-terminal (script(1)), never in an argument.
func BenchmarkCLIBaseline(b *testing.B) {
	n := benchN(b, 100)
	bed := newBed(b)
	script, err := exec.LookPath("script")
	if err != nil {
		b.Fatalf("script(1) (util-linux) is needed to type the password at the ziti CLI's prompt: %v", err)
	}
	home := b.TempDir() // the CLI keeps its session in $HOME/.config/ziti
	zitiCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bed.bin(), args...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		return cmd
	}
	login := exec.Command(script, "-qec", strings.Join([]string{bed.bin(), "edge", "login", strings.TrimPrefix(bed.info.URL, "https://"),
		"-u", bed.info.User, "--ca", bed.info.CAFile}, " "), "/dev/null")
	login.Env = append(os.Environ(), "HOME="+home)
	login.Stdin = strings.NewReader(bed.info.Password + "\n")
	if out, err := login.CombinedOutput(); err != nil {
		b.Fatalf("ziti edge login: %v\n%s", err, out)
	}
	// The CLI's objects carry an owner of their own: the step must not see them as its own (and delete them).
	cliOwner := bed.owner + "-cli"
	tag := policies.OwnerTag + "=" + cliOwner
	b.Cleanup(func() { bed.deleteOwned(cliOwner) })
	run := func(cmd *exec.Cmd) {
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out.String())
		}
	}
	for i := 0; b.Loop(); i++ {
		prefix := fmt.Sprintf("cli%d%s", i, bed.prefix)
		start := time.Now()
		for j := range n {
			port := 10000 + j
			svc := fmt.Sprintf("%ssvc-%04d", prefix, j)
			run(zitiCmd("edge", "create", "config", svc+"-intercept", "intercept.v1", "--tags", tag,
				fmt.Sprintf(`{"protocols":["tcp"],"addresses":["svc-%04d.bench"],"portRanges":[{"low":%d,"high":%d}]}`, j, port, port)))
			run(zitiCmd("edge", "create", "service", svc, "--configs", svc+"-intercept", "--role-attributes", "bench", "--tags", tag))
			run(zitiCmd("edge", "create", "service-policy", fmt.Sprintf("%sdial-%04d", prefix, j), "Dial",
				"--identity-roles", "#bench-a", "--service-roles", "@"+svc, "--tags", tag))
		}
		cli := time.Since(start)
		start = time.Now()
		bed.mustApply(bed.parse(benchPolicy(fmt.Sprintf("step%d%s", i, bed.prefix), n, false)))
		step := time.Since(start)
		b.ReportMetric(float64(cli.Milliseconds())/float64(3*n), "cli-ms/obj")
		b.ReportMetric(float64(step.Milliseconds())/float64(3*n), "step-ms/obj")
		b.ReportMetric(cli.Seconds()/step.Seconds(), "cli/step")
		bed.mustApply(bed.parse(""))
		bed.deleteOwned(cliOwner)
	}
}

// deleteOwned deletes the objects tagged with owner, by the step's empty policy.
func (b *bed) deleteOwned(owner string) {
	b.t.Helper()
	s, err := policies.New(b.admin, policies.Config{Policy: b.parse(""), Owner: owner})
	if err != nil {
		b.t.Fatal(err)
	}
	p, err := s.Plan(ctx(b.t))
	if err == nil {
		err = p.Apply(ctx(b.t))
	}
	if err != nil {
		b.t.Errorf("delete the objects of owner %s: %v", owner, err)
	}
}

// bin is the test bed's ziti binary.
func (b *bed) bin() string {
	if b.info.Bin == "" {
		b.t.Fatal("the test bed's state names no ziti binary: run `task testbed:up`")
	}
	return filepath.Clean(b.info.Bin)
}
