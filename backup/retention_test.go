package backup_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ziti-bootstrap/ziti-bootstrap/backup"
	"github.com/ziti-bootstrap/ziti-bootstrap/backup/backuptest"
)

func set(id string, state backup.SetState) backup.SetInfo {
	t, _ := time.Parse("20060102T150405Z", id[:16])
	return backup.SetInfo{ID: id, Started: t, State: state}
}

// Hand-checked cases.
func TestRetentionPlan(t *testing.T) {
	C, P, I, D := backup.Complete, backup.InProgress, backup.Incomplete, backup.Damaged
	sets := []backup.SetInfo{
		set("20261102T010000Z-0001", C), // Mon W45
		set("20261103T010000Z-0002", C), // Tue W45
		set("20261109T010000Z-0003", C), // Mon W46
		set("20261110T010000Z-0004", C), // Tue W46
		set("20261110T130000Z-0005", C), // Tue W46, later
		set("20261111T010000Z-0006", D), // damaged
		set("20261111T020000Z-0007", I), // failed run
		set("20261112T010000Z-0008", C), // Thu W46
		set("20261112T020000Z-0009", I), // failed run
		set("20261112T030000Z-000a", P), // being written
	}
	cases := []struct {
		name string
		p    backup.Policy
		keep []string // suffixes of the IDs kept
	}{
		{"no rules: only failed runs go", backup.Policy{}, []string{"0001", "0002", "0003", "0004", "0005", "0006", "0008", "000a"}},
		{"last 1", backup.Policy{KeepLast: 1}, []string{"0006", "0008", "000a"}},
		{"last 2", backup.Policy{KeepLast: 2}, []string{"0005", "0006", "0008", "000a"}},
		{"daily 2", backup.Policy{KeepDaily: 2}, []string{"0005", "0006", "0008", "000a"}},
		{"daily 3", backup.Policy{KeepDaily: 3}, []string{"0003", "0005", "0006", "0008", "000a"}},
		{"weekly 2", backup.Policy{KeepWeekly: 2}, []string{"0002", "0006", "0008", "000a"}},
		{"last 1 + weekly 1 + daily 1", backup.Policy{KeepLast: 1, KeepDaily: 1, KeepWeekly: 1}, []string{"0006", "0008", "000a"}},
		{"last 5 and more than there is", backup.Policy{KeepLast: 9, KeepDaily: 9, KeepWeekly: 9}, []string{"0001", "0002", "0003", "0004", "0005", "0006", "0008", "000a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := c.p.Plan(sets)
			var kept []string
			for _, d := range ds {
				if d.Keep {
					kept = append(kept, d.Set.ID[len(d.Set.ID)-4:])
				}
				if len(d.Reasons) == 0 {
					t.Errorf("%s: no reason", d.Set.ID)
				}
			}
			if !slices.Equal(kept, c.keep) {
				t.Fatalf("kept %v, want %v\n%s", kept, c.keep, render(ds))
			}
		})
	}
	// Reasons say why.
	ds := backup.Policy{KeepLast: 1}.Plan(sets)
	if r := ds[7].String(); !strings.Contains(r, "newest complete set") || !strings.Contains(r, "last 1") {
		t.Errorf("reasons: %s", r)
	}
	// Days are counted in the policy's time zone: 01:00Z on the 10th is the 9th in New York.
	ny, _ := time.LoadLocation("America/New_York")
	if ny != nil {
		ds := backup.Policy{KeepDaily: 3, Location: ny}.Plan(sets)
		var kept []string
		for _, d := range ds {
			if d.Keep && d.Set.State == backup.Complete {
				kept = append(kept, d.Set.ID[len(d.Set.ID)-4:])
			}
		}
		if !slices.Equal(kept, []string{"0004", "0005", "0008"}) {
			t.Errorf("daily 3 in New York kept %v", kept)
		}
	}
}

func render(ds []backup.Decision) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintln(&b, d)
	}
	return b.String()
}

