package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/keycloak"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/lock"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/spire"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/bedziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireca"
	"github.com/ziti-bootstrap/ziti-bootstrap/steps/spireentries"
)

// binary is ziti-bootstrap, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zb-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ziti-bootstrap")
	t0 := time.Now()
	// Built as the image's binary is (static, -trimpath), so that TestSecretsAppearNowhere can put it in the image.
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "zbcrashhook", "-o", binary, "../../cmd/ziti-bootstrap") // with the crash hook (calls.CrashAfterWritesEnv)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "crashtest: built %s in %.1fs\n", binary, time.Since(t0).Seconds())
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// transcript keeps everything the subprocesses of this test process printed, and their arguments, for the
// secrets scan.
var transcript struct {
	mu   sync.Mutex
	text bytes.Buffer
	runs int
}

func record(parts ...string) {
	transcript.mu.Lock()
	defer transcript.mu.Unlock()
	for _, p := range parts {
		transcript.text.WriteString(p)
		transcript.text.WriteByte('\n')
	}
}

// bed is one test's share of the test bed: fresh names, and admin clients to observe and reset what apply made.
type bed struct {
	t       *testing.T
	in      *testbed.Info
	envFile string
	id      string

	realm, caName, signer, policy string
	entriesFile                   string
	spiffeIDs                     []string
	polPrefix, polTD              string // set by usePolicies: names and SPIFFE path of the policy files' objects

	z  *ziti.Client
	sp *spire.Client
	kc *keycloak.Client
}

// newBed claims the test bed's SPIRE root for the test, picks fresh names, and removes everything of them when
// the test ends. SPIRE entries that other runs of ziti-bootstrap own (ID prefix zb-) are deleted by an apply
// with another declaration, so they are put aside now (which makes every apply of this test start alike) and
// put back at the end.
func newBed(t *testing.T) *bed {
	t.Helper()
	in := testbed.Load(t)
	for _, s := range testbed.Servers {
		testbed.Require(t, s)
	}
	envFile, err := testbed.WriteEnv(in)
	testutil.Must(t, err)
	b := &bed{t: t, in: in, envFile: envFile, id: testutil.RandHex(t, 4)}
	b.z = bedziti.Admin(t)
	bedziti.ClaimSpireRoot(t, b.z)
	b.realm = "zbcrash-" + b.id
	b.caName = "zbcrash-" + b.id
	b.signer = "zbcrash-signer-" + b.id
	b.policy = "zbcrash-policy-" + b.id
	b.sp, err = spire.Dial(context.Background(), in.Spire.Socket, nil)
	testutil.Must(t, err)
	t.Cleanup(func() { b.sp.Close() })
	u, err := url.Parse(in.Keycloak.URL)
	testutil.Must(t, err)
	b.kc, err = keycloak.Dial(keycloak.Options{URL: u, AdminUser: in.Keycloak.AdminUser, AdminPassword: config.NewSecret(in.Keycloak.AdminPassword)})
	testutil.Must(t, err)

	td := in.Spire.TrustDomain
	b.spiffeIDs = []string{"spiffe://" + td + "/zbcrash-" + b.id + "/router", "spiffe://" + td + "/zbcrash-" + b.id + "/job"}
	b.entriesFile = b.writeEntries("entries.yaml", 3600, "zbcrash-router")

	ctx := testutil.Context(t, time.Minute)
	aside := b.othersEntries(ctx)
	b.deleteEntries(ctx, aside)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b.reset()
		have := map[string]bool{}
		cur, err := b.sp.ListEntries(ctx)
		if err != nil {
			t.Errorf("list SPIRE entries: %v", err)
		}
		for _, e := range cur {
			have[e.ID] = true
		}
		var back []spire.Entry
		for _, e := range aside {
			if !have[e.ID] {
				back = append(back, e)
			}
		}
		if len(back) > 0 {
			for i, err := range b.sp.BatchCreate(ctx, back) {
				if err != nil && !spire.IsAlreadyExists(err) {
					t.Errorf("put back SPIRE entry %s: %v", back[i].ID, err)
				}
			}
		}
	})
	return b
}

