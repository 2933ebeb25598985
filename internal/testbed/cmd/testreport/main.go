// Command testreport reads `go test -json` on stdin and prints what plain `go test` prints (the output of failed
// tests, build errors and each package's result line), then the slowest tests and packages, so that a CI log shows
// where the time went. It exits 1 when a test, a package or a build failed.
//
//	go test -json ./... | go run ./internal/testbed/cmd/testreport [-top 20]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testreport"
)

func main() {
	top := flag.Int("top", 20, "how many of the slowest tests to list")
	flag.Parse()
	failed, err := run(os.Stdin, os.Stdout, *top)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, top int) (bool, error) {
	r := testreport.New(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev testreport.Event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Action == "" {
			// not an event (e.g. a line go vet or the go command printed): pass it on
			fmt.Fprintln(out, strings.TrimRight(string(line), "\n"))
			continue
		}
		r.Add(ev)
	}
	if err := sc.Err(); err != nil {
		return r.Failed(), err
	}
	r.Summary(top)
	return r.Failed(), nil
}
