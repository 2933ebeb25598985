// Package agentlauncher keeps one SPIRE agent running on a Docker node as a plain container with the host's PID
// namespace, which a Swarm service cannot have (moby/swarmkit#1605): SPIRE's workload attestation resolves a
// caller's PID (SO_PEERCRED), and a caller in another PID namespace shows as PID 0 and is refused.
//
// `ziti-bootstrap agent-launcher` runs it as a global Swarm service of the tool's own image; on each node it ensures
// the container named ZB_AGENT_CONTAINER:
//
//   - the image ZB_AGENT_IMAGE (pulled when the node lacks it) with `-config /etc/spire/agent/agent.conf`, user
//     0:0, --pid host, restart policy unless-stopped (a rebooted node gets its agent back before the launcher
//     runs), the network ZB_AGENT_NETWORK, and a Docker healthcheck `spire-agent healthcheck -socketPath
//     /run/spire/agent/public/api.sock`;
//   - the files of ZB_AGENT_FILES_DIR (the launcher's Swarm configs and secrets) copied to /etc/spire/agent before
//     it starts, so the container needs no Swarm configs;
//   - the volumes ZB_AGENT_SOCKET_VOLUME (/run/spire/agent/public, the Workload API socket workloads mount),
//     ZB_AGENT_DATA_VOLUME (/var/lib/spire/agent) and ZB_AGENT_PROXY_VOLUME (/run/zb-docker, read-only), created
//     when missing, and the read-only binds ZB_AGENT_BINDS (never the Engine's socket: FromEnv refuses it).
//
// The agent's Docker Engine: the agent never sees the Engine's socket. Its docker workload attestor calls
// /run/zb-docker/docker.sock, which the launcher serves itself (Serve), in its own mount of ZB_AGENT_PROXY_VOLUME
// (ZB_AGENT_PROXY_DIR): a filtering proxy (internal/sockproxy, policy spire-agent) that forwards the Engine's
// facts (ping, version, info) and container and image inspection only, and refuses every other call with 403. A
// new launcher task serves the socket again in the same directory, so the agent, which dials it for each call,
// attests again; while no launcher runs on the node (a rolling update), new workloads are not attested.
//
// The launcher's Docker Engine: in the stack it has no Engine socket either. DOCKER_HOST is the socket of the global
// service spire-agent-launcher-docker (`socket-proxy --policy agent-launcher`, ProxyPolicy), given the same
// ZB_AGENT_* settings (AgentFromEnv): it forwards the calls of Ensure, Run and Check on the agent container those
// settings make, and only those (a create of any other container, or of this one with anything else set, is
// refused), and the agent proxy's inspections, which go through it too.
//
// Ownership: the container carries org.ziti-bootstrap.role=spire-agent and com.docker.stack.namespace; a
// container of that name without them is never touched (the ensure fails and says so). Its volumes carry the
// namespace label, so `down` finds them.
//
// Change: the labels org.ziti-bootstrap.agent-spec (hash of the whole spec: image ID on the node, files'
// content, binds, network, the rest) and …-spec-parts (a short hash per part) say what the container was created
// from; when the hash differs it is stopped, removed and created again, and the log names the parts that
// changed. A second ensure with nothing changed makes no mutating call.
//
// Loop (Run): ensure, then wait for a die, destroy or health_status event of the container (or Resync), and
// ensure again; ensures that follow a failure or come in quick succession wait MinDelay, doubling up to MaxDelay.
// The restart policy brings back an agent that crashed; one stopped or killed by hand (docker stop, docker kill:
// the engine then ignores the policy) is started again by the launcher on its die event, a removed one created.
// SIGTERM ends the loop and leaves the agent running: a rolling update of the launcher keeps the workloads'
// SVIDs. Removing the agent containers is `down`'s job (by label).
//
// Check is the launcher's healthcheck: healthy only when the container exists, runs the current spec, Docker says
// it is healthy and the Engine answers through the agent's proxy; otherwise one line that says why.
package agentlauncher
