package sockproxy_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/agentlauncher"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/docker"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/sockproxy"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed/testutil"
)

// The agent launcher's policy, against the real Engine: the launcher's calls on the agent container of its
// settings go through (its volumes, the container created as the settings make it, its files copied in, its
// events, stop and removal), and a create of any other container (another image or name, privileged, a
// capability, a device, another bind such as the Engine's socket or the node's root), a call on another
// container, a service, a secret or an exec is refused before it reaches the Engine.
func TestAgentLauncherPolicy(t *testing.T) {
	v, err := testbed.Versions()
	testutil.Must(t, err)
	prefix := "zbtest-sockproxy-agent-" + testutil.RandHex(t, 4)
	s := agentlauncher.Settings{
		Image: "zb-local/spire-agent:" + strings.TrimPrefix(v["SPIRE_VERSION"], "v"), Container: prefix + "-agent",
		Namespace: prefix, Network: "host", SocketVolume: prefix + "-socket", DataVolume: prefix + "-data", ProxyVolume: prefix + "-docker",
		Binds: []agentlauncher.Bind{{Source: t.TempDir(), Target: "/var/lib/docker/swarm/certificates"}},
	}
	via, direct, sock := proxy(t, agentlauncher.ProxyPolicy(s))
	ctx := testutil.Context(t, 3*time.Minute)
	imageID, err := direct.ImageID(ctx, s.Image)
	if err != nil {
		t.Fatalf("%v: build it with scripts/images.sh spire", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, c := range []string{s.Container, prefix + "-victim", prefix + "-other"} {
			_ = direct.ForceRemoveContainer(ctx, c)
		}
		for _, vol := range []string{s.SocketVolume, s.DataVolume, s.ProxyVolume} {
			_ = direct.RemoveVolume(ctx, vol)
		}
	})
	refused := func(what string, err error, call string) {
		t.Helper()
		refusedBy(t, "agent-launcher", what, err, call)
	}

	// what the launcher does (Ensure, Run, Check), as its client sends it
	want := agentlauncher.Desire(s, imageID, []docker.File{{Name: agentlauncher.ConfigFile, Mode: 0o600, Data: []byte("agent {}\n")}})
	for _, vol := range []string{s.SocketVolume, s.DataVolume, s.ProxyVolume} {
		testutil.Must(t, via.CreateVolume(ctx, vol, map[string]string{docker.NamespaceLabel: s.Namespace}))
		_, err := via.InspectVolume(ctx, vol)
		testutil.Must(t, err)
	}
	if _, err := via.ImageID(ctx, s.Image); err != nil {
		t.Errorf("inspect the agent's image: %v", err)
	}
	// the pull of the agent's image reaches the Engine (which has no registry here: its own error, or the timeout)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := via.PullImage(pctx, s.Image); err != nil && strings.Contains(err.Error(), "socket proxy") {
		t.Errorf("pull the agent's image: %v", err)
	}
	cancel()
	events, errs := via.ContainerEvents(ctx, s.Container, "die", "destroy", "health_status")
	id, err := via.CreateContainer(ctx, want.Spec)
	if err != nil {
		t.Fatalf("create the agent container through the proxy: %v", err)
	}
	testutil.Must(t, via.CopyFiles(ctx, id, agentlauncher.ConfigDir, want.Files))
	if k, err := via.InspectContainer(ctx, s.Container); err != nil || k.ID != id || !k.HostPID {
		t.Errorf("inspect the agent container: %+v, %v", k, err)
	}

	// what it does not
	body, query := createRequest(t, want.Spec)
	for _, tc := range []struct {
		what   string
		change func(req map[string]any, q url.Values)
	}{
		{"another image", func(r map[string]any, _ url.Values) { r["Image"] = "docker.io/library/busybox:latest" }},
		{"another name", func(_ map[string]any, q url.Values) { q.Set("name", prefix+"-other") }},
		{"another command", func(r map[string]any, _ url.Values) { r["Cmd"] = []string{"-config", "/tmp/evil.conf"} }},
		{"an entrypoint", func(r map[string]any, _ url.Values) { r["Entrypoint"] = []string{"/bin/sh"} }},
		{"privileged", func(r map[string]any, _ url.Values) { hostConfig(r)["Privileged"] = true }},
		{"a capability", func(r map[string]any, _ url.Values) { hostConfig(r)["CapAdd"] = []string{"CAP_SYS_ADMIN"} }},
		{"a device", func(r map[string]any, _ url.Values) {
			hostConfig(r)["Devices"] = []map[string]string{{"PathOnHost": "/dev/mem", "PathInContainer": "/dev/mem", "CgroupPermissions": "rwm"}}
		}},
		{"the Engine's socket bound", func(r map[string]any, _ url.Values) {
			hostConfig(r)["Mounts"] = append(hostConfig(r)["Mounts"].([]any), map[string]any{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"})
		}},
		{"the node's root bound", func(r map[string]any, _ url.Values) {
			hostConfig(r)["Mounts"] = append(hostConfig(r)["Mounts"].([]any), map[string]any{"Type": "bind", "Source": "/", "Target": "/host", "ReadOnly": true})
		}},
		{"the node's root bound the old way", func(r map[string]any, _ url.Values) { hostConfig(r)["Binds"] = []string{"/:/host"} }},
		{"an allowed bind made writable", func(r map[string]any, _ url.Values) {
			for _, m := range hostConfig(r)["Mounts"].([]any) {
				if m.(map[string]any)["Type"] == "bind" {
					delete(m.(map[string]any), "ReadOnly")
				}
			}
		}},
		{"a bind propagated", func(r map[string]any, _ url.Values) {
			for _, m := range hostConfig(r)["Mounts"].([]any) {
				if m.(map[string]any)["Type"] == "bind" {
					m.(map[string]any)["BindOptions"] = map[string]any{"Propagation": "rshared"}
				}
			}
		}},
		{"the network namespace of another container", func(r map[string]any, _ url.Values) { hostConfig(r)["NetworkMode"] = "container:" + prefix + "-victim" }},
		{"a field the proxy does not know", func(r map[string]any, _ url.Values) { r["SomethingNew"] = true }},
	} {
		t.Run("refused create: "+tc.what, func(t *testing.T) {
			var req map[string]any
			testutil.Must(t, json.Unmarshal(body, &req))
			q := url.Values{}
			for k, v := range query {
				q[k] = v
			}
			tc.change(req, q)
			b, err := json.Marshal(req)
			testutil.Must(t, err)
			status, answer := rawBody(t, sock, "POST", "/v1.41/containers/create?"+q.Encode(), "application/json", b)
			if status != http.StatusForbidden || !strings.Contains(answer, "socket proxy (policy agent-launcher) refuses POST") {
				t.Errorf("HTTP %d %s; want the proxy's refusal", status, answer)
			}
			if k, err := direct.InspectContainer(ctx, q.Get("name")); q.Get("name") != s.Container && !docker.IsNotFound(err) {
				t.Errorf("the refused container reached the Engine: %+v %v", k, err)
			}
			t.Logf("%s", answer)
		})
	}
	victim, err := direct.CreateContainer(ctx, docker.ContainerSpec{Name: prefix + "-victim", Image: s.Image, Network: "none"})
	testutil.Must(t, err)
	refused("start another container", via.StartContainer(ctx, victim), "POST /v")
	refused("remove another container by ID", via.ForceRemoveContainer(ctx, victim), "DELETE /v")
	refused("remove another container by name", via.ForceRemoveContainer(ctx, prefix+"-victim"), "DELETE /v")
	refused("copy files into another container", via.CopyFiles(ctx, victim, agentlauncher.ConfigDir, want.Files), "PUT /v")
	refused("replace the agent's binary", via.CopyFiles(ctx, id, "/opt/spire/bin", []docker.File{{Name: "spire-agent", Mode: 0o755, Data: []byte("#!/bin/sh\n")}}), "PUT /v")
	refused("kill the agent (the launcher stops it)", via.KillContainer(ctx, id), "POST /v")
	_, err = via.Services(ctx, "")
	refused("list services", err, "GET /v")
	_, err = via.Secrets(ctx, "")
	refused("list secrets", err, "GET /v")
	_, err = via.Containers(ctx, "")
	refused("list containers", err, "GET /v")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1.41/containers/" + id + "/exec", `{"Cmd":["/bin/sh"]}`},
		{"GET", "/v1.41/events", ""},
		{"GET", "/v1.41/events?filters=" + url.QueryEscape(`{"type":{"container":true}}`), ""},
		{"POST", "/v1.41/volumes/create", `{"Name":"` + s.DataVolume + `-2","Driver":"local","Labels":{"` + docker.NamespaceLabel + `":"` + prefix + `"}}`},
		{"POST", "/v1.41/volumes/create", `{"Name":"` + s.DataVolume + `","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"},"Labels":{"` + docker.NamespaceLabel + `":"` + prefix + `"}}`},
		{"POST", "/v1.41/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest", ""},
		{"POST", "/v1.41/images/create?fromSrc=http%3A%2F%2F127.0.0.1%2Fx.tar&repo=" + url.QueryEscape(s.Image), ""},
	} {
		status, answer := rawBody(t, sock, c.method, c.path, "application/json", []byte(c.body))
		if status != http.StatusForbidden || !strings.Contains(answer, "socket proxy (policy agent-launcher) refuses") {
			t.Errorf("%s %s: HTTP %d %s; want the proxy's refusal", c.method, c.path, status, answer)
		}
	}
	if _, err := direct.InspectContainer(ctx, victim); err != nil {
		t.Errorf("the container the proxy refused to remove: %v", err)
	}
	for what, h := range map[string]tar.Header{
		"a link in the agent's files": {Name: "etc/spire/agent/agent.conf", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow", Mode: 0o777},
		"a file with a capability":    {Name: "etc/spire/agent/x", Typeflag: tar.TypeReg, Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "x"}},
		"a file outside them":         {Name: "etc/spire/agent/../../../opt/spire/bin/spire-agent", Typeflag: tar.TypeReg, Mode: 0o755},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		testutil.Must(t, tw.WriteHeader(&h))
		testutil.Must(t, tw.Close())
		status, answer := rawBody(t, sock, "PUT", "/v1.41/containers/"+id+"/archive?path=%2F", "application/x-tar", b.Bytes())
		if status != http.StatusForbidden || !strings.Contains(answer, "socket proxy (policy agent-launcher) refuses PUT") {
			t.Errorf("copy %s into the agent: HTTP %d %s; want the proxy's refusal", what, status, answer)
		}
	}

	// and the launcher's stop and removal of its agent, which its event stream sees
	testutil.Must(t, via.StopContainer(ctx, id, time.Second))
	testutil.Must(t, via.ForceRemoveContainer(ctx, id))
	select {
	case ev := <-events:
		if ev.Action != "destroy" || ev.ID != id {
			t.Errorf("event %s; want the agent's destroy", ev)
		}
	case err := <-errs:
		t.Errorf("the agent's events through the proxy: %v", err)
	case <-ctx.Done():
		t.Error("no destroy event of the agent through the proxy")
	}
}