// writeEntries writes a SPIRE entries file of the bed's two SPIFFE IDs, the router's with the X.509 SVID TTL
// and DNS name given, and returns its path.
func (b *bed) writeEntries(name string, routerTTL int, routerDNS string) string {
	path := filepath.Join(b.t.TempDir(), name)
	testutil.Must(b.t, os.WriteFile(path, []byte(fmt.Sprintf(`entries:
  - spiffeId: %s
    selectors: ["docker:label:zbcrash:%s-router"]
    x509SvidTtl: %d
    dnsNames: [%s]
  - spiffeId: %s
    selectors: ["docker:label:zbcrash:%s-job", "unix:uid:0"]
`, b.spiffeIDs[0], b.id, routerTTL, routerDNS, b.spiffeIDs[1], b.id)), 0o600))
	return path
}

// othersEntries are the SPIRE entries owned by ziti-bootstrap (prefix zb-) that are not this test's.
func (b *bed) othersEntries(ctx context.Context) []spire.Entry {
	cur, err := b.sp.ListEntries(ctx)
	testutil.Must(b.t, err)
	var out []spire.Entry
	for _, e := range cur {
		if spireentries.Owned(spireentries.DefaultIDPrefix, e.ID) && !slices.Contains(b.spiffeIDs, e.SpiffeID) {
			out = append(out, e)
		}
	}
	return out
}

func (b *bed) deleteEntries(ctx context.Context, list []spire.Entry) {
	if len(list) == 0 {
		return
	}
	ids := make([]string, len(list))
	for i, e := range list {
		ids[i] = e.ID
	}
	for i, err := range b.sp.BatchDelete(ctx, ids) {
		if err != nil && !spire.IsNotFound(err) {
			b.t.Errorf("delete SPIRE entry %s: %v", ids[i], err)
		}
	}
}

// settings are the --set flags that give a run this bed's names (no secret is ever passed on a command line).
func (b *bed) settings() []string {
	return []string{
		"--env-file", b.envFile,
		"--set", "KEYCLOAK_REALM=" + b.realm,
		"--set", "ZITI_SPIRE_CA_NAME=" + b.caName,
		"--set", "ZITI_JWT_SIGNER_NAME=" + b.signer,
		"--set", "ZITI_AUTH_POLICY_NAME=" + b.policy,
		"--set", "SPIRE_ENTRIES_FILE=" + b.entriesFile,
	}
}

// reset removes everything apply makes under this bed's names: the test starts again from nothing.
func (b *bed) reset() {
	t := b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.kc.DeleteRealm(ctx, b.realm); err != nil && !keycloak.IsNotFound(err) {
		t.Errorf("delete realm %s: %v", b.realm, err)
	}
	pols, err := b.z.ListAuthPolicies(ctx, ziti.FilterEq("name", b.policy))
	testutil.Must(t, err)
	for _, p := range pols {
		if err := b.z.DeleteAuthPolicy(ctx, p.ID); err != nil && !ziti.IsNotFound(err) {
			t.Errorf("delete auth policy %s: %v", p.Name, err)
		}
	}
	sigs, err := b.z.ListExtJWTSigners(ctx, ziti.FilterEq("name", b.signer)+" or "+ziti.FilterEq("issuer", b.issuer()))
	testutil.Must(t, err)
	for _, s := range sigs {
		if err := b.z.DeleteExtJWTSigner(ctx, s.ID); err != nil && !ziti.IsNotFound(err) {
			t.Errorf("delete signer %s: %v", s.Name, err)
		}
	}
	cas, err := b.z.ListCAs(ctx, "")
	testutil.Must(t, err)
	for _, ca := range cas {
		if spireca.Owned(b.caName, ca) {
			if err := b.z.DeleteCA(ctx, ca.ID); err != nil && !ziti.IsNotFound(err) {
				t.Errorf("delete CA %s: %v", ca.Name, err)
			}
		}
	}
	cur, err := b.sp.ListEntries(ctx)
	testutil.Must(t, err)
	var mine []spire.Entry
	for _, e := range cur {
		if slices.Contains(b.spiffeIDs, e.SpiffeID) {
			mine = append(mine, e)
		}
	}
	b.deleteEntries(ctx, mine)
	b.resetPolicies()
}

