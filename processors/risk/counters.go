package risk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
	slot int64 // bucket length in units
	size int
}{
	{slot: 1, size: 13},
	{slot: 12, size: 25},
	{slot: 288, size: 31},
}

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
	head  int64  // latest payment time seen, in units since the epoch
	n     uint64 // payments in the running average, saturating
	avg   uint64 // running average amount in minor units
	rings [3][]bucket
}

const countersVersion = 1

// ErrBadState is wrapped when a state entry cannot be decoded.
var ErrBadState = errors.New("unreadable risk state")

func newCounters() *counters {
	c := &counters{}
	for i, t := range tiers {
		c.rings[i] = make([]bucket, t.size)
	}
	return c
}

func unitOf(t time.Time) int64 { return t.Unix() / unit }

// advance moves the head to u when u is later, ageing every bucket.
func (c *counters) advance(u int64) {
	if u <= c.head {
		return
	}
	for i, t := range tiers {
		b := c.rings[i]
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
		b := &c.rings[i][max(age, 0)]
		b.count = satAdd(b.count, 1)
		b.amount = satAdd(b.amount, amount)
	}
}

// sum is what a window holds.
func (c *counters) sum(w Window) bucket {
	var s bucket
	for _, b := range c.rings[tierOf(w)] {
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
	b := []byte{countersVersion}
	b = binary.AppendUvarint(b, uint64(c.head))
	b = binary.AppendUvarint(b, c.n)
	b = binary.AppendUvarint(b, c.avg)
	for _, ring := range c.rings {
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
	for i := len(c.rings) - 1; i >= 0; i-- {
		ring := c.rings[i]
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
	for i := range c.rings {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: ring %d missing", ErrBadState, i)
		}
		k := int(b[0])
		b = b[1:]
		for range k {
			if len(b) == 0 || int(b[0]) >= len(c.rings[i]) {
				return nil, fmt.Errorf("%w: bucket age", ErrBadState)
			}
			age := b[0]
			b = b[1:]
			count, ok1 := next()
			amount, ok2 := next()
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%w: bucket", ErrBadState)
			}
			c.rings[i][age] = bucket{count: count, amount: amount}
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(b))
	}
	return c, nil
}

// toMinor converts an amount to minor units of a currency with exp fraction digits,
// saturating at maxMinor.
func toMinor(a decimal.Decimal, exp int32) uint64 {
	m := a.Shift(exp)
	if m.GreaterThanOrEqual(decimal.NewFromUint64(maxMinor)) {
		return maxMinor
	}
	return uint64(m.IntPart())
}

func fromMinor(v uint64, exp int32) decimal.Decimal { return decimal.NewFromUint64(v).Shift(-exp) }
