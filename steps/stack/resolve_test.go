package stack

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

// A service's secret and config references get the IDs of the objects they name; the spec given is not changed;
// a reference to an object that was not created fails naming it.
func TestResolveFillsIDs(t *testing.T) {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "zb_ctrl"}, TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
		Secrets: []*swarm.SecretReference{{SecretName: "s1"}},
		Configs: []*swarm.ConfigReference{{ConfigName: "c1"}, {ConfigName: "c2"}},
	}}}
	p := &plan{secretIDs: map[string]string{"s1": "sid"}, configIDs: map[string]string{"c1": "cid1", "c2": "cid2"}}
	got, err := resolve(spec, p)
	if err != nil {
		t.Fatal(err)
	}
	c := got.TaskTemplate.ContainerSpec
	if c.Secrets[0].SecretID != "sid" || c.Configs[0].ConfigID != "cid1" || c.Configs[1].ConfigID != "cid2" {
		t.Fatalf("resolved %+v %+v %+v", *c.Secrets[0], *c.Configs[0], *c.Configs[1])
	}
	if spec.TaskTemplate.ContainerSpec.Secrets[0].SecretID != "" {
		t.Fatal("the given spec was changed")
	}
	delete(p.configIDs, "c2")
	if _, err := resolve(spec, p); err == nil || !strings.Contains(err.Error(), "service zb_ctrl: config c2 was not created") {
		t.Fatalf("missing config: %v", err)
	}
}