func (b *bed) issuer() string {
	return strings.TrimSuffix(b.in.Keycloak.URL, "/") + "/realms/" + b.realm
}

// state is what apply made under this bed's names, as the servers show it, without server-chosen ids.
type state struct {
	Entries    []string            // SPIRE entries: id, SPIFFE ID, parent, selectors, TTLs, DNS names
	CAs        []string            // OpenZiti CAs owned by caName: settings, verified
	Signers    []string            // external JWT signers with our name or our realm's issuer
	Policies   []string            // auth policies with our name; allowed signers by name
	Realm      string              // the realm's managed settings ("" when missing)
	Clients    []string            // the realm's clients that are not Keycloak's own, with their mappers
	Profile    []string            // user-profile attributes
	Ziti       []string            // with usePolicies: the OpenZiti objects of the policy files (see zitiObjects)
	Identities []string            // with usePolicies: the bed's identities, role attributes and tags
	Dups       map[string][]string // natural keys seen more than once
}

func (s state) String() string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

// keycloakClients are the clients Keycloak puts in every realm.
var keycloakClients = []string{"account", "account-console", "admin-cli", "broker", "realm-management", "security-admin-console"}

func (b *bed) state() state {
	t := b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var s state
	dup := map[string]int{}
	count := func(key string) { dup[key]++ }

	entries, err := b.sp.ListEntries(ctx)
	testutil.Must(t, err)
	for _, e := range entries {
		if !slices.Contains(b.spiffeIDs, e.SpiffeID) {
			continue
		}
		spire.SortSelectors(e.Selectors)
		s.Entries = append(s.Entries, fmt.Sprintf("%s %s parent=%s selectors=%v x509ttl=%d jwtttl=%d dns=%v admin=%v downstream=%v hint=%q",
			e.ID, e.SpiffeID, e.ParentID, e.Selectors, e.X509SVIDTTL, e.JWTSVIDTTL, e.DNSNames, e.Admin, e.Downstream, e.Hint))
		count("spire-entry " + e.SpiffeID + " " + e.ParentID)
	}

	cas, err := b.z.ListCAs(ctx, "")
	testutil.Must(t, err)
	for _, ca := range cas {
		if !spireca.Owned(b.caName, ca) {
			continue
		}
		roles := slices.Clone(ca.IdentityRoles)
		sort.Strings(roles)
		s.CAs = append(s.CAs, fmt.Sprintf("%s fp=%s verified=%v auth=%v auto=%v ott=%v format=%s roles=%v claim=%+v tags=%v",
			ca.Name, ca.Fingerprint, ca.IsVerified, ca.IsAuthEnabled, ca.IsAutoCaEnrollmentEnabled, ca.IsOttCaEnrollmentEnabled,
			ca.IdentityNameFormat, roles, *ca.ExternalIDClaim, ca.Tags))
		count("ziti-ca " + ca.Fingerprint)
	}

	signerName := map[string]string{}
	sigs, err := b.z.ListExtJWTSigners(ctx, ziti.FilterEq("name", b.signer)+" or "+ziti.FilterEq("issuer", b.issuer()))
	testutil.Must(t, err)
	for _, sg := range sigs {
		signerName[sg.ID] = sg.Name
		s.Signers = append(s.Signers, fmt.Sprintf("%s issuer=%s aud=%s jwks=%s claim=%s extid=%v enabled=%v client=%s auth=%s scopes=%v target=%s tags=%v",
			sg.Name, sg.Issuer, sg.Audience, sg.JWKSEndpoint, sg.ClaimsProperty, sg.UseExternalID, sg.Enabled, sg.ClientID,
			sg.ExternalAuthURL, sg.Scopes, sg.TargetToken, sg.Tags))
		count("signer " + sg.Name)
		count("signer-issuer " + sg.Issuer)
	}
	pols, err := b.z.ListAuthPolicies(ctx, ziti.FilterEq("name", b.policy))
	testutil.Must(t, err)
	for _, p := range pols {
		var allowed []string
		for _, id := range p.PrimaryExtJWTAllowedSigners {
			allowed = append(allowed, orID(signerName[id], id))
		}
		p.ID, p.PrimaryExtJWTAllowedSigners = "", nil
		s.Policies = append(s.Policies, fmt.Sprintf("%+v allowed=%v", p, allowed))
		count("auth-policy " + p.Name)
	}

	realm, err := b.kc.GetRealm(ctx, b.realm)
	switch {
	case keycloak.IsNotFound(err):
	case err != nil:
		t.Fatal(err)
	default:
		s.Realm = fmt.Sprintf("%s enabled=%v dupEmails=%v managed=%s", realm.Name, realm.Enabled, realm.DuplicateEmailsAllowed,
			realm.Attributes["ziti-bootstrap.managed"])
		clients, err := b.kc.ListClients(ctx, b.realm)
		testutil.Must(t, err)
		for _, c := range clients {
			if slices.Contains(keycloakClients, c.ClientID) {
				continue
			}
			var mappers []string
			for _, m := range c.ProtocolMappers {
				mappers = append(mappers, fmt.Sprintf("%s/%s%v", m.Name, m.Type, sortedMap(m.Config)))
				count("mapper " + c.ClientID + "/" + m.Name)
			}
			sort.Strings(mappers)
			s.Clients = append(s.Clients, fmt.Sprintf("%s enabled=%v public=%v std=%v direct=%v redirect=%v origins=%v attrs=%v mappers=%v",
				c.ClientID, c.Enabled, c.Public, c.StandardFlow, c.DirectAccessGrants, c.RedirectURIs, c.WebOrigins, sortedMap(c.Attributes), mappers))
			count("client " + c.ClientID)
		}
		attrs, err := b.kc.UserProfileAttributes(ctx, b.realm)
		testutil.Must(t, err)
		for _, a := range attrs {
			s.Profile = append(s.Profile, fmt.Sprintf("%+v", a))
			count("profile " + a.Name)
		}
	}
	if b.polPrefix != "" {
		b.policyState(ctx, &s, count)
	}
	for _, l := range [][]string{s.Entries, s.CAs, s.Signers, s.Policies, s.Clients, s.Profile} {
		sort.Strings(l)
	}
	for k, n := range dup {
		if n > 1 {
			if s.Dups == nil {
				s.Dups = map[string][]string{}
			}
			s.Dups[k] = append(s.Dups[k], fmt.Sprint(n))
		}
	}
	return s
}

