package risk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/shopspring/decimal"
)

// Window is a rolling window of velocity and turnover limits.
type Window string

// Windows.
const (
	Hour  Window = "hour"
	Day   Window = "day"
	Month Window = "month" // 30 days
)

// Windows lists every window, shortest first.
var Windows = []Window{Hour, Day, Month}

// unit is the time resolution of the state: five minutes, in seconds.
const unit = 300

// tiers are the bucket rings behind the windows: the hour in 5-minute buckets, the day in
// hourly ones, the 30-day month in daily ones. A ring holds every bucket that overlaps its
// window, so a window counts what happened in it plus at most one bucket before it (up to
// 5 minutes, 1 hour or 1 day): limits err on the side of refusing, never of allowing.
var tiers = [3]struct {
	slot  int64 // bucket length in units
	size  int
	start int // where the ring begins in counters.buckets
}{
	{slot: 1, size: hourBuckets, start: 0},
	{slot: 12, size: dayBuckets, start: hourBuckets},
	{slot: 288, size: monthBuckets, start: hourBuckets + dayBuckets},
}

const hourBuckets, dayBuckets, monthBuckets = 13, 25, 31

func tierOf(w Window) int {
	switch w {
	case Hour:
		return 0
	case Day:
		return 1
	default:
		return 2
	}
}

// maxMinor caps amounts in minor units so sums cannot overflow; it is far above any limit.
const maxMinor = 1 << 62

type bucket struct{ count, amount uint64 }

// counters are one state entry: the buckets of one wallet, payment type (or every type)
// and currency, and, on the every-type entry, the wallet's running average amount.
//
// Encoded, an entry is a version byte, the head time, the average's payment count and
// value (uvarints), then per ring the number of non-empty buckets and, for each, its age
// (a byte), count and amount in minor units (uvarints). Only non-empty buckets are
// written, so a quiet wallet costs a few bytes; a busy one is bounded by fit.
type counters struct {
	head int64  // latest payment time seen, in units since the epoch
	n    uint64 // payments in the running average, saturating
	avg  uint64 // running average amount in minor units
	// buckets holds the rings one after the other (ring): an entry is one allocation
	// without pointers, and the stage decodes two for every payment.
	buckets [hourBuckets + dayBuckets + monthBuckets]bucket
}

// ring is tier i's buckets, newest first.
func (c *counters) ring(i int) []bucket {
	return c.buckets[tiers[i].start : tiers[i].start+tiers[i].size]
}

const countersVersion = 1

// ErrBadState is wrapped when a state entry cannot be decoded.
var ErrBadState = errors.New("unreadable risk state")

func newCounters() *counters { return &counters{} }

func unitOf(t time.Time) int64 { return t.Unix() / unit }

// advance moves the head to u when u is later, ageing every bucket.
func (c *counters) advance(u int64) {
	if u <= c.head {
		return
	}
	for i, t := range tiers {
		b := c.ring(i)
		shift := u/t.slot - c.head/t.slot
		if shift >= int64(len(b)) {
			clear(b)
			continue
		}
		copy(b[shift:], b[:int64(len(b))-shift])
		clear(b[:shift])
	}
	c.head = u
}

// add counts a payment of amount minor units at u, which must not be after the head. A
// payment older than a ring lands in its oldest bucket, which is still inside the window.
func (c *counters) add(u int64, amount uint64) {
	for i, t := range tiers {
		age := min(c.head/t.slot-u/t.slot, int64(t.size-1))
		b := &c.ring(i)[max(age, 0)]
		b.count = satAdd(b.count, 1)
		b.amount = satAdd(b.amount, amount)
	}
}

// sum is what a window holds.
func (c *counters) sum(w Window) bucket {
	var s bucket
	for _, b := range c.ring(tierOf(w)) {
		s.count = satAdd(s.count, b.count)
		s.amount = satAdd(s.amount, b.amount)
	}
	return s
}

// observe folds an amount into the running average: the exact mean of the first last
// payments, then an exponential average weighting the newest by 1/last.
func (c *counters) observe(amount uint64, last int) {
	if c.n < math.MaxUint32 {
		c.n++
	}
	w := int64(min(c.n, uint64(max(last, 1))))
	c.avg = uint64(int64(c.avg) + (int64(amount)-int64(c.avg))/w)
}

func satAdd(a, b uint64) uint64 {
	if a > maxMinor || b > maxMinor || a+b > maxMinor {
		return maxMinor
	}
	return a + b
}

func (c *counters) encode() []byte {
	b := make([]byte, 1, 64)
	b[0] = countersVersion
	b = binary.AppendUvarint(b, uint64(c.head))
	b = binary.AppendUvarint(b, c.n)
	b = binary.AppendUvarint(b, c.avg)
	for i := range tiers {
		ring := c.ring(i)
		n := 0
		for _, x := range ring {
			if x.count > 0 {
				n++
			}
		}
		b = append(b, byte(n))
		for age, x := range ring {
			if x.count > 0 {
				b = append(b, byte(age))
				b = binary.AppendUvarint(b, x.count)
				b = binary.AppendUvarint(b, x.amount)
			}
		}
	}
	return b
}

