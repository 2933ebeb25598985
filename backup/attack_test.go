package backup_test

// An attacker with write access to the bucket (issue 14): each attack is refused by verify, restore and retention,
// naming the set and the reason, with no file written outside the staging directory (nor left inside it). Every
// test runs on the in-memory store and, unless -short, on a bucket of the test bed's S3 server.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup/backuptest"
)

// stores runs f on the in-memory store and on the test bed's S3 server.
func stores(t *testing.T, f func(t *testing.T, s backup.Store)) {
	t.Run("mem", func(t *testing.T) { f(t, backuptest.NewMemStore()) })
	t.Run("s3", func(t *testing.T) {
		s, _ := s3Bucket(t)
		f(t, s)
	})
}

// attackWorld is a world on store s, whose backups are dated by the real clock.
func attackWorld(t *testing.T, s backup.Store, encrypted bool) *world {
	w := newWorld(t, encrypted)
	w.store = nil
	w.sources = w.sources[:2] // ziti, spire: enough, and quick on S3
	w.s = s
	return w
}

func (w *world) st() backup.Store {
	if w.s != nil {
		return w.s
	}
	return w.store
}

func (w *world) run(t *testing.T) *backup.Manifest {
	t.Helper()
	// Set IDs have a resolution of a second: a second run in the same second could sort before the first.
	for !time.Now().Truncate(time.Second).After(w.last) {
		time.Sleep(time.Until(w.last.Add(time.Second)))
	}
	m, err := (&backup.Backup{Store: w.st(), Prefix: "bk", Sources: w.sources, Key: w.key, TempDir: t.TempDir(), Tool: "test"}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.last = m.Started.Truncate(time.Second)
	return m
}

func (w *world) restorer(t *testing.T, dir string) *backup.Restore {
	r := w.restore(t)
	r.Store, r.TempDir = w.st(), dir
	return r
}

// forge copies set from's objects under the set ID id, with from's manifest edited by edit and written without a
// MAC (the attacker has no key).
func forge(t *testing.T, s backup.Store, from *backup.Manifest, id string, edit func(m *backup.Manifest)) {
	t.Helper()
	m := *from
	m.Objects = append([]backup.Object(nil), from.Objects...)
	m.Set = id
	m.Started, _ = time.Parse("20060102T150405Z", id[:16])
	for _, o := range from.Objects {
		put(t, s, "bk/"+id+"/"+o.Key, get(t, s, "bk/"+from.Set+"/"+o.Key))
	}
	if edit != nil {
		edit(&m)
	}
	b, err := json.Marshal(map[string]any{"manifest": &m})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "bk/"+id+"/manifest.json", b)
}

// laterID is a set ID d after set's.
func laterID(set string, d time.Duration) string {
	at, _ := time.Parse("20060102T150405Z", set[:16])
	return at.Add(d).Format("20060102T150405Z") + "-f0f0"
}

// refused checks that verify and restore refuse set with an error naming it and containing want, that no target
// was touched, and that the staging directory dir holds nothing.
func refused(t *testing.T, w *world, dir, set, want string) {
	t.Helper()
	r := w.restorer(t, dir)
	_, _, verr := r.Verify(context.Background(), set)
	_, perr := r.Prepare(context.Background(), set, nil)
	for what, err := range map[string]error{"verify": verr, "restore": perr} {
		if err == nil || !backup.IsCorrupt(err) || !strings.Contains(err.Error(), set) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s of %s: %v; want a refusal naming the set and %q", what, set, err, want)
		}
	}
	for src, tg := range w.targets {
		if tg.checked != 0 || tg.restored != nil {
			t.Errorf("target %s touched", src)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("the staging space holds %v after the refusal", left)
	}
}

func list(t *testing.T, w *world) map[string]backup.SetInfo {
	t.Helper()
	sets, err := (&backup.Lister{Store: w.st(), Prefix: "bk", Key: w.key}).List(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]backup.SetInfo{}
	for _, s := range sets {
		out[s.ID] = s
	}
	return out
}

