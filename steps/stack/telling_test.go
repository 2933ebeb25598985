package stack

import (
	"strings"
	"testing"
)

// A Go program that panics prints its message first and a stack trace after it; the trace alone (what the last
// lines hold) does not say what went wrong, so the error keeps the panic's line above them.
func TestTellingKeepsThePanicAboveItsTrace(t *testing.T) {
	out := strings.Join([]string{
		"INFO: config file exists in /ziti-router/config.yml",
		"panic: runtime error: invalid memory address or nil pointer dereference",
		"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x1]",
		"",
		"goroutine 1 [running]:",
		"github.com/openziti/ziti/router/enroll.(*RestEnroller).Enroll(...)",
		"github.com/openziti/ziti@v1.7.2/router/enroll/enroll.go:10 +0x1",
		"github.com/spf13/cobra.(*Command).execute(...)",
		"github.com/spf13/cobra@v1.10.1/command.go:1015",
		"github.com/spf13/cobra.(*Command).ExecuteC(...)",
		"github.com/spf13/cobra@v1.10.1/command.go:1148",
		"main.main()",
		"github.com/openziti/ziti@v1.7.2/ziti/main.go:53 +0xf",
	}, "\n")
	got := telling(out, 8)
	if len(got) != 10 || !strings.HasPrefix(got[0], "panic: runtime error") || got[1] != "…" || got[9] != "github.com/openziti/ziti@v1.7.2/ziti/main.go:53 +0xf" {
		t.Fatalf("telling = %q, want the panic line, …, then the last 8 lines", got)
	}
}

func TestTellingIsTheTailWhenNothingEarlierNamesACause(t *testing.T) {
	var lines []string
	for i := range 20 {
		lines = append(lines, strings.Repeat("x", i+1))
	}
	got := telling(strings.Join(lines, "\n\n"), 8)
	if len(got) != 8 || got[0] != lines[12] || got[7] != lines[19] {
		t.Fatalf("telling = %q, want the last 8 lines", got)
	}
	if got := telling("only\nthree\nlines", 8); len(got) != 3 {
		t.Fatalf("telling of 3 lines = %q", got)
	}
}
