package crashtest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/calls/callfaults"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/exitcode"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// faultBed is a bed whose runs reach every server through a proxy.
type faultBed struct {
	*bed
	kc *httpProxy // Keycloak, HTTP-aware: faults and "gone after N writes"
	sp *grpcProxy // SPIRE server admin API, gRPC-aware
	zt *httpProxy // OpenZiti controller, HTTP-aware behind a TLS certificate of its own (pinned by the runs)
	dk *listener  // Docker Engine
	s3 *listener  // S3
}

func newFaultBed(t *testing.T) *faultBed {
	b := newBed(t)
	su, err := url.Parse(b.in.S3.Endpoint)
	testutil.Must(t, err)
	return &faultBed{bed: b,
		kc: newHTTPProxy(t, b.in.Keycloak.URL),
		sp: newGRPCProxy(t, b.in.Spire.Socket),
		zt: newTLSProxy(t, b.in.Ziti.URL, b.in.Ziti.CAFile),
		dk: pipe(t, "unix", t.TempDir()+"/docker-proxy.sock", "unix", strings.TrimPrefix(b.in.Docker.Host, "unix://")),
		s3: pipe(t, "tcp", "127.0.0.1:0", "tcp", su.Host),
	}
}

// via are the settings that send a run through the proxies, with ZB_WAIT_TIMEOUT=wait.
func (f *faultBed) via(wait string) []string {
	return []string{
		"--set", "KEYCLOAK_URL=" + f.kc.url(),
		"--set", "SPIRE_SERVER_ADDRESS=unix://" + f.sp.addr,
		"--set", "ZITI_CTRL_URL=" + f.zt.url(),
		"--set", "ZITI_CA_FILE=" + f.zt.caFile,
		"--set", "DOCKER_HOST=unix://" + f.dk.addr,
		"--set", "S3_ENDPOINT=http://" + f.s3.addr,
		"--set", "ZB_WAIT_TIMEOUT=" + wait,
	}
}

// heal brings every proxy back and clears every fault.
func (f *faultBed) heal() {
	for _, l := range []*listener{f.kc.listener, f.sp.listener, f.zt.listener, f.dk, f.s3} {
		l.start(f.t)
	}
	for _, p := range []*httpProxy{f.kc, f.zt} {
		p.inj.Set(nil)
		p.stopAfterWrites.Store(0)
		p.writes.Store(0)
	}
	f.sp.inj.Set(nil)
}

// A fault case: what to do to the dependencies, and what the run must say.
type faultCase struct {
	name   string
	fault  string // for the table
	wait   string // ZB_WAIT_TIMEOUT; default 3s
	env    []string
	arm    func(f *faultBed) runOpts // set the fault up; returns the run's options
	code   int
	says   func(f *faultBed) []string // what stderr must contain
	record func(f *faultBed, r result) string
}

const (
	spireList   = "/spire.api.server.entry.v1.Entry/ListEntries"
	spireCreate = "/spire.api.server.entry.v1.Entry/BatchCreateEntry"
)

func method(name string) func(string, string) bool {
	return func(_, target string) bool { return target == name }
}

// configWrite matches the calls that change configuration: writes other than Keycloak token requests.
func configWrite(m, target string) bool {
	return callfaults.OnlyWrites(m, target) && !strings.HasSuffix(target, "/protocol/openid-connect/token")
}

// fromWrite matches every call from the n-th call that write matches on (the server "breaks" at that write).
func fromWrite(n int, write func(m, target string) bool) func(string, string) bool {
	writes := 0
	return func(m, target string) bool {
		if write(m, target) {
			writes++
		}
		return writes >= n
	}
}

