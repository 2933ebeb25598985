package backup_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/s3store"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/testbed"
)

// BenchmarkStream1GiB streams a 1 GiB snapshot file to the test bed's S3 server three ways, each in a fresh
// process so that its peak RSS (VmHWM) is its own:
//
//	raw:    s3store.Put of the file's bytes as they are (the same multipart uploader, nothing else)
//	minio:  minio-go's PutObject of the file with its size known (its own parallel multipart upload)
//	backup: a whole backup set of the file: zstd, AES-256-GCM, SHA-256 of both forms, started marker, manifest
//
// and reports backup's throughput (snapshot bytes per second) as a ratio to raw's and to minio's, and each one's
// peak RSS. Target: ratio ≥ 0.9, backup RSS ≤ 64 MiB. Sub-benchmarks: a database-like file (about 2:1
// compressible) and an incompressible one. Run with:
//
//	go test -run '^$' -bench Stream1GiB -benchtime 1x ./backup/
func BenchmarkStream1GiB(b *testing.B) {
	in := testbed.Require(b, "s3")
	for _, kind := range []string{"dblike", "random"} {
		b.Run(kind, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "snapshot.db")
			if err := writeSnapshotFile(path, 1<<30, kind); err != nil {
				b.Fatal(err)
			}
			_, c := s3Bucket(b)
			b.ResetTimer()
			var sum = map[string]*benchResult{}
			var pairRaw, pairMinio []float64 // backup's rate over the other's, per iteration: robust to a server whose speed drifts
			for range b.N {
				rates := map[string]float64{}
				for _, mode := range []string{"raw", "backup", "minio"} {
					r := runStreamChild(b, in, c.Bucket(), path, mode)
					rates[mode] = float64(r.Bytes) / r.Seconds
					if sum[mode] == nil {
						sum[mode] = &benchResult{}
					}
					sum[mode].Seconds += r.Seconds
					sum[mode].Bytes += r.Bytes
					sum[mode].StoredBytes += r.StoredBytes
					sum[mode].PeakRSS = max(sum[mode].PeakRSS, r.PeakRSS)
				}
				pairRaw = append(pairRaw, rates["backup"]/rates["raw"])
				pairMinio = append(pairMinio, rates["backup"]/rates["minio"])
			}
			b.StopTimer()
			rate := func(m string) float64 { return float64(sum[m].Bytes) / sum[m].Seconds / (1 << 20) }
			b.ReportMetric(rate("raw"), "raw-MiB/s")
			b.ReportMetric(rate("minio"), "minio-MiB/s")
			b.ReportMetric(rate("backup"), "backup-MiB/s")
			b.ReportMetric(rate("backup")/rate("raw"), "ratio-vs-raw")
			b.ReportMetric(rate("backup")/rate("minio"), "ratio-vs-minio")
			b.ReportMetric(median(pairRaw), "median-ratio-vs-raw")
			b.ReportMetric(median(pairMinio), "median-ratio-vs-minio")
			b.Logf("per-iteration ratios vs raw %.2f, vs minio %.2f", pairRaw, pairMinio)
			b.ReportMetric(float64(sum["raw"].PeakRSS)/(1<<20), "raw-peakRSS-MiB")
			b.ReportMetric(float64(sum["minio"].PeakRSS)/(1<<20), "minio-peakRSS-MiB")
			b.ReportMetric(float64(sum["backup"].PeakRSS)/(1<<20), "backup-peakRSS-MiB")
			b.ReportMetric(float64(sum["backup"].StoredBytes)/float64(sum["backup"].Bytes), "stored/raw")
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type benchResult struct {
	Bytes       int64   `json:"bytes"`
	StoredBytes int64   `json:"storedBytes"`
	Seconds     float64 `json:"seconds"`
	PeakRSS     int64   `json:"peakRss"`
}

// writeSnapshotFile writes n bytes: "dblike" pages are half random, half repetitive (like database pages);
// "random" is incompressible.
func writeSnapshotFile(path string, n int64, kind string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	page := make([]byte, 4096)
	text := []byte(strings.Repeat("spiffe://zb.test/workload/ziti-router selector docker:label:app:router ", 64))
	for written := int64(0); written < n; written += int64(len(page)) {
		_, _ = rng.Read(page)
		if kind == "dblike" {
			off := int(written/4096) % 64
			copy(page[2048:], text[off:])
		}
		if _, err := w.Write(page); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// runStreamChild runs TestStreamChild in a new process of this test binary.
func runStreamChild(b *testing.B, in *testbed.Info, bucket, path, mode string) benchResult {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStreamChild$", "-test.v")
	cmd.Env = append(os.Environ(), "ZB_STREAM_CHILD="+mode, "ZB_STREAM_FILE="+path, "ZB_STREAM_BUCKET="+bucket)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%s child: %v\n%s", mode, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(strings.TrimSpace(line), "RESULT "); ok {
			var r benchResult
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				b.Fatal(err)
			}
			b.Logf("%-6s %.0f MiB in %.2fs = %.0f MiB/s, stored %.0f MiB, peak RSS %.1f MiB", mode, float64(r.Bytes)/(1<<20), r.Seconds,
				float64(r.Bytes)/r.Seconds/(1<<20), float64(r.StoredBytes)/(1<<20), float64(r.PeakRSS)/(1<<20))
			return r
		}
	}
	b.Fatalf("%s child printed no result:\n%s", mode, out)
	return benchResult{}
}

// fileSource is a snapshot already in a file (kept).
type fileSource struct{ path string }

func (f fileSource) Name() string { return "ziti" }
func (f fileSource) Snapshot(context.Context, string) (*backup.Snapshot, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	return backup.NewSnapshot("bbolt", "bench", fh, fh.Close), nil
}

// TestStreamChild is the benchmark's child process; it does nothing in a normal test run.
func TestStreamChild(t *testing.T) {
	mode := os.Getenv("ZB_STREAM_CHILD")
	if mode == "" {
		t.Skip("benchmark helper: run by BenchmarkStream1GiB")
	}
	in := testbed.Require(t, "s3")
	path, bucket := os.Getenv("ZB_STREAM_FILE"), os.Getenv("ZB_STREAM_BUCKET")
	u, _ := url.Parse(in.S3.Endpoint)
	// ZB_STREAM_PART_MIB and ZB_STREAM_CONCURRENCY tune the uploader (defaults: s3store's)
	partMiB, _ := strconv.Atoi(os.Getenv("ZB_STREAM_PART_MIB"))
	conc, _ := strconv.Atoi(os.Getenv("ZB_STREAM_CONCURRENCY"))
	c, err := s3store.New(s3store.Options{Endpoint: u, Region: in.S3.Region, Bucket: bucket, AccessKey: in.S3.AccessKey,
		SecretKey: redact.NewSecret(in.S3.SecretKey), PartSize: int64(partMiB) << 20, Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.EnsureBucket(ctx); err != nil { // the benchmark made it; a profiling run by hand may not have
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var stored int64
	start := time.Now()
	switch mode {
	case "raw":
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o, err := c.Put(ctx, "raw/snapshot.db", f)
		if err != nil {
			t.Fatal(err)
		}
		stored = o.Size
	case "minio":
		api, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(in.S3.AccessKey, in.S3.SecretKey, ""), Region: in.S3.Region, BucketLookup: minio.BucketLookupPath})
		if err != nil {
			t.Fatal(err)
		}
		info, err := api.FPutObject(ctx, bucket, "minio/snapshot.db", path, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stored = info.Size
	case "backup":
		m, err := (&backup.Backup{Store: backup.NewS3Store(c), Prefix: "bench", Sources: []backup.Source{fileSource{path}},
			Key: newKey(t), TempDir: t.TempDir()}).Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored = m.Size()
	}
	secs := time.Since(start).Seconds()
	// clean up before the next child, outside the measurement
	objs, _ := c.List(ctx, "")
	for _, o := range objs {
		_ = c.Remove(ctx, o.Key)
	}
	r, _ := json.Marshal(benchResult{Bytes: st.Size(), StoredBytes: stored, Seconds: secs, PeakRSS: vmHWM(t)})
	fmt.Println("RESULT " + string(r))
}

// vmHWM is this process's peak resident set size.
func vmHWM(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
