package spireca

import (
	"context"
	"errors"

	"github.com/ziti-bootstrap/ziti-bootstrap/internal/ziti"
)

// CAStoreFunc is a CAStore for a client that exists only once an earlier step has run (internal/app's
// Systems.Ziti is logged in by the "ziti/reachable" step): every call asks the function for the client. The
// function must return a nil interface (not a nil *ziti.Client) while there is none; calls then fail with
// errNoClient.
type CAStoreFunc func() CAStore

var errNoClient = errors.New("no OpenZiti client: the ziti/reachable step has not run")

func (f CAStoreFunc) get() (CAStore, error) {
	if c := f(); c != nil {
		return c, nil
	}
	return nil, errNoClient
}

func (f CAStoreFunc) ListCAs(ctx context.Context, filter string) ([]ziti.CA, error) {
	c, err := f.get()
	if err != nil {
		return nil, err
	}
	return c.ListCAs(ctx, filter)
}

func (f CAStoreFunc) GetCA(ctx context.Context, id string) (ziti.CA, error) {
	c, err := f.get()
	if err != nil {
		return ziti.CA{}, err
	}
	return c.GetCA(ctx, id)
}

func (f CAStoreFunc) CreateCA(ctx context.Context, ca ziti.CA) (string, error) {
	c, err := f.get()
	if err != nil {
		return "", err
	}
	return c.CreateCA(ctx, ca)
}

func (f CAStoreFunc) UpdateCA(ctx context.Context, id string, ca ziti.CA) error {
	c, err := f.get()
	if err != nil {
		return err
	}
	return c.UpdateCA(ctx, id, ca)
}

func (f CAStoreFunc) VerifyCA(ctx context.Context, id, certPEM string) error {
	c, err := f.get()
	if err != nil {
		return err
	}
	return c.VerifyCA(ctx, id, certPEM)
}

func (f CAStoreFunc) DeleteCA(ctx context.Context, id string) error {
	c, err := f.get()
	if err != nil {
		return err
	}
	return c.DeleteCA(ctx, id)
}