// TestDependencyFaults takes each dependency away in the middle of a run, or makes it answer badly, from
// nothing. The run fails as it must (3 "dependency unreachable" naming the dependency and its last error when
// the dependency stays away; 4 when it answered badly; 5 when the lock could not be kept); then, the dependency
// back, the next run converges to the state of an uninterrupted run and the one after writes nothing.
func TestDependencyFaults(t *testing.T) {
	f := newFaultBed(t)
	f.reset()
	f.mustConverge("uninterrupted apply", runOpts{})
	want := f.state()
	f.reset()
	names := func(what string, addr func(f *faultBed) string) func(f *faultBed) []string {
		return func(f *faultBed) []string {
			return []string{what + " at " + addr(f) + " unreachable after", "last error"}
		}
	}
	kcAt := func(f *faultBed) string { return f.kc.url() }
	spAt := func(f *faultBed) string { return "unix://" + f.sp.addr }
	cases := []faultCase{
		// spire/ziti-ca, the other step that calls SPIRE, runs beside spire/entries once OpenZiti answers: the
		// controller's first login is held 1 s, so that SPIRE is gone before spire/ziti-ca reads its bundle
		{name: "spire-stopped-mid-run", fault: "SPIRE server stopped after spire/entries wrote (OpenZiti's first login held 1s)",
			arm: func(f *faultBed) runOpts {
				f.zt.inj.Set(&callfaults.Fault{Kind: callfaults.FaultTimeout, Delay: time.Second, Times: 1, Match: func(m, p string) bool {
					return m == "POST" && strings.Contains(p, "/authenticate")
				}})
				return runOpts{onLine: onStep("spire/entries", f.sp.stop)}
			},
			code: exitcode.Unreachable, says: names("SPIRE server", spAt)},
		{name: "ziti-stopped-mid-run", fault: "OpenZiti controller stopped after spire/entries wrote",
			arm:  func(f *faultBed) runOpts { return runOpts{onLine: onStep("spire/entries", f.zt.stop)} },
			code: exitcode.Unreachable, says: names("OpenZiti controller", func(f *faultBed) string { return f.zt.url() })},
		{name: "keycloak-stopped-mid-step", fault: "Keycloak stopped at its 2nd write (realm made, the rest not)",
			arm:  func(f *faultBed) runOpts { f.kc.stopAfterWrites.Store(1); return runOpts{} },
			code: exitcode.Unreachable, says: names("Keycloak", kcAt)},
		{name: "keycloak-flaps", fault: "Keycloak stopped at its 2nd write, back 1s later", wait: "30s",
			arm: func(f *faultBed) runOpts {
				f.kc.stopAfterWrites.Store(1)
				return runOpts{onLine: func(line string) {
					if strings.Contains(line, `"msg":"waiting"`) && strings.Contains(line, `"for":"Keycloak"`) {
						time.AfterFunc(time.Second, func() { f.kc.stopAfterWrites.Store(0); f.kc.start(f.t) })
					}
				}}
			},
			code: exitcode.OK, says: func(*faultBed) []string { return []string{"a dependency went away and came back"} }},
		// The runner runs independent steps at once: the steps that call Docker and S3 (their reachable steps) are
		// done long before ziti/oidc. Gone after their last use, they fail nothing: the run converges, and the lock
		// it could not release (Docker gone) is named in a warning; it expires by itself.
		{name: "docker-stopped-mid-run", fault: "Docker Engine stopped once docker/reachable and ziti/oidc are done (lock held)",
			arm: func(f *faultBed) runOpts {
				return runOpts{onLine: onSteps(f.dk.stop, "docker/reachable", "ziti/oidc")}
			},
			code: exitcode.OK, says: func(f *faultBed) []string {
				return []string{"could not release the lock; it expires by itself", "unix://" + f.dk.addr}
			}},
		{name: "s3-stopped-mid-run", fault: "S3 stopped once s3/reachable and ziti/oidc are done",
			arm: func(f *faultBed) runOpts {
				return runOpts{onLine: onSteps(f.s3.stop, "s3/reachable", "ziti/oidc")}
			},
			code: exitcode.OK, says: func(*faultBed) []string { return nil }},
		{name: "docker-gone-lock-lost", fault: "Docker Engine stopped while apply holds the lock (ZB_LOCK_TTL=3s), run slowed by a 6s Keycloak stall",
			env: []string{"ZB_LOCK_TTL=3s"},
			arm: func(f *faultBed) runOpts {
				f.kc.inj.Set(&callfaults.Fault{Kind: callfaults.FaultTimeout, Delay: 6 * time.Second, Times: 1, Match: configWrite})
				return runOpts{onLine: onStep("spire/reachable", f.dk.stop)}
			},
			code: exitcode.Locked, says: func(*faultBed) []string {
				return []string{"the ziti-bootstrap lock", "was lost while this run held it", "could not be renewed before it expired"}
			}},
		{name: "keycloak-503-from-2nd-write", fault: "Keycloak answers 503 to every call from its 2nd write on",
			arm: func(f *faultBed) runOpts {
				f.kc.inj.Set(&callfaults.Fault{Kind: callfaults.FaultStatus, Match: fromWrite(2, configWrite)})
				return runOpts{}
			},
			code: exitcode.Unreachable, says: func(f *faultBed) []string { return append(names("Keycloak", kcAt)(f), "503") }},
		{name: "keycloak-one-502", fault: "Keycloak answers 502 to its 2nd write, once",
			arm: func(f *faultBed) runOpts {
				f.kc.inj.Set(&callfaults.Fault{Kind: callfaults.FaultStatus, Status: 502, After: 1, Times: 1, Match: configWrite})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: func(*faultBed) []string { return []string{"keycloak/realm", "502"} }},
		{name: "keycloak-lost-answer", fault: "Keycloak creates the realm with its client and mappers, the answer is lost (connection reset)",
			arm: func(f *faultBed) runOpts {
				// the realm's create itself (one call that carries its client and the client's mappers)
				f.kc.inj.Set(&callfaults.Fault{Kind: callfaults.FaultLostAnswer, Times: 1, Match: func(m, p string) bool {
					return m == "POST" && strings.HasSuffix(strings.TrimSuffix(p, "/"), "/admin/realms") // gocloak posts to …/realms/
				}})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: func(*faultBed) []string { return []string{"keycloak/realm", "create keycloak-realm"} }},
		{name: "keycloak-malformed-json", fault: "Keycloak answers malformed JSON to the realm's GET, once",
			arm: func(f *faultBed) runOpts {
				f.kc.inj.Set(&callfaults.Fault{Kind: callfaults.FaultMalformed, Times: 1,
					Match: func(m, p string) bool { return m == "GET" && strings.HasSuffix(p, "/admin/realms/"+f.realm) }})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: func(*faultBed) []string { return []string{"keycloak/realm: plan"} }},
		{name: "keycloak-hangs", fault: "Keycloak stops answering from its 2nd write on (requests hang)",
			arm: func(f *faultBed) runOpts {
				f.kc.inj.Set(&callfaults.Fault{Kind: callfaults.FaultTimeout, Match: fromWrite(2, configWrite)})
				return runOpts{}
			},
			code: exitcode.Unreachable, says: func(f *faultBed) []string { return append(names("Keycloak", kcAt)(f), "deadline") }},
		{name: "spire-malformed-protobuf", fault: "SPIRE answers ListEntries with bytes that are not protobuf, once",
			arm: func(f *faultBed) runOpts {
				f.sp.inj.Set(&callfaults.Fault{Kind: callfaults.FaultMalformed, Times: 1, Match: method(spireList)})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: func(*faultBed) []string { return []string{"spire/entries: plan", "unmarshal"} }},
		{name: "spire-unavailable-from-create", fault: "SPIRE answers UNAVAILABLE to every call from BatchCreateEntry on",
			arm: func(f *faultBed) runOpts {
				f.sp.inj.Set(&callfaults.Fault{Kind: callfaults.FaultStatus, Match: fromWrite(1, configWrite)})
				return runOpts{}
			},
			code: exitcode.Unreachable, says: func(f *faultBed) []string { return append(names("SPIRE server", spAt)(f), "Unavailable") }},
		{name: "spire-lost-answer", fault: "SPIRE creates the entries, the answer is lost",
			arm: func(f *faultBed) runOpts {
				f.sp.inj.Set(&callfaults.Fault{Kind: callfaults.FaultLostAnswer, Times: 1, Match: method(spireCreate)})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: func(*faultBed) []string { return []string{"spire/entries: apply"} }},
		{name: "spire-hangs-once", fault: "SPIRE does not answer ListEntries, once",
			arm: func(f *faultBed) runOpts {
				f.sp.inj.Set(&callfaults.Fault{Kind: callfaults.FaultTimeout, Times: 1, Match: method(spireList)})
				return runOpts{timeout: 2 * time.Minute}
			},
			code: exitcode.StepFailed, says: func(*faultBed) []string { return []string{"spire/entries: plan", "DeadlineExceeded"} }},
	}
	f.faultLoop(t, f.reset, want, cases)
}

// faultLoop runs each case from the state prepare leaves, through the proxies, with the extra arguments: the
// run must fail (or not) as the case says; then, every dependency back, the next run converges to want and the
// one after writes nothing. It logs a table of what each case saw.
func (f *faultBed) faultLoop(t *testing.T, prepare func(), want state, cases []faultCase, extra ...string) {
	var table []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			defer func() { f.t = nil }()
			prepare()
			f.heal()
			o := tc.arm(f)
			o.env = append(o.env, tc.env...)
			wait := tc.wait
			if wait == "" {
				wait = "3s"
			}
			r := f.apply(o, append(slices.Clone(extra), f.via(wait)...)...)
			f.heal()
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r)
			}
			for _, s := range tc.says(f) {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
				}
			}
			// Back to normal: the next run converges to an uninterrupted run's state; the one after writes nothing.
			rep, rerun := f.mustConverge("apply after the fault", runOpts{}, extra...)
			diffStates(t, "after "+tc.name, want, f.state())
			f.mustBeConverged("apply after the recovery", extra...)
			msg := lastError(r.stderr)
			table = append(table, fmt.Sprintf("| %s | exit %d in %s: %s | exit 0, %d write(s) in %s; then 0 writes |",
				tc.fault, r.code, r.duration.Round(100*time.Millisecond), msg, rep.MutatingCalls, rerun.duration.Round(100*time.Millisecond)))
		})
	}
	f.t = t
	f.swarmLockGone()
	t.Logf("fault table:\n%s", strings.Join(table, "\n"))
}