// The rollback of issue 14: an old set's objects copied under a newer set ID, the manifest stripped of its
// encryption (so of its MAC). With a key it is invalid: refused by verify and restore, passed over by latest,
// and it takes no keep-last slot (the real newest set is kept); prune --invalid deletes it.
func TestDowngradedSetIsRefused(t *testing.T) {
	stores(t, func(t *testing.T, s backup.Store) {
		w := attackWorld(t, s, true)
		old := w.run(t)
		real := w.run(t)
		forgedID := laterID(real.Set, time.Minute)
		forge(t, s, old, forgedID, func(m *backup.Manifest) { m.Encryption = nil })
		// and a copy of the old set's authentic manifest envelope under another newer ID, its set field rewritten
		copied := laterID(real.Set, 2*time.Minute)
		forge(t, s, old, copied, nil)
		env := get(t, s, "bk/"+old.Set+"/manifest.json")
		put(t, s, "bk/"+copied+"/manifest.json", bytes.ReplaceAll(env, []byte(old.Set), []byte(copied)))

		refused(t, w, t.TempDir(), forgedID, "not authenticated")
		refused(t, w, t.TempDir(), copied, "MAC does not verify")
		m, err := w.restorer(t, t.TempDir()).Resolve(context.Background(), backup.Latest)
		if err != nil || m.Set != real.Set {
			t.Fatalf("latest = %v, %v; want the real newest set %s", m, err, real.Set)
		}
		sets := list(t, w)
		for _, id := range []string{forgedID, copied} {
			if sets[id].State != backup.Invalid {
				t.Errorf("listed %s as %s (%s); want invalid", id, sets[id].State, sets[id].Problem)
			}
		}
		var all []backup.SetInfo
		for _, s := range sets {
			all = append(all, s)
		}
		for _, d := range (backup.Policy{KeepLast: 1}).Plan(all) {
			if want := d.Set.ID != old.Set; d.Keep != want {
				t.Errorf("keep-last 1: %s; want keep=%v (the forged sets take no slot, are kept for inspection)", d, want)
			}
		}
		deleted, err := backup.Prune(context.Background(), s, "bk", backup.Policy{KeepLast: 1, DeleteInvalid: true}.Plan(all), nil)
		if err != nil || strings.Join(deleted, " ") != strings.Join([]string{old.Set, forgedID, copied}, " ") {
			t.Fatalf("prune --invalid deleted %v, %v; want the old set and both forged ones", deleted, err)
		}
	})
}

// An object of one set moved into another, with the other set's manifest rewritten to name its digest, does not
// verify: the manifest's MAC covers every digest, and each object's key is derived from its set ID.
func TestObjectsCannotMoveBetweenSets(t *testing.T) {
	w := attackWorld(t, backuptest.NewMemStore(), true)
	a := w.run(t)
	b := w.run(t)
	oa, _ := a.Object("ziti")
	put(t, w.st(), "bk/"+b.Set+"/"+oa.Key, get(t, w.st(), "bk/"+a.Set+"/"+oa.Key))
	refused(t, w, t.TempDir(), b.Set, "SHA-256")
}

// Names from the bucket are never paths: a manifest whose key or source would walk out of the staging directory
// (or out of the set's prefix) is refused before a byte is written anywhere.
func TestManifestNamesAreNotPaths(t *testing.T) {
	stores(t, func(t *testing.T, s backup.Store) {
		w := attackWorld(t, s, false)
		base := w.run(t)
		root := t.TempDir()
		staging := filepath.Join(root, "staging")
		if err := os.Mkdir(staging, 0o700); err != nil {
			t.Fatal(err)
		}
		cases := map[string]func(m *backup.Manifest){
			"key ../":            func(m *backup.Manifest) { m.Objects[0].Key = "../../../../" + filepath.Base(root) + "/evil" },
			"absolute key":       func(m *backup.Manifest) { m.Objects[0].Key = root + "/evil" },
			"key of another set": func(m *backup.Manifest) { m.Objects[0].Key = "../" + base.Set + "/" + base.Objects[0].Key },
			"source ../":         func(m *backup.Manifest) { m.Objects[1].Source = "../../evil" },
			"unknown source":     func(m *backup.Manifest) { m.Objects[1].Source = "vault" },
			"source twice":       func(m *backup.Manifest) { m.Objects[1] = m.Objects[0] },
			"format":             func(m *backup.Manifest) { m.Objects[0].Format = "sqlite3" },
		}
		i := 0
		for name, edit := range cases {
			i++
			id := laterID(base.Set, time.Duration(i)*time.Second)
			forge(t, s, base, id, edit)
			t.Run(name, func(t *testing.T) { refused(t, w, staging, id, "object") })
		}
		entries, _ := os.ReadDir(root)
		if len(entries) != 1 {
			t.Fatalf("written next to the staging space: %v", entries)
		}
	})
}

