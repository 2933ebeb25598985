package progress

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// Events reach the context's Func with the context's source when they name none; without a Func nothing is
// reported and Reader returns the reader itself.
func TestReport(t *testing.T) {
	var got []Event
	ctx := With(context.Background(), func(e Event) { got = append(got, e) })
	Report(Source(ctx, "spire"), Event{Stage: Snapshot})
	Report(Source(ctx, "spire"), Event{Source: "ziti", Stage: Upload})
	Report(ctx, Event{Stage: Manifest})
	want := []Event{{Source: "spire", Stage: Snapshot}, {Source: "ziti", Stage: Upload}, {Stage: Manifest}}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	r := strings.NewReader("x")
	if Reader(context.Background(), r, Event{}) != io.Reader(r) || Enabled(context.Background()) {
		t.Error("without a Func, Reader wraps the reader")
	}
}

// A Reader reports the bytes read so far: on its first read, then at most every Interval, and at the end (the
// whole count), so a view always sees the final figure.
func TestReader(t *testing.T) {
	var got []Event
	ctx := With(context.Background(), func(e Event) { got = append(got, e) })
	body := strings.Repeat("z", 10_000)
	r := Reader(Source(ctx, "keycloak"), iotest.OneByteReader(strings.NewReader(body)), Event{Stage: Download, Total: 10_000})
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || len(got) > 1000 {
		t.Fatalf("%d events for 10,000 one-byte reads, want the first, a few by time, the last", len(got))
	}
	first, last := got[0], got[len(got)-1]
	if first.Bytes != 1 || last.Bytes != 10_000 || last.Total != 10_000 || last.Source != "keycloak" || last.Stage != Download {
		t.Errorf("first %+v, last %+v", first, last)
	}
}