func hostConfig(req map[string]any) map[string]any { return req["HostConfig"].(map[string]any) }

// createRequest is what the Docker client sends to create spec: its body and query, recorded by a fake Engine.
func createRequest(t *testing.T, spec docker.ContainerSpec) ([]byte, url.Values) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "rec.sock")
	l, err := net.Listen("unix", sock)
	testutil.Must(t, err)
	var body []byte
	var query url.Values
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		if strings.HasSuffix(r.URL.Path, "/containers/create") {
			body, _ = io.ReadAll(r.Body)
			query = r.URL.Query()
			fmt.Fprint(w, `{"Id":"recorded"}`)
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	c, err := docker.New(sockproxy.UnixURL(sock), nil)
	testutil.Must(t, err)
	defer c.Close()
	_, err = c.CreateContainer(context.Background(), spec)
	testutil.Must(t, err)
	return body, query
}

// rawBody sends one request with body (of contentType) and exactly path p to the socket and returns the answer.
func rawBody(t *testing.T, sock, method, p, contentType string, body []byte) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	testutil.Must(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n", method, p)
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n", contentType, len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	_, err = c.Write(b.Bytes())
	testutil.Must(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if errors.Is(err, io.EOF) {
		return 0, "connection closed"
	}
	testutil.Must(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
