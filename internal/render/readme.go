package render

import (
	"fmt"
	"strings"
)

// Readme is the README.md of the output directory: what was rendered from what, and how to run it, in order.
// stackFiles and composeFiles say which parts were rendered.
func Readme(o Options, stackFiles, composeFiles bool) File {
	var b strings.Builder
	names := o.names()
	b.WriteString("# Rendered by `ziti-bootstrap render`: do not edit\n\n")
	b.WriteString("Every file here is generated from the stack files embedded in ziti-bootstrap (`stacks/*.yml`) and the\n" +
		"configuration (the same variables and defaults as `up`). Change the configuration and render again; the\n" +
		"whole directory is replaced. It holds secrets (`*/secrets/`): keep it private (it is 0700).\n\n")
	if stackFiles {
		b.WriteString("## Docker Swarm: `docker stack deploy`\n\n")
		b.WriteString("Run from the `stack` directory, on a Swarm manager. The stateful services (SPIRE's datastore, Keycloak's\n" +
			"PostgreSQL, the controller's database) run on the node labelled `ziti-bootstrap.state=true`: label one\n" +
			"manager first. Deploy each stack once the one before it is healthy, as `up` does:\n\n```sh\n")
		b.WriteString("docker node update --label-add ziti-bootstrap.state=true \"$(docker info -f '{{.Swarm.NodeID}}')\"\n")
		for _, s := range o.stackNames() {
			ns := names[s]
			fmt.Fprintf(&b, "docker stack deploy --resolve-image never -c %s.yml %s\n", s, ns)
			fmt.Fprintf(&b, "%s\n", waitLine(ns))
		}
		b.WriteString("```\n\n")
		b.WriteString("`--resolve-image never` keeps the image references as written (as `up` deploys them), instead of pinning\n" +
			"the digest a registry answers, which `up` would see as a change.\n\n")
		b.WriteString("The last stack's `bootstrap` is a one-shot job (`apply`): `docker service logs " + names[lastStack(o)] + "_bootstrap` shows its report;\n" +
			"it is done when `docker service ps " + names[lastStack(o)] + "_bootstrap` shows `Complete`. Secrets and configs are named as\n" +
			"`up` names them (a hash of their data), so `ziti-bootstrap up` with the same configuration finds nothing to\n" +
			"change, and `ziti-bootstrap down` removes what was deployed here.\n\n")
	}
	if len(o.FirstContact) > 0 {
		b.WriteString("The services that call the OpenZiti controller with its admin password (" + strings.Join(o.FirstContact, ", ") + ")\n" +
			"trust its CA on first contact (`ZITI_CA_TOFU=true`): the controller makes its CA at its first start, after\n" +
			"these files are written. `ziti-bootstrap up` pins it instead (a config with its fingerprint): run up once\n" +
			"the system is running to replace first-contact trust by the pin.\n\n")
	}
	if composeFiles {
		project := o.Project
		if project == "" {
			project = DefaultProject
		}
		b.WriteString("## One Docker Engine without Swarm: compose\n\n")
		fmt.Fprintf(&b, "```sh\ncd compose && docker-compose -p %s up -d\n```\n\n", project)
		b.WriteString("The services of the three stacks, in one project: `depends_on` (`service_healthy`) starts each stack's\n" +
			"services once the stack before it is healthy; `spire-agent` runs with the host's PID namespace and attests\n" +
			"with the node certificate in `configs/spire_node_cert` (its CA is `SPIRE_NODE_CA`), and reads Docker only\n" +
			"through `spire-agent-docker` (a filtering proxy: container and image inspection); `bootstrap` runs `apply`\n" +
			"once (restarted on failure, at most 5 times), and again on every `up`, where it writes nothing when nothing\n" +
			"changed: `docker-compose -p " + project + " logs bootstrap` shows its report. The scheduled backup service is\n" +
			"Swarm-only. `docker-compose -p " + project + " down` stops the project; `-v` removes its volumes too.\n")
	}
	return File{Path: "README.md", Data: []byte(b.String()), Mode: 0o644}
}

func lastStack(o Options) string {
	s := o.stackNames()
	return s[len(s)-1]
}

// waitLine is the shell line that waits until every service of the stack with namespace ns runs all its replicas
// (Swarm counts a task with a health check once it is healthy), and a job has completed.
func waitLine(ns string) string {
	return fmt.Sprintf("while docker service ls -f label=com.docker.stack.namespace=%s --format '{{.Replicas}}' | grep -v '(\\([0-9]*\\)/\\1 completed)' | awk -F'[/ ]' '$1 != $2 || /completed/' | grep -q .; do sleep 5; done", ns)
}
