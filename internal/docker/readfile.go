package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
)

// ConfigData reads the data of the config named or identified by nameOrID (configs hold no secrets; a missing
// config satisfies IsNotFound).
func (c *Client) ConfigData(ctx context.Context, nameOrID string) ([]byte, error) {
	cfg, _, err := c.api.ConfigInspectWithRaw(ctx, nameOrID)
	if err != nil {
		return nil, fmt.Errorf("inspect config %s: %w", nameOrID, err)
	}
	return cfg.Spec.Data, nil
}

// ReadContainerFile reads the regular file at path in container id of this node (as `docker cp` out of it does:
// a GET, so it writes nothing), refusing one larger than limit bytes.
func (c *Client) ReadContainerFile(ctx context.Context, id, file string, limit int64) ([]byte, error) {
	what := fmt.Sprintf("read %s in container %s", file, ShortID(id))
	rc, _, err := c.api.CopyFromContainer(ctx, id, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if h.Typeflag != tar.TypeReg || h.Name != path.Base(file) {
		return nil, fmt.Errorf("%s: not a regular file", what)
	}
	if h.Size > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d expected", what, h.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(tr, limit))
	if err == nil && int64(len(data)) != h.Size {
		err = errors.New("short read")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return data, nil
}