// encodeWithin encodes c in at most max bytes. Should a busy wallet's buckets not fit, the
// oldest non-empty bucket of the coarsest ring is merged into the next newer one until
// they do: totals are kept, and merged payments stay in their windows longer, never
// shorter. With one bucket per ring an entry is under 80 bytes, so any max of at least
// 128 is met.
func (c *counters) encodeWithin(max int) ([]byte, error) {
	for {
		b := c.encode()
		if len(b) <= max {
			return b, nil
		}
		if !c.coarsen() {
			return nil, fmt.Errorf("encoding risk state: %d bytes exceed %d", len(b), max)
		}
	}
}

func (c *counters) coarsen() bool {
	for i := len(tiers) - 1; i >= 0; i-- {
		ring := c.ring(i)
		older := -1
		for age := len(ring) - 1; age >= 0; age-- {
			if ring[age].count == 0 {
				continue
			}
			if older < 0 {
				older = age
				continue
			}
			ring[age].count = satAdd(ring[age].count, ring[older].count)
			ring[age].amount = satAdd(ring[age].amount, ring[older].amount)
			ring[older] = bucket{}
			return true
		}
	}
	return false
}

func decodeCounters(b []byte) (*counters, error) {
	c := newCounters()
	if len(b) == 0 || b[0] != countersVersion {
		return nil, fmt.Errorf("%w: version %v", ErrBadState, b[:min(len(b), 1)])
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	head, ok1 := next()
	n, ok2 := next()
	avg, ok3 := next()
	if !ok1 || !ok2 || !ok3 || head > math.MaxInt64 {
		return nil, fmt.Errorf("%w: header", ErrBadState)
	}
	c.head, c.n, c.avg = int64(head), n, avg
	for i := range tiers {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: ring %d missing", ErrBadState, i)
		}
		k := int(b[0])
		b = b[1:]
		for range k {
			if len(b) == 0 || int(b[0]) >= tiers[i].size {
				return nil, fmt.Errorf("%w: bucket age", ErrBadState)
			}
			age := b[0]
			b = b[1:]
			count, ok1 := next()
			amount, ok2 := next()
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%w: bucket", ErrBadState)
			}
			c.ring(i)[age] = bucket{count: count, amount: amount}
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(b))
	}
	return c, nil
}

// toMinor converts an amount to minor units of a currency with exp fraction digits,
// saturating at maxMinor, by decimal arithmetic: the route for what minorUnits declines.
func toMinor(a decimal.Decimal, exp int32) uint64 {
	m := a.Shift(exp)
	if m.GreaterThanOrEqual(decimal.NewFromUint64(maxMinor)) {
		return maxMinor
	}
	return uint64(m.IntPart())
}

func fromMinor(v uint64, exp int32) decimal.Decimal { return decimal.NewFromUint64(v).Shift(-exp) }

// minorUnits returns a in whole minor units of a currency with exp fraction digits when
// that takes no big-number arithmetic: a is not negative, has at most exp fraction digits
// and at most 15 significant ones, and comes to less than maxMinor. ok is false
// otherwise, and the caller takes the decimal route. shopspring/decimal allocates for
// every operation; the stage converts an amount and its limits for every payment.
func minorUnits(a decimal.Decimal, exp int32) (v uint64, ok bool) {
	shift := a.Exponent() + exp
	if shift < 0 || shift > 18 || a.Sign() < 0 || a.NumDigits() > 15 {
		return 0, false
	}
	v = uint64(a.CoefficientInt64())
	for range shift {
		if v > maxMinor/10 {
			return 0, false
		}
		v *= 10
	}
	return v, v < maxMinor
}

// ratioScore is n/d scaled to scores, 500 × n / d rounded down, at most scoreMaxOK; d > 0.
func ratioScore(n, d uint64) int {
	hi, lo := bits.Mul64(n, scoreMaxOK+1)
	if hi >= d {
		return scoreMaxOK
	}
	q, _ := bits.Div64(hi, lo, d)
	return int(min(q, scoreMaxOK))
}

// fraction is a positive decimal as num/den in whole numbers, for comparing amounts in
// minor units against it without big-number arithmetic; ok is false when it has no
// such form.
type fraction struct {
	num, den uint64
	ok       bool
}

func fractionOf(d decimal.Decimal) fraction {
	if !d.IsPositive() || d.Exponent() < -18 {
		return fraction{}
	}
	den := uint64(1)
	for range -min(d.Exponent(), 0) {
		den *= 10
	}
	num, ok := minorUnits(d, -min(d.Exponent(), 0))
	return fraction{num: num, den: den, ok: ok}
}

// exceeds reports whether a > f × b.
func (f fraction) exceeds(a, b uint64) bool {
	ah, al := bits.Mul64(a, f.den)
	bh, bl := bits.Mul64(b, f.num)
	return ah > bh || ah == bh && al > bl
}