// A simulated sequence of runs: every 6 hours for 60 days, every 7th run crashes leaving a set without a
// manifest, retention runs after each backup. After every run the invariants hold; at the end exactly what the
// policy says is left.
func TestRetentionOverSimulatedRuns(t *testing.T) {
	ctx := context.Background()
	store := backuptest.NewMemStore()
	clock := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	store.Now = func() time.Time { return clock }
	policy := backup.Policy{KeepLast: 3, KeepDaily: 7, KeepWeekly: 4}
	grace := 3 * time.Hour
	src := []backup.Source{&fakeSource{name: "spire", format: "sqlite3", data: []byte("x")}}
	var complete []time.Time // every complete set ever made
	lister := &backup.Lister{Store: store, Prefix: "bk", Grace: grace}

	for run := 0; run < 240; run++ {
		clock = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(run) * 6 * time.Hour)
		start := clock
		if run%7 == 3 {
			// a crash mid-run: a started marker and one object, never a manifest
			id := start.Format("20060102T150405Z") + "-dead"
			_, _ = store.Put(ctx, "bk/"+id+"/started.json", strings.NewReader("{}"))
			_, _ = store.Put(ctx, "bk/"+id+"/spire.sqlite3.zst", strings.NewReader("partial"))
		} else {
			if _, err := (&backup.Backup{Store: store, Prefix: "bk", Sources: src, TempDir: t.TempDir(),
				Now: func() time.Time { return start }}).Run(ctx); err != nil {
				t.Fatal(err)
			}
			complete = append(complete, start)
		}
		// A run in progress (started 1 h ago, no manifest yet) must survive.
		clock = start.Add(10 * time.Minute)
		inProgress := start.Add(-time.Hour).Format("20060102T150405Z") + "-beef"
		if run == 239 {
			_, _ = store.Put(ctx, "bk/"+inProgress+"/started.json", strings.NewReader("{}"))
		}
		sets, err := lister.List(ctx, clock)
		if err != nil {
			t.Fatal(err)
		}
		newest, _ := backup.NewestComplete(sets)
		ds := policy.Plan(sets)
		deleted, err := backup.Prune(ctx, store, "bk", ds, nil)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(deleted, newest.ID) {
			t.Fatalf("run %d: deleted the newest complete set %s", run, newest.ID)
		}
		for _, s := range sets {
			if s.State == backup.InProgress && slices.Contains(deleted, s.ID) {
				t.Fatalf("run %d: deleted set %s in progress", run, s.ID)
			}
		}
		if run == 239 && slices.Contains(deleted, inProgress) {
			t.Fatal("deleted the set in progress")
		}
	}

	sets, err := lister.List(ctx, clock)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range sets {
		got = append(got, s.ID[:16]+" "+string(s.State))
	}
	want := expected(complete, policy)
	// The last crashed run (234: 234 % 7 == 3) ended 30 hours before the end, beyond the grace period: deleted.
	// The set in progress stays.
	want = append(want, clock.Add(-10*time.Minute-time.Hour).Format("20060102T150405Z")+" "+string(backup.InProgress))
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("left:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(got) - 1; n > policy.KeepLast+policy.KeepDaily+policy.KeepWeekly {
		t.Fatalf("%d complete sets left", n)
	}
	t.Logf("%d runs (%d complete), %d sets left:\n%s", 240, len(complete), len(got), strings.Join(got, "\n"))
}

// expected applies the policy to the times of all complete sets, independently of Plan: the union of the newest
// KeepLast, the newest per calendar day over the KeepDaily latest days, the newest per ISO week over the
// KeepWeekly latest weeks.
func expected(complete []time.Time, p backup.Policy) []string {
	keep := map[time.Time]bool{}
	sorted := append([]time.Time(nil), complete...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].After(sorted[j]) })
	for i := 0; i < p.KeepLast && i < len(sorted); i++ {
		keep[sorted[i]] = true
	}
	newestPer := func(bucket func(time.Time) string, n int) {
		newest := map[string]time.Time{}
		var buckets []string
		for _, t := range sorted {
			b := bucket(t)
			if _, ok := newest[b]; !ok {
				newest[b] = t
				buckets = append(buckets, b)
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(buckets)))
		for i := 0; i < n && i < len(buckets); i++ {
			keep[newest[buckets[i]]] = true
		}
	}
	newestPer(func(t time.Time) string { return t.Format("2006-01-02") }, p.KeepDaily)
	newestPer(func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%04d-%02d", y, w) }, p.KeepWeekly)
	var out []string
	for t := range keep {
		out = append(out, t.Format("20060102T150405Z")+" "+string(backup.Complete))
	}
	return out
}

// recStore records the order of removals.
type recStore struct {
	backup.Store
	removed []string
}

func (r *recStore) Remove(ctx context.Context, key string) error {
	r.removed = append(r.removed, key)
	return r.Store.Remove(ctx, key)
}

func TestPruneDeletesTheManifestFirst(t *testing.T) {
	mem := backuptest.NewMemStore()
	src := []backup.Source{&fakeSource{name: "spire", format: "sqlite3", data: []byte("x")}, &fakeSource{name: "ziti", format: "bbolt", data: []byte("y")}}
	var sets []string
	for i := range 2 {
		at := time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC)
		mem.Now = func() time.Time { return at } // the store's clock agrees with the host's
		m, err := (&backup.Backup{Store: mem, Prefix: "p", Sources: src, TempDir: t.TempDir(), Now: func() time.Time { return at }}).Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, m.Set)
	}
	rec := &recStore{Store: mem}
	list, err := (&backup.Lister{Store: rec, Prefix: "p"}).List(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := backup.Prune(context.Background(), rec, "p", backup.Policy{KeepLast: 1}.Plan(list), nil)
	if err != nil || !slices.Equal(deleted, sets[:1]) {
		t.Fatalf("deleted %v, %v; want %v", deleted, err, sets[:1])
	}
	dir := "p/" + sets[0] + "/"
	if len(rec.removed) != 4 || rec.removed[0] != dir+"manifest.json" || rec.removed[3] != dir+"started.json" {
		t.Fatalf("removal order %v: want the manifest first, the started marker last", rec.removed)
	}
	if keys := mem.Keys(); len(keys) != 4 || !strings.HasPrefix(keys[0], "p/"+sets[1]) {
		t.Fatalf("left %v", keys)
	}
}