func orID(name, id string) string {
	if name == "" {
		return "id:" + id
	}
	return name
}

func sortedMap[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(out)
	return out
}

// result is the outcome of one subprocess.
type result struct {
	args           []string
	code           int            // exit code; -1 when killed by a signal
	signal         syscall.Signal // the signal that killed it, or 0
	stdout, stderr string
	duration       time.Duration
	pid            int
	cmdline        string // /proc/PID/cmdline as seen while it ran
	environ        string // /proc/PID/environ as seen while it ran
}

// report parses stdout as the JSON report of -o json.
func (r result) report(t *testing.T) steps.Report {
	t.Helper()
	var rep steps.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v: stdout is not a report (%v)\nstdout:\n%s\nstderr:\n%s", r.args, err, r.stdout, r.stderr)
	}
	return rep
}

func (r result) String() string {
	return fmt.Sprintf("%v: exit %d signal %v after %s\nstdout:\n%s\nstderr:\n%s", r.args, r.code, r.signal, r.duration.Round(time.Millisecond), r.stdout, r.stderr)
}

// runOpts are the extras of one run.
type runOpts struct {
	env     []string          // extra environment (NAME=VALUE), never secrets
	onLine  func(line string) // told each line of stderr as it comes
	timeout time.Duration     // default 3 minutes
	started chan<- int        // told the pid once started
}

