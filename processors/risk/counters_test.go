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
		d := *c // a copy: the buckets are an array
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

// The whole-number routes give what the decimal ones give, and step aside where they
// cannot.
func TestMinorUnitArithmetic(t *testing.T) {
	d := decimal.RequireFromString
	for _, tc := range []struct {
		amount string
		exp    int32
		want   uint64
		ok     bool
	}{
		{"12.34", 2, 1234, true},
		{"100", 2, 10000, true},
		{"0.5", 0, 0, false},              // a fraction of a minor unit
		{"12.340", 2, 0, false},           // more fraction digits than the currency: the decimal route
		{"-1.00", 2, 0, false},            // negative
		{"1234567890123456", 0, 0, false}, // 16 significant digits
		{"123456789012345", 0, 123456789012345, true},
		{"4611686018427387.90", 2, 0, false}, // 17 digits
		{"46116860184.28", 8, 0, false},      // 4,611,686,018,428,000,000 ≥ maxMinor
		{"0", 2, 0, true},
		{"7", 3, 7000, true},
	} {
		got, ok := minorUnits(d(tc.amount), tc.exp)
		if got != tc.want || ok != tc.ok {
			t.Errorf("minorUnits(%s, %d) = %d, %v; want %d, %v", tc.amount, tc.exp, got, ok, tc.want, tc.ok)
		}
		if ok && got != toMinor(d(tc.amount), tc.exp) {
			t.Errorf("minorUnits(%s, %d) = %d, toMinor %d", tc.amount, tc.exp, got, toMinor(d(tc.amount), tc.exp))
		}
	}

	for _, tc := range []struct{ n, d uint64 }{
		{0, 5}, {1, 5}, {4, 5}, {5, 5}, {1, 3}, {2, 3}, {999, 1000}, {1, 1 << 62}, {1 << 62, 1 << 62}, {1<<62 - 1, 1 << 62},
	} {
		want := min(scoreMaxOK, int(decimal.NewFromUint64(tc.n).Div(decimal.NewFromUint64(tc.d)).Mul(decimal.NewFromInt(scoreMaxOK+1)).IntPart()))
		if got := ratioScore(tc.n, tc.d); got != want {
			t.Errorf("ratioScore(%d, %d) = %d, want %d", tc.n, tc.d, got, want)
		}
	}

	for _, tc := range []struct {
		mult   string
		a, avg uint64
	}{
		{"5", 5000, 1000}, {"5", 5001, 1000}, {"2.5", 2500, 1000}, {"2.5", 2501, 1000}, {"1.0001", 10001, 10000},
		{"1.0001", 10002, 10000}, {"3", maxMinor, maxMinor / 3}, {"3", maxMinor, maxMinor/3 + 1},
	} {
		f := fractionOf(d(tc.mult))
		want := decimal.NewFromUint64(tc.a).GreaterThan(d(tc.mult).Mul(decimal.NewFromUint64(tc.avg)))
		if !f.ok || f.exceeds(tc.a, tc.avg) != want {
			t.Errorf("%d > %s × %d: %+v says %v, want %v", tc.a, tc.mult, tc.avg, f, f.exceeds(tc.a, tc.avg), want)
		}
	}
	if f := fractionOf(d("0")); f.ok {
		t.Errorf("fractionOf(0) = %+v, want not ok", f)
	}

	// A limit of 100.005 USD is not whole in cents: 10,000 cents is under it and 10,001
	// over, on the decimal route; 100.00 takes the whole-number one, with the same answers.
	for _, tc := range []struct {
		max   string
		total uint64
		over  bool
		score int
	}{
		{"100.005", 10000, false, 499}, {"100.005", 10001, true, 0}, {"100.005", 5000, false, 249},
		{"100.00", 10000, false, 499}, {"100.00", 10001, true, 0}, {"100.00", 5000, false, 250},
		{"0", 0, false, 0}, {"0", 1, true, 0},
	} {
		m := d(tc.max)
		r := limitRule{Limit: Limit{MaxAmount: &m}}
		r.maxMinor, r.minorOK = minorUnits(m, 2)
		over, score := r.turnover(tc.total, 2)
		if over != tc.over || score != tc.score {
			t.Errorf("limit %s, %d cents: over %v score %d, want %v %d", tc.max, tc.total, over, score, tc.over, tc.score)
		}
	}
}