// lastError is the "error:" line of stderr, shortened.
func lastError(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "error: ") {
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			return strings.TrimPrefix(l, "error: ")
		}
	}
	return "(no error line)"
}

// zitiWrite matches the OpenZiti calls that change configuration: writes other than logins.
func zitiWrite(m, target string) bool {
	return callfaults.OnlyWrites(m, target) && !strings.HasSuffix(target, "/authenticate")
}

// zitiCall matches the calls of one method to one collection of the management API (e.g. POST services).
func zitiCall(method, collection string) func(string, string) bool {
	return func(m, target string) bool {
		return m == method && strings.HasSuffix(target, "/edge/management/v1/"+collection)
	}
}

// TestPolicyFaults is TestDependencyFaults for the ziti/policies step's client (the OpenZiti controller, behind
// an HTTP-aware proxy): on a converged system, apply adds the example policy file (POLICIES_FILE, this test's
// names) while the controller goes away in the middle of the step or answers badly. The run fails as it must,
// and the next one converges to the state of an uninterrupted run (no duplicate of an object whose creation
// answer was lost) and the one after writes nothing.
func TestPolicyFaults(t *testing.T) {
	f := newFaultBed(t)
	f.usePolicies()
	f.reset()
	f.mustConverge("apply without a policy file", runOpts{})
	extra := []string{"--set", "POLICIES_FILE=" + f.polFile("iot-segments.yaml", exampleText(f.bed))}
	f.mustConverge("uninterrupted apply", runOpts{}, extra...)
	want := f.state()
	zt := func(f *faultBed) string { return f.zt.url() }
	says := func(s ...string) func(*faultBed) []string { return func(*faultBed) []string { return s } }
	cases := []faultCase{
		{name: "ziti-stopped-mid-policies", fault: "OpenZiti controller stopped at the 3rd write of ziti/policies",
			arm:  func(f *faultBed) runOpts { f.zt.stopAfterWrites.Store(2); return runOpts{} },
			code: exitcode.Unreachable, says: func(f *faultBed) []string {
				return []string{"OpenZiti controller at " + zt(f) + " unreachable after", "last error"}
			}},
		{name: "ziti-lost-answer-service-create", fault: "OpenZiti creates a service, the answer is lost",
			arm: func(f *faultBed) runOpts {
				f.zt.inj.Set(&callfaults.Fault{Kind: callfaults.FaultLostAnswer, Times: 1, Match: zitiCall("POST", "services")})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: says("ziti/policies", "create ziti-service")},
		{name: "ziti-one-502-policy-create", fault: "OpenZiti answers 502 to a service policy's creation, once",
			arm: func(f *faultBed) runOpts {
				f.zt.inj.Set(&callfaults.Fault{Kind: callfaults.FaultStatus, Status: 502, Times: 1, Match: zitiCall("POST", "service-policies")})
				return runOpts{}
			},
			code: exitcode.StepFailed, says: says("ziti/policies", "create ziti-service-policy", "502")},
		{name: "ziti-malformed-list", fault: "OpenZiti answers malformed JSON to the list of services, once",
			arm: func(f *faultBed) runOpts {
				f.zt.inj.Set(&callfaults.Fault{Kind: callfaults.FaultMalformed, Times: 1, Match: func(m, p string) bool {
					return m == "GET" && strings.HasSuffix(p, "/edge/management/v1/services")
				}})
				return runOpts{}
			},
			// ziti/policies and ziti/router-policies both list the services, at once: either meets the fault
			code: exitcode.StepFailed, says: says("policies: plan: list services")},
		{name: "ziti-503-from-2nd-policies-write", fault: "OpenZiti answers 503 to every call from the 2nd write of ziti/policies on",
			arm: func(f *faultBed) runOpts {
				f.zt.inj.Set(&callfaults.Fault{Kind: callfaults.FaultStatus, Match: fromWrite(2, zitiWrite)})
				return runOpts{}
			},
			code: exitcode.Unreachable, says: func(f *faultBed) []string {
				return []string{"OpenZiti controller at " + zt(f) + " unreachable after", "503"}
			}},
	}
	f.faultLoop(t, f.resetPolicies, want, cases, extra...)
}
