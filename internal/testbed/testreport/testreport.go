// Package testreport turns the events of `go test -json` back into what plain `go test` prints (the output of
// failed tests, build errors, each package's result line) and adds, at the end, the slowest tests and packages:
// CI runs the whole suite once, and its log is where the time a test costs shows.
package testreport

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Event is one line of `go test -json` (cmd/test2json).
type Event struct {
	Time       time.Time
	Action     string // start, run, pause, cont, output, pass, fail, skip, bench; build-output, build-fail
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Elapsed    float64 // seconds, on pass, fail and skip
	Output     string
}

// Result is a finished test or package.
type Result struct {
	Package, Test string // Test empty: the package
	Action        string // pass, fail or skip
	Elapsed       time.Duration
	Waited        time.Duration // for the test bed's locks (testbed.lockFile logs each wait of a second or more)
}

// Report collects the events of one `go test -json` run and prints as it goes.
type Report struct {
	out     io.Writer
	pending map[key][]string // output of tests still running
	waited  map[key]time.Duration
	tests   []Result // top-level tests
	pkgs    []Result
	failed  bool
}

type key struct{ pkg, test string }

// New returns a Report printing to out.
func New(out io.Writer) *Report {
	return &Report{out: out, pending: map[key][]string{}, waited: map[key]time.Duration{}}
}

// Failed reports whether a test, a package or a build failed.
func (r *Report) Failed() bool { return r.failed }

// Add takes the next event.
func (r *Report) Add(ev Event) {
	switch {
	case ev.Action == "build-output":
		io.WriteString(r.out, ev.Output)
	case ev.Action == "build-fail":
		r.failed = true
	case ev.Test == "":
		r.addPackage(ev)
	default:
		r.addTest(ev)
	}
}

func (r *Report) addPackage(ev Event) {
	switch ev.Action {
	case "output":
		// plain go test drops the test binary's PASS line and keeps "ok  pkg 1.2s", "FAIL", "FAIL pkg ..."
		if ev.Output != "PASS\n" {
			io.WriteString(r.out, ev.Output)
		}
	case "pass", "fail", "skip":
		if ev.Action == "fail" {
			r.failed = true
		}
		r.pkgs = append(r.pkgs, Result{Package: ev.Package, Action: ev.Action, Elapsed: seconds(ev.Elapsed)})
	}
}

func (r *Report) addTest(ev Event) {
	k := key{ev.Package, ev.Test}
	switch ev.Action {
	case "output":
		if !strings.HasPrefix(ev.Output, "=== ") { // RUN, PAUSE, CONT, NAME: verbose mode's markers
			r.pending[k] = append(r.pending[k], ev.Output)
		}
		if m := lockWait.FindStringSubmatch(ev.Output); m != nil {
			if d, err := time.ParseDuration(m[1]); err == nil {
				r.waited[top(k)] += d
			}
		}
	case "pass", "fail", "skip":
		if ev.Action == "fail" {
			r.failed = true
			io.WriteString(r.out, strings.Join(r.pending[k], ""))
		}
		delete(r.pending, k)
		if !strings.Contains(ev.Test, "/") {
			r.tests = append(r.tests, Result{Package: ev.Package, Test: ev.Test, Action: ev.Action, Elapsed: seconds(ev.Elapsed), Waited: r.waited[k]})
			delete(r.waited, k)
		}
	}
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Millisecond)
}

// lockWait is what testbed.lockFile logs after waiting for a lock.
var lockWait = regexp.MustCompile(`waited (\S+) for the test bed lock`)

// top is the key of the top-level test of k's test.
func top(k key) key {
	k.test, _, _ = strings.Cut(k.test, "/")
	return k
}

// Slowest returns the top n of rs by elapsed time, the slowest first.
func Slowest(rs []Result, n int) []Result {
	rs = append([]Result(nil), rs...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Elapsed > rs[j].Elapsed })
	if len(rs) > n {
		rs = rs[:n]
	}
	return rs
}

// Summary prints the top slowest top-level tests (a parallel test's time includes the time it waited for the
// test bed's locks) and the slowest packages.
func (r *Report) Summary(top int) {
	if top <= 0 {
		return
	}
	var waited time.Duration
	for _, t := range r.tests {
		waited += t.Waited
	}
	fmt.Fprintf(r.out, "\nslowest tests (of %d; wall time, of which waiting for the test bed's locks; %.0fs of waits in all):\n",
		len(r.tests), waited.Seconds())
	for _, t := range Slowest(r.tests, top) {
		fmt.Fprintf(r.out, "%9.1fs %8.1fs  %-4s  %s  %s\n", t.Elapsed.Seconds(), t.Waited.Seconds(), t.Action, short(t.Package), t.Test)
	}
	fmt.Fprintf(r.out, "slowest packages (of %d):\n", len(r.pkgs))
	for _, p := range Slowest(r.pkgs, 10) {
		fmt.Fprintf(r.out, "%9.1fs  %-4s  %s\n", p.Elapsed.Seconds(), p.Action, short(p.Package))
	}
}

// short drops the module path shared by every package of the project.
func short(pkg string) string {
	return strings.TrimPrefix(strings.TrimPrefix(pkg, "github.com/ziti-bootstrap/ziti-bootstrap"), "/")
}
