package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup/backuptest"
	"github.com/ziti-bootstrap/ziti-bootstrap/internal/redact"
)

// fakeSource yields data; closeErr is the producer's verdict after it (like pg_dump's exit status).
type fakeSource struct {
	name, format string
	data         []byte
	closeErr     error
	failAfter    int // >0: the reader fails after that many bytes
}

func (f *fakeSource) Name() string { return f.name }

func (f *fakeSource) Snapshot(context.Context, string) (*backup.Snapshot, error) {
	var r io.Reader = bytes.NewReader(f.data)
	if f.failAfter > 0 {
		r = io.MultiReader(io.LimitReader(r, int64(f.failAfter)), errReader{errors.New("disk on fire")})
	}
	return backup.NewSnapshot(f.format, f.name+" 1.0", r, func() error { return f.closeErr }), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// fakeTarget records what it was given.
type fakeTarget struct {
	source   string
	checked  int
	restored []byte
}

func (f *fakeTarget) Source() string { return f.source }
func (f *fakeTarget) String() string { return "fake " + f.source }
func (f *fakeTarget) Check(context.Context, string) error {
	f.checked++
	return nil
}
func (f *fakeTarget) Restore(_ context.Context, path, _ string) error {
	b, err := os.ReadFile(path)
	f.restored = b
	return err
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	// half compressible, like a database
	for i := 0; i < n/2; i++ {
		b[i] = byte(i % 7)
	}
	return b
}

func newKey(t *testing.T) *backup.Key {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k, err := backup.ParseKey(redact.NewSecret(base64.StdEncoding.EncodeToString(b)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type world struct {
	store   *backuptest.MemStore
	s       backup.Store // when set, the store instead of store (attack_test.go)
	last    time.Time    // when its last run started, to the second
	sources []backup.Source
	data    map[string][]byte
	key     *backup.Key
	targets map[string]*fakeTarget
}

func newWorld(t *testing.T, encrypted bool) *world {
	w := &world{store: backuptest.NewMemStore(), data: map[string][]byte{}, targets: map[string]*fakeTarget{}}
	if encrypted {
		w.key = newKey(t)
	}
	for _, s := range []struct {
		name, format string
		n            int
	}{{"ziti", "bbolt", 300 << 10}, {"spire", "sqlite3", 70 << 10}, {"keycloak", "pg_dump-custom", 1}} {
		w.data[s.name] = random(s.n)
		w.sources = append(w.sources, &fakeSource{name: s.name, format: s.format, data: w.data[s.name]})
		w.targets[s.name] = &fakeTarget{source: s.name}
	}
	return w
}

func (w *world) backup(t *testing.T) *backup.Manifest {
	t.Helper()
	m, err := (&backup.Backup{Store: w.store, Prefix: "bk", Sources: w.sources, Key: w.key, TempDir: t.TempDir(), Tool: "test"}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) restore(t *testing.T) *backup.Restore {
	return &backup.Restore{Store: w.store, Prefix: "bk/", Key: w.key, TempDir: t.TempDir(), AllowUnauthenticated: w.key == nil,
		Targets: []backup.Target{w.targets["keycloak"], w.targets["spire"], w.targets["ziti"]}}
}

func TestRoundTrip(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			w := newWorld(t, encrypted)
			m := w.backup(t)
			if len(m.Objects) != 3 || m.Objects[0].Source != "ziti" || (m.Encryption != nil) != encrypted {
				t.Fatalf("manifest: %+v", m)
			}
			keys := strings.Join(w.store.Keys(), " ")
			for _, o := range m.Objects {
				if o.RawSize != int64(len(w.data[o.Source])) || o.ServerVersion != o.Source+" 1.0" {
					t.Errorf("%s: %+v", o.Source, o)
				}
				if !strings.Contains(keys, "bk/"+m.Set+"/"+o.Key) {
					t.Errorf("object %s not stored (%s)", o.Key, keys)
				}
				if encrypted != strings.HasSuffix(o.Key, ".enc") {
					t.Errorf("object key %s", o.Key)
				}
			}
			sets, err := (&backup.Lister{Store: w.store, Prefix: "bk", Key: w.key}).List(context.Background(), time.Now())
			if err != nil || len(sets) != 1 || sets[0].State != backup.Complete || sets[0].ID != m.Set {
				t.Fatalf("list: %+v %v", sets, err)
			}
			p, err := w.restore(t).Prepare(context.Background(), backup.Latest, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if plan := p.Plan(); len(plan) != 3 || !strings.HasPrefix(plan[0], "keycloak: restore keycloak.pgdump") || !strings.HasPrefix(plan[2], "ziti: restore ziti.bbolt.zst") {
				t.Fatalf("plan: %q", plan)
			}
			done, err := p.Apply(context.Background())
			if err != nil || strings.Join(done, ",") != "keycloak,spire,ziti" {
				t.Fatalf("apply: %v %v", done, err)
			}
			for name, tg := range w.targets {
				if !bytes.Equal(tg.restored, w.data[name]) {
					t.Errorf("%s restored %d bytes, not the %d backed up", name, len(tg.restored), len(w.data[name]))
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p.Dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("staging %s left behind", p.Dir)
			}
		})
	}
}

func TestRestoreOnly(t *testing.T) {
	w := newWorld(t, false)
	w.backup(t)
	p, err := w.restore(t).Prepare(context.Background(), backup.Latest, []string{"spire"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.targets["ziti"].restored != nil || w.targets["spire"].restored == nil {
		t.Fatal("restoring only spire restored something else")
	}
	r := w.restore(t)
	r.Targets = r.Targets[:1] // keycloak only
	if _, err := r.Prepare(context.Background(), backup.Latest, []string{"ziti"}); err == nil || !strings.Contains(err.Error(), "no restore target") {
		t.Fatalf("restoring a source without a target: %v", err)
	}
	if _, err := r.Prepare(context.Background(), backup.Latest, []string{"vault"}); err == nil || !strings.Contains(err.Error(), "holds no vault snapshot") {
		t.Fatalf("restoring a source the set lacks: %v", err)
	}
}

// A corrupt, truncated, missing or incomplete set is refused, naming the object, and no target is touched.
func TestRestoreRefusesDamage(t *testing.T) {
	type edit func(w *world, m *backup.Manifest) (name string)
	obj := func(m *backup.Manifest, src string) string {
		o, _ := m.Object(src)
		return "bk/" + m.Set + "/" + o.Key
	}
	cases := map[string]struct {
		encrypted  bool
		edit       edit
		want       string
		passedOver bool // by latest: listing sees the set is not valid
	}{
		"flipped byte": {edit: func(w *world, m *backup.Manifest) string {
			k := obj(m, "spire")
			w.store.Edit(k, func(b []byte) []byte { b[len(b)/3] ^= 0x20; return b })
			return k
		}, want: "SHA-256"},
		"flipped byte encrypted": {encrypted: true, edit: func(w *world, m *backup.Manifest) string {
			k := obj(m, "ziti")
			w.store.Edit(k, func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b })
			return k
		}, want: "SHA-256"},
		"truncated": {edit: func(w *world, m *backup.Manifest) string {
			k := obj(m, "ziti")
			w.store.Edit(k, func(b []byte) []byte { return b[:len(b)-1000] })
			return k
		}, want: "truncated", passedOver: true},
		"missing object": {edit: func(w *world, m *backup.Manifest) string {
			k := obj(m, "keycloak")
			_ = w.store.Remove(context.Background(), k)
			return k
		}, want: "missing", passedOver: true},
		"no manifest": {edit: func(w *world, m *backup.Manifest) string {
			k := "bk/" + m.Set + "/manifest.json"
			_ = w.store.Remove(context.Background(), k)
			return k
		}, want: "incomplete", passedOver: true},
		"manifest altered (encrypted sets are authenticated)": {encrypted: true, edit: func(w *world, m *backup.Manifest) string {
			k := "bk/" + m.Set + "/manifest.json"
			w.store.Edit(k, func(b []byte) []byte { return bytes.Replace(b, []byte(`"spire 1.0`), []byte(`"spire 6.6`), 1) })
			return k
		}, want: "MAC", passedOver: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, c.encrypted)
			m := w.backup(t)
			key := c.edit(w, m)
			for _, set := range []string{m.Set, backup.Latest} {
				_, err := w.restore(t).Prepare(context.Background(), set, nil)
				if set == backup.Latest && c.passedOver {
					// latest is the newest valid set: listing already sees this one is not (TestLatestIsTheNewestValidSet)
					if err == nil || !strings.Contains(err.Error(), "no valid set") {
						t.Fatalf("latest with a %s: %v; want no valid set", name, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("a set with a %s was accepted", name)
				}
				if !backup.IsCorrupt(err) || !strings.Contains(err.Error(), "mem://"+key) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("error %q: want a refusal naming mem://%s and %q", err, key, c.want)
				}
			}
			for src, tg := range w.targets {
				if tg.checked != 0 || tg.restored != nil {
					t.Fatalf("target %s touched although the set was refused", src)
				}
			}
		})
	}
}

func TestLatestSkipsIncompleteSets(t *testing.T) {
	w := newWorld(t, false)
	first := w.backup(t)
	second := w.backup(t)
	_ = w.store.Remove(context.Background(), "bk/"+second.Set+"/manifest.json")
	m, err := w.restore(t).Resolve(context.Background(), backup.Latest)
	if err != nil || m.Set != first.Set {
		t.Fatalf("latest = %v, %v; want the complete %s", m, err, first.Set)
	}
}

func TestKeyMismatchIsRefusedBeforeDownloading(t *testing.T) {
	w := newWorld(t, true)
	m := w.backup(t)
	for name, key := range map[string]*backup.Key{"no key": nil, "another key": newKey(t)} {
		r := w.restore(t)
		r.Key = key
		_, err := r.Prepare(context.Background(), m.Set, nil)
		var ke *backup.KeyError
		if !errors.As(err, &ke) || ke.Want != w.key.ID() || !strings.Contains(err.Error(), "BACKUP_ENCRYPTION_KEY") {
			t.Fatalf("%s: %v; want a KeyError naming key %s", name, err, w.key.ID())
		}
	}
}

// A source that fails — while reading, or in its verdict after the last byte (pg_dump's exit status) — leaves
// no complete set, and its objects are removed.
func TestFailedSourceLeavesNoCompleteSet(t *testing.T) {
	for name, src := range map[string]*fakeSource{
		"read error":   {name: "spire", format: "sqlite3", data: random(200 << 10), failAfter: 100 << 10},
		"exit status":  {name: "keycloak", format: "pg_dump-custom", data: random(10 << 10), closeErr: errors.New("pg_dump: exit status 1")},
		"empty source": {name: "keycloak", format: "pg_dump-custom", closeErr: errors.New("pg_dump: connection refused")},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, false)
			for i, s := range w.sources {
				if s.Name() == src.name {
					w.sources[i] = src
				}
			}
			_, err := (&backup.Backup{Store: w.store, Prefix: "bk", Sources: w.sources, TempDir: t.TempDir()}).Run(context.Background())
			var se *backup.SetError
			if !errors.As(err, &se) || se.Source != src.name {
				t.Fatalf("Run: %v; want a SetError naming %s", err, src.name)
			}
			if keys := w.store.Keys(); len(keys) != 0 {
				t.Fatalf("a failed run left %v", keys)
			}
		})
	}
}

func TestListStates(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	w := newWorld(t, false)
	clock := now.Add(-48 * time.Hour)
	w.store.Now = func() time.Time { return clock }
	run := func(at time.Time) *backup.Manifest {
		clock = at
		m, err := (&backup.Backup{Store: w.store, Prefix: "bk", Sources: w.sources, TempDir: t.TempDir(),
			Now: func() time.Time { return at }}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	complete := run(now.Add(-48 * time.Hour))
	damaged := run(now.Add(-30 * time.Hour))
	abandoned := run(now.Add(-20 * time.Hour))
	running := run(now.Add(-time.Hour))
	_ = w.store.Remove(context.Background(), "bk/"+damaged.Set+"/"+damaged.Objects[1].Key)
	_ = w.store.Remove(context.Background(), "bk/"+abandoned.Set+"/manifest.json")
	_ = w.store.Remove(context.Background(), "bk/"+running.Set+"/manifest.json")
	_, _ = w.store.Put(context.Background(), "bk/not-a-set/x", strings.NewReader("not ours"))
	sets, err := (&backup.Lister{Store: w.store, Prefix: "bk/", Grace: 6 * time.Hour}).List(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]backup.SetState{}
	for _, s := range sets {
		got[s.ID] = s.State
		if s.Size == 0 || s.Started.IsZero() {
			t.Errorf("%s: %+v", s.ID, s)
		}
	}
	want := map[string]backup.SetState{complete.Set: backup.Complete, damaged.Set: backup.Damaged,
		abandoned.Set: backup.Incomplete, running.Set: backup.InProgress}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	for _, s := range sets {
		if s.State == backup.Damaged && !strings.Contains(s.Problem, damaged.Objects[1].Key+" is missing") {
			t.Errorf("damaged set's problem: %q", s.Problem)
		}
	}
	if s, ok := backup.NewestComplete(sets); !ok || s.ID != complete.Set {
		t.Fatalf("newest complete: %v", s.ID)
	}
}

func TestObjectsAreCompressed(t *testing.T) {
	w := newWorld(t, true)
	w.sources = []backup.Source{&fakeSource{name: "spire", format: "sqlite3", data: bytes.Repeat([]byte("entry "), 100000)}}
	m := w.backup(t)
	if o := m.Objects[0]; o.Size*20 > o.RawSize {
		t.Fatalf("%d bytes stored for %d raw: not compressed", o.Size, o.RawSize)
	}
	// and the temporary directory holds nothing afterwards
	if entries, _ := filepath.Glob(filepath.Join(os.TempDir(), "zb-restore-"+m.Set+"*")); len(entries) > 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// A snapshot that does not compress (already compressed or encrypted data) is stored as it is: no time spent on
// zstd, an object key without .zst, Compression "none" in the manifest, and it restores byte for byte.
func TestIncompressibleSnapshotStoredAsIs(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			w := newWorld(t, encrypted)
			noise := make([]byte, 600<<10)
			_, _ = rand.Read(noise)
			w.data["ziti"] = noise
			w.sources[0] = &fakeSource{name: "ziti", format: "bbolt", data: noise}
			m := w.backup(t)
			o, _ := m.Object("ziti")
			want := "ziti.bbolt"
			if encrypted {
				want += ".enc"
			}
			if o.Key != want || o.Compression != backup.NoCompression || o.Size < o.RawSize || o.Size > o.RawSize+o.RawSize/50 {
				t.Fatalf("object %+v; want key %s, compression none, stored size about the raw size", o, want)
			}
			if s, _ := m.Object("spire"); s.Compression != "" || !strings.Contains(s.Key, ".zst") {
				t.Errorf("the compressible snapshot: %+v", s)
			}
			p, err := w.restore(t).Prepare(context.Background(), m.Set, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if _, err := p.Apply(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.targets["ziti"].restored, noise) {
				t.Fatalf("restored %d bytes, not the %d backed up", len(w.targets["ziti"].restored), len(noise))
			}
		})
	}
}
