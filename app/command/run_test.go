package command

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/steps"
)

// blockingStep plans until its context ends, as a step whose call never returns would.
type blockingStep struct{}

func (blockingStep) Name() string        { return "test/blocking" }
func (blockingStep) DependsOn() []string { return nil }
func (blockingStep) Plan(ctx context.Context) (*steps.Plan, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A step that never returns is stopped at its deadline, saying so, instead of holding the run and its lock.
func TestStepDeadlineStopsAStepThatNeverReturns(t *testing.T) {
	t0 := time.Now()
	_, err := Deadlined{Step: blockingStep{}, D: 200 * time.Millisecond}.Plan(context.Background())
	if err == nil || !strings.Contains(err.Error(), "test/blocking plan: stopped after 200ms, the deadline of a step") {
		t.Fatalf("after %s: %v; want the step's deadline", time.Since(t0), err)
	}
}
