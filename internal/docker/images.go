package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"
)

// ImageID returns the ID of image ref on this engine's node; an image the node does not have satisfies
// IsNotFound.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return img.ID, nil
}

// Pullable asks ref's registry, through the engine, whether ref can be pulled (the manifest, not the image: a read).
func (c *Client) Pullable(ctx context.Context, ref string) error {
	if _, err := c.api.DistributionInspect(ctx, ref, ""); err != nil {
		return fmt.Errorf("look up image %s in its registry: %w", ref, err)
	}
	return nil
}

// PullImage pulls ref from its registry (anonymously) and returns once the pull has ended.
func (c *Client) PullImage(ctx context.Context, ref string) error {
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	defer rc.Close()
	// The engine reports a failed pull in the progress stream, not in the status code.
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("pull image %s: %w", ref, err)
		}
		if m.Error != "" {
			return fmt.Errorf("pull image %s: %s", ref, m.Error)
		}
	}
}

// InspectVolume returns a volume of this engine's node; a missing one satisfies IsNotFound.
func (c *Client) InspectVolume(ctx context.Context, name string) (Volume, error) {
	v, err := c.api.VolumeInspect(ctx, name)
	if err != nil {
		return Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	return Volume{Name: v.Name, Driver: v.Driver, Labels: v.Labels, Mountpoint: v.Mountpoint}, nil
}

// CreateVolume creates a local volume on this engine's node.
func (c *Client) CreateVolume(ctx context.Context, name string, labels map[string]string) error {
	if _, err := c.api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: "local", Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}
