package testbed

import (
	"context"
	"time"
)

// StartS3 runs SeaweedFS (`weed mini`) with its S3 gateway on 127.0.0.1:8333 and credentials from the environment.
func StartS3(ctx context.Context, dir string) (S3Info, error) {
	bins, data, err := prepare(dir, "s3", "weed", "SEAWEEDFS_VERSION", "weed")
	if err != nil {
		return S3Info{}, err
	}
	bin := bins[0]
	in := S3Info{Endpoint: "http://127.0.0.1:8333", Region: "us-east-1", AccessKey: "zbtestbed", SecretKey: password()}
	p, err := start("seaweedfs", dir, bin, []string{"AWS_ACCESS_KEY_ID=" + in.AccessKey, "AWS_SECRET_ACCESS_KEY=" + in.SecretKey},
		"mini", "-dir", data, "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1")
	if err != nil {
		return in, err
	}
	in.PID = p.pid
	err = p.healthy(ctx, in.Endpoint, 2*time.Minute, func(ctx context.Context) error {
		return httpOK(ctx, in.Endpoint+"/healthz")
	})
	return in, err
}