// run starts the binary with args and a minimal environment (PATH, plus o.env) and waits for it.
func run(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir()}, o.env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	testutil.Must(t, err)
	t0 := time.Now()
	testutil.Must(t, cmd.Start())
	r := result{args: args, pid: cmd.Process.Pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.pid)); err == nil {
		r.cmdline = strings.ReplaceAll(string(b), "\x00", " ")
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", r.pid)); err == nil {
		r.environ = strings.ReplaceAll(string(b), "\x00", " ")
	}
	if o.started != nil {
		o.started <- r.pid
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(errPipe)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if o.onLine != nil {
			o.onLine(line)
		}
	}
	io.Copy(io.Discard, errPipe)
	err = cmd.Wait()
	r.duration = time.Since(t0)
	r.stdout, r.stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signal = ws.Signal()
		}
	default:
		t.Fatalf("%v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after %s (killed)\n%s", args, o.timeout, r)
	}
	record(strings.Join(append([]string{binary}, args...), " "), r.cmdline, r.environ, strings.Join(o.env, " "), r.stdout, r.stderr)
	transcript.mu.Lock()
	transcript.runs++
	transcript.mu.Unlock()
	return r
}

// apply runs apply with this bed's names, -o json, and the extra arguments.
func (b *bed) apply(o runOpts, extra ...string) result {
	b.t.Helper()
	return run(b.t, o, append(append([]string{"apply", "-o", "json"}, b.settings()...), extra...)...)
}

// mustConverge runs apply and fails the test unless it exits 0; it returns the report.
func (b *bed) mustConverge(what string, o runOpts, extra ...string) (steps.Report, result) {
	b.t.Helper()
	r := b.apply(o, extra...)
	if r.code != 0 {
		b.t.Fatalf("%s: %s", what, r)
	}
	return r.report(b.t), r
}

// mustBeConverged runs apply (with the extra arguments) and fails the test unless it exits 0 having made no
// write.
func (b *bed) mustBeConverged(what string, extra ...string) {
	b.t.Helper()
	rep, r := b.mustConverge(what, runOpts{}, extra...)
	if rep.MutatingCalls != 0 {
		b.t.Fatalf("%s: %d mutating call(s) on a converged system: %v\n%s", what, rep.MutatingCalls, rep.Writes, r)
	}
}

// swarmLockGone fails the test when the apply lock is still held in the Swarm after the runs ended (a released
// lock stays as a config marked free, without a holder's run label).
func (b *bed) swarmLockGone() {
	b.t.Helper()
	out, err := exec.Command("docker", "config", "ls", "--filter", "name="+lock.Name, "--filter", "label="+lock.LabelRun, "--format", "{{.Name}} {{.Labels}}").CombinedOutput()
	if err != nil {
		b.t.Fatalf("docker config ls: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, lock.Name+" ") {
			b.t.Errorf("the apply lock is still held after every run ended: %s", l)
		}
	}
}

// diffStates fails the test when got differs from want, showing both.
func diffStates(t *testing.T, what string, want, got state) {
	t.Helper()
	if w, g := want.String(), got.String(); w != g {
		t.Fatalf("%s: final state differs from an uninterrupted run's\nwant:\n%s\ngot:\n%s", what, w, g)
	}
	if len(got.Dups) > 0 {
		t.Fatalf("%s: duplicates: %v", what, got.Dups)
	}
}