// A small object that decodes to far more than its manifest says (a zstd bomb) is refused once decoding passes the
// declared size, leaving nothing; a manifest declaring more than the hard ceiling is refused before downloading.
func TestDecodingStopsAtTheDeclaredSize(t *testing.T) {
	stores(t, func(t *testing.T, s backup.Store) {
		w := attackWorld(t, s, false)
		base := w.run(t)
		enc, _ := zstd.NewWriter(nil)
		bomb := enc.EncodeAll(make([]byte, 64<<20), nil) // 64 MiB of zeros in a few KiB
		id := laterID(base.Set, time.Second)
		forge(t, s, base, id, func(m *backup.Manifest) {
			m.Objects[0].Size, m.Objects[0].SHA256 = int64(len(bomb)), sha256Hex(bomb)
			m.Objects[0].RawSize = 1000
		})
		put(t, s, "bk/"+id+"/"+base.Objects[0].Key, bomb)
		var peak int64
		dir := t.TempDir()
		stop := watchSize(dir, &peak)
		refused(t, w, dir, id, "decodes to more than the 1000 bytes")
		stop()
		if peak > 1<<20 {
			t.Errorf("staging reached %d bytes while decoding a bomb declared as 1000", peak)
		}
		huge := laterID(base.Set, 2*time.Second)
		forge(t, s, base, huge, func(m *backup.Manifest) { m.Objects[0].RawSize = backup.MaxSnapshotSize + 1 })
		refused(t, w, t.TempDir(), huge, "beyond")
	})
}

// Junk and future-dated sets cannot hijack latest: they are listed as invalid, skipped by latest, take no slot,
// and prune --invalid removes them. A set whose objects are missing is not latest either.
func TestLatestIsTheNewestValidSet(t *testing.T) {
	stores(t, func(t *testing.T, s backup.Store) {
		w := attackWorld(t, s, false)
		good := w.run(t)
		broken := w.run(t)
		_ = s.Remove(context.Background(), "bk/"+broken.Set+"/"+broken.Objects[1].Key)
		junk := laterID(broken.Set, time.Minute)
		put(t, s, "bk/"+junk+"/manifest.json", []byte("{not json"))
		future := "20991231T235959Z-0001"
		forge(t, s, good, future, nil)
		m, err := w.restorer(t, t.TempDir()).Resolve(context.Background(), backup.Latest)
		if err != nil || m.Set != good.Set {
			t.Fatalf("latest = %v, %v; want %s", m, err, good.Set)
		}
		sets := list(t, w)
		want := map[string]backup.SetState{good.Set: backup.Complete, broken.Set: backup.Damaged, junk: backup.Invalid, future: backup.Invalid}
		for id, st := range want {
			if sets[id].State != st {
				t.Errorf("%s listed %s (%s); want %s", id, sets[id].State, sets[id].Problem, st)
			}
		}
		if !strings.Contains(sets[future].Problem, "future") || !strings.Contains(sets[junk].Problem, "not a manifest") {
			t.Errorf("problems: %q, %q", sets[future].Problem, sets[junk].Problem)
		}
		var all []backup.SetInfo
		for _, s := range sets {
			all = append(all, s)
		}
		deleted, err := backup.Prune(context.Background(), s, "bk", backup.Policy{KeepLast: 1, DeleteInvalid: true}.Plan(all), nil)
		if err != nil || strings.Join(deleted, " ") != junk+" "+future {
			t.Fatalf("prune --invalid deleted %v, %v; want %s %s", deleted, err, junk, future)
		}
	})
}

// Without a key nothing is authenticated: verify says so, restore needs AllowUnauthenticated.
func TestUnauthenticatedRestoreNeedsConsent(t *testing.T) {
	w := attackWorld(t, backuptest.NewMemStore(), false)
	m := w.run(t)
	r := w.restorer(t, t.TempDir())
	r.AllowUnauthenticated = false
	if _, auth, err := r.Verify(context.Background(), m.Set); err != nil || auth {
		t.Fatalf("verify: authenticated=%v, %v; want unauthenticated, verified", auth, err)
	}
	_, err := r.Prepare(context.Background(), m.Set, nil)
	var ue *backup.UnauthenticatedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--allow-unauthenticated") || !strings.Contains(err.Error(), m.Set) {
		t.Fatalf("restore without consent: %v", err)
	}
	r.AllowUnauthenticated = true
	p, err := r.Prepare(context.Background(), m.Set, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
}

// A host whose clock is off the store's by more than MaxClockSkew makes no set (its ID would misorder sets).
func TestClockSkewIsRefused(t *testing.T) {
	mem := backuptest.NewMemStore()
	w := attackWorld(t, mem, false)
	_, err := (&backup.Backup{Store: mem, Prefix: "bk", Sources: w.sources, TempDir: t.TempDir(),
		Now: func() time.Time { return time.Now().Add(time.Hour) }}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("a run an hour ahead of the store: %v", err)
	}
	if keys := mem.Keys(); len(keys) != 0 {
		t.Fatalf("left %v", keys)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// watchSize records in peak the largest total size of the files under dir until stop is called.
func watchSize(dir string, peak *int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			var n int64
			_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						n += fi.Size()
					}
				}
				return nil
			})
			if n > *peak {
				*peak = n
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }
}
