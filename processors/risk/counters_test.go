package risk

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestWindowsRollOnPaymentTime(t *testing.T) {
	c := newCounters()
	c.advance(unitOf(t0))
	c.add(unitOf(t0), 100)
	for _, tc := range []struct {
		later            time.Duration
		hour, day, month uint64 // payments each window still holds
	}{
		{0, 1, 1, 1},
		{59 * time.Minute, 1, 1, 1},
		{66 * time.Minute, 0, 1, 1}, // more than an hour and a bucket later
		{23 * time.Hour, 0, 1, 1},
		{25*time.Hour + time.Minute, 0, 0, 1},
		{29 * 24 * time.Hour, 0, 0, 1},
		{32 * 24 * time.Hour, 0, 0, 0},
	} {
		d := *c
		for i := range d.rings {
			d.rings[i] = append([]bucket(nil), c.rings[i]...)
		}
		d.advance(unitOf(t0.Add(tc.later)))
		got := [3]uint64{d.sum(Hour).count, d.sum(Day).count, d.sum(Month).count}
		if got != [3]uint64{tc.hour, tc.day, tc.month} {
			t.Errorf("%v later: windows hold %v, want %v", tc.later, got, [3]uint64{tc.hour, tc.day, tc.month})
		}
	}
}

func TestLatePaymentCountsInItsBucket(t *testing.T) {
	c := newCounters()
	c.advance(unitOf(t0))
	c.add(unitOf(t0.Add(-30*time.Minute)), 5)  // late but inside the hour
	c.add(unitOf(t0.Add(-90*24*time.Hour)), 7) // older than every ring: counted, never dropped
	if s := c.sum(Hour); s.count != 2 || s.amount != 12 {
		t.Errorf("hour window %+v, want the late payments counted", s)
	}
}

func TestCountersEncodeWithinBound(t *testing.T) {
	c := newCounters()
	// A busy wallet: a large payment in every bucket of every ring.
	start := t0.Add(-31 * 24 * time.Hour)
	for at := start; !at.After(t0); at = at.Add(5 * time.Minute) {
		c.advance(unitOf(at))
		c.add(unitOf(at), 9_000_000_000_000)
		c.observe(9_000_000_000_000, 20)
	}
	before := [3]bucket{c.sum(Hour), c.sum(Day), c.sum(Month)}
	if n := len(c.encode()); n <= 512 {
		t.Fatalf("the busy wallet encodes in %d bytes; the test needs more than 512", n)
	}
	b, err := c.encodeWithin(512)
	if err != nil || len(b) > 512 {
		t.Fatalf("encodeWithin: %d bytes, %v", len(b), err)
	}
	d, err := decodeCounters(b)
	if err != nil {
		t.Fatal(err)
	}
	after := [3]bucket{d.sum(Hour), d.sum(Day), d.sum(Month)}
	if before != after || d.n != c.n || d.avg != c.avg || d.head != c.head {
		t.Errorf("windows %v after fitting, %v before", after, before)
	}
	// Merged buckets stay in the window at least as long as they would have.
	d.advance(unitOf(t0.Add(30 * 24 * time.Hour)))
	c.advance(unitOf(t0.Add(30 * 24 * time.Hour)))
	if d.sum(Month).count < c.sum(Month).count {
		t.Errorf("fitting forgot payments early: %d in the month, want at least %d", d.sum(Month).count, c.sum(Month).count)
	}
}

func TestQuietWalletIsSmall(t *testing.T) {
	c := newCounters()
	c.advance(unitOf(t0))
	c.add(unitOf(t0), toMinor(decimal.RequireFromString("12.34"), 2))
	b := c.encode()
	if len(b) > 32 {
		t.Errorf("one payment encodes in %d bytes", len(b))
	}
	d, err := decodeCounters(b)
	if err != nil || d.sum(Month).amount != 1234 {
		t.Fatalf("decoded %+v, %v", d, err)
	}
}

func TestUnreadableState(t *testing.T) {
	good := newCounters()
	good.advance(unitOf(t0))
	good.add(unitOf(t0), 1)
	b := good.encode()
	for _, bad := range [][]byte{nil, {9}, b[:len(b)-1], append(append([]byte(nil), b...), 0)} {
		if _, err := decodeCounters(bad); !errors.Is(err, ErrBadState) {
			t.Errorf("decoding %x: %v, want ErrBadState", bad, err)
		}
	}
}

func TestRunningAverage(t *testing.T) {
	c := newCounters()
	for _, a := range []uint64{10, 20, 30} {
		c.observe(a, 20)
	}
	if c.avg != 20 || c.n != 3 {
		t.Errorf("average of 10, 20, 30 = %d over %d", c.avg, c.n)
	}
	for range 100 {
		c.observe(1000, 4)
	}
	if c.avg < 990 {
		t.Errorf("average %d does not follow the last payments", c.avg)
	}
	if toMinor(decimal.RequireFromString("1e30"), 2) != maxMinor {
		t.Error("huge amounts do not saturate")
	}
}

// FuzzDecodeCounters: a risk state entry read back from the changelog is either refused
// with ErrBadState or is counters the stage can use: encoding them again gives an entry
// that decodes to the same encoding, and ageing, counting and fitting them do not panic.
func FuzzDecodeCounters(f *testing.F) {
	c := newCounters()
	c.advance(unitOf(t0))
	c.add(unitOf(t0), 1250)
	c.add(unitOf(t0.Add(-3*time.Hour)), 99)
	c.observe(1250, 10)
	f.Add(c.encode())
	f.Add(newCounters().encode())
	f.Add([]byte{countersVersion})
	f.Add([]byte{countersVersion + 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeCounters(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("%x: %v, want ErrBadState", b, err)
			}
			return
		}
		enc := d.encode()
		again, err := decodeCounters(enc)
		if err != nil {
			t.Fatalf("%x decoded, but its encoding %x does not: %v", b, enc, err)
		}
		if e2 := again.encode(); string(e2) != string(enc) {
			t.Fatalf("%x: encodes as %x, then as %x", b, enc, e2)
		}
		for _, w := range Windows {
			_ = d.sum(w)
		}
		d.advance(d.head + 1)
		d.add(d.head-400, 7)
		d.observe(7, 10)
		if _, err := d.encodeWithin(128); err != nil {
			t.Fatalf("%x: %v", b, err)
		}
	})
}
