package testbed

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// LocalImageFilter is the reference filter of the images LoadLocalImages copies into every node: zb-local/*, or
// $ZB_TESTBED_IMAGES (e.g. the images of another ZB_IMAGE_PREFIX of scripts/images.sh).
func LocalImageFilter() string {
	return cmp.Or(os.Getenv("ZB_TESTBED_IMAGES"), "zb-local/*")
}

// imageIDs returns tag → image ID of the images of the engine at host.
func imageIDs(ctx context.Context, host string) (map[string]string, error) {
	out, err := run(ctx, nil, "docker", "--host", host, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && !strings.Contains(f[0], "<none>") {
			ids[f[0]] = f[1]
		}
	}
	return ids, nil
}

// LoadLocalImages copies the newest tag of every local image repository (LocalImageFilter) into the nodes that lack
// it, so services are created without registry look-ups. Older tags (tool images of earlier builds) are left out:
// each costs its full size on every node (vfs). An image counts as present on a node when its tag there names
// the same image ID. Load other images with LoadImages.
func (b *SwarmBed) LoadLocalImages(ctx context.Context, log io.Writer) error {
	refs, err := newestTags(ctx, LocalImageFilter())
	if err != nil {
		return err
	}
	return b.LoadImages(ctx, log, refs...)
}

// newestTags returns the newest tag of each repository matching filter on the host's engine.
func newestTags(ctx context.Context, filter string) ([]string, error) {
	// docker images lists the newest first
	out, err := run(ctx, nil, "docker", "images", "--format", "{{.Repository}} {{.Tag}}", "--filter", "reference="+filter)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var refs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[1] == "<none>" || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		refs = append(refs, f[0]+":"+f[1])
	}
	return refs, nil
}

// LoadImages copies the host's images refs into the nodes that lack them (same tag, same image ID): one
// `docker save` of everything missing anywhere, streamed into a `docker load` on each node that misses something
// (a load skips the layers a node has).
func (b *SwarmBed) LoadImages(ctx context.Context, log io.Writer, refs ...string) error {
	want := map[string]string{}
	for _, r := range refs {
		id, err := run(ctx, nil, "docker", "image", "inspect", "-f", "{{.Id}}", r)
		if err != nil {
			return err
		}
		want[r] = strings.TrimSpace(id)
	}
	var targets []SwarmNode
	missing := map[string]bool{}
	for _, n := range b.Nodes {
		have, err := imageIDs(ctx, n.DockerHost)
		if err != nil {
			return err
		}
		lacks := false
		for r, id := range want {
			if have[r] != id {
				missing[r], lacks = true, true
			}
		}
		if lacks {
			targets = append(targets, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	list := make([]string, 0, len(missing))
	for r := range missing {
		list = append(list, r)
	}
	slices.Sort(list)
	t0 := time.Now()
	if err := saveInto(ctx, list, targets); err != nil {
		return err
	}
	var names []string
	for _, n := range targets {
		names = append(names, n.Hostname)
	}
	fmt.Fprintf(log, "[testbed] %s: loaded %s into %s in %.1fs\n", b.Name, strings.Join(list, " "), strings.Join(names, " "), time.Since(t0).Seconds())
	return nil
}

// saveInto streams one `docker save refs` into `docker load` on every node of targets at once.
func saveInto(ctx context.Context, refs []string, targets []SwarmNode) error {
	save := exec.CommandContext(ctx, "docker", append([]string{"save"}, refs...)...)
	var saveErr strings.Builder
	save.Stderr = &saveErr
	var writers []io.Writer
	var loads []*exec.Cmd
	var outs []*strings.Builder
	for _, n := range targets {
		load := exec.CommandContext(ctx, "docker", "--host", n.DockerHost, "load", "-q")
		w, err := load.StdinPipe()
		if err != nil {
			return err
		}
		out := &strings.Builder{}
		load.Stdout, load.Stderr = out, out
		if err := load.Start(); err != nil {
			return fmt.Errorf("docker load on %s: %w", n.Hostname, err)
		}
		writers = append(writers, w)
		loads = append(loads, load)
		outs = append(outs, out)
	}
	save.Stdout = io.MultiWriter(writers...)
	saveRunErr := save.Run()
	for _, w := range writers {
		w.(io.Closer).Close()
	}
	var errs []string
	if saveRunErr != nil {
		errs = append(errs, fmt.Sprintf("docker save: %v: %s", saveRunErr, strings.TrimSpace(saveErr.String())))
	}
	var wg sync.WaitGroup
	loadErrs := make([]error, len(loads))
	for i, l := range loads {
		wg.Go(func() { loadErrs[i] = l.Wait() })
	}
	wg.Wait()
	for i, err := range loadErrs {
		if err != nil {
			errs = append(errs, fmt.Sprintf("docker load on %s: %v: %s", targets[i].Hostname, err, strings.TrimSpace(outs[i].String())))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("load images %s: %s", strings.Join(refs, " "), strings.Join(errs, "; "))
	}
	return nil
}
