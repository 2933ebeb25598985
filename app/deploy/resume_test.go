package deploy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ziti-bootstrap/ziti-bootstrap/app/command"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/stacks"
)

// journalled is a Swarm whose services an interrupted restore left at 0 replicas, journalled.
type journalled struct {
	labels map[string]map[string]string
	scaled []string
}

func (j *journalled) ServicesLabelled(_ context.Context, key string) ([]string, error) {
	var out []string
	for s, l := range j.labels {
		if l[key] != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}
func (j *journalled) Replicas(context.Context, string) (uint64, error) { return 0, nil }
func (j *journalled) Scale(_ context.Context, service string, _ uint64) error {
	j.scaled = append(j.scaled, service)
	return nil
}
func (j *journalled) ServiceLabels(_ context.Context, service string) (map[string]string, error) {
	return j.labels[service], nil
}
func (j *journalled) SetServiceLabels(_ context.Context, service string, labels map[string]string) error {
	for k, v := range labels {
		if v == "" {
			delete(j.labels[service], k)
		}
	}
	return nil
}

// up brings back the services of its own stacks that an interrupted restore stopped, and leaves another
// deployment's (another --prefix on the same Swarm: its restore may be running) alone.
func TestResumeRestoresOnlyOwnStacks(t *testing.T) {
	j := &journalled{labels: map[string]map[string]string{
		"dev-openziti_ziti-controller":   {backup.LabelReplicas: "1"},
		"dev-spire_spire-server":         {backup.LabelReplicas: "1"},
		"other-openziti_ziti-controller": {backup.LabelReplicas: "1"},
		"dev-openzitix_svc":              {backup.LabelReplicas: "1"},
	}}
	var out bytes.Buffer
	c := &command.CLI{Stdout: &out, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := FinishInterruptedRestores(context.Background(), c, OwnServices{LabelledServices: j, Names: stacks.DefaultNames("dev-")}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"dev-openziti_ziti-controller", "dev-spire_spire-server"}; !slices.Equal(j.scaled, want) {
		t.Errorf("brought back %v, want %v", j.scaled, want)
	}
}
