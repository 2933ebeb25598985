package testreport

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// A run as `go test -json` reports it: a passing and a failing test in one package, a subtest, a passing package.
const stream = `{"Action":"start","Package":"example.com/m/a"}
{"Action":"run","Package":"example.com/m/a","Test":"TestFast"}
{"Action":"output","Package":"example.com/m/a","Test":"TestFast","Output":"=== RUN   TestFast\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestFast","Output":"    a_test.go:9: chatter of a passing test\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestFast","Output":"--- PASS: TestFast (0.50s)\n"}
{"Action":"pass","Package":"example.com/m/a","Test":"TestFast","Elapsed":0.5}
{"Action":"run","Package":"example.com/m/a","Test":"TestSlow"}
{"Action":"output","Package":"example.com/m/a","Test":"TestSlow","Output":"    swarmtest.go:40: waited 1m2.5s for the test bed lock swarm-apply.lock\n"}
{"Action":"run","Package":"example.com/m/a","Test":"TestSlow/case"}
{"Action":"output","Package":"example.com/m/a","Test":"TestSlow/case","Output":"    a_test.go:20: want 2, got 3\n"}
{"Action":"output","Package":"example.com/m/a","Test":"TestSlow/case","Output":"    --- FAIL: TestSlow/case (99.00s)\n"}
{"Action":"fail","Package":"example.com/m/a","Test":"TestSlow/case","Elapsed":99}
{"Action":"output","Package":"example.com/m/a","Test":"TestSlow","Output":"--- FAIL: TestSlow (100.00s)\n"}
{"Action":"fail","Package":"example.com/m/a","Test":"TestSlow","Elapsed":100}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/m/a","Output":"FAIL\texample.com/m/a\t100.6s\n"}
{"Action":"fail","Package":"example.com/m/a","Elapsed":100.6}
{"Action":"output","Package":"example.com/m/b","Output":"PASS\n"}
{"Action":"output","Package":"example.com/m/b","Output":"ok  \texample.com/m/b\t3.1s\n"}
{"Action":"pass","Package":"example.com/m/b","Elapsed":3.1}
`

func TestReportPrintsWhatPlainGoTestPrintsThenTheSlowest(t *testing.T) {
	var out bytes.Buffer
	r := New(&out)
	for _, line := range strings.Split(strings.TrimSpace(stream), "\n") {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		r.Add(ev)
	}
	r.Summary(1)
	got := out.String()
	for _, want := range []string{
		// a failed test's output when it ends: the subtest's, then the parent's
		"    a_test.go:20: want 2, got 3\n    --- FAIL: TestSlow/case (99.00s)\n",
		"    swarmtest.go:40: waited 1m2.5s for the test bed lock swarm-apply.lock\n--- FAIL: TestSlow (100.00s)\nFAIL\nFAIL\texample.com/m/a\t100.6s\n",
		"ok  \texample.com/m/b\t3.1s\n",
		"slowest tests (of 2;",
		"62s of waits in all",
		"    100.0s     62.5s  fail  example.com/m/a  TestSlow\n",
		"    100.6s  fail  example.com/m/a\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"chatter of a passing test", "=== RUN", "PASS\n", "TestFast"} {
		if strings.Contains(got, not) {
			t.Errorf("report has %q (plain go test does not print it, or it is not among the slowest 1):\n%s", not, got)
		}
	}
	if !r.Failed() {
		t.Error("Failed() = false after a failed test")
	}
}
