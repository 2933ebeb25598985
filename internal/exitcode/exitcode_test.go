package exitcode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/config"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/wait"
)

func TestFor(t *testing.T) {
	invalid := fmt.Errorf("step: %w", &config.Error{Problems: []config.Problem{{Var: "X", Msg: "bad"}}})
	unreach := fmt.Errorf("step: %w", &wait.UnreachableError{What: "a", Where: "b", Last: errors.New("refused")})
	other := errors.New("boom")
	for _, tc := range []struct {
		errs []error
		want int
	}{
		{nil, OK},
		{[]error{nil}, OK},
		{[]error{other}, StepFailed},
		{[]error{other, unreach}, Unreachable},
		{[]error{unreach, invalid, other}, InvalidConfig},
	} {
		if got := For(tc.errs...); got != tc.want {
			t.Errorf("For(%v) = %d, want %d", tc.errs, got, tc.want)
		}
	}
}
