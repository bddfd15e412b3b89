package schemas

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// Avro binary primitives for the hand-written codecs in fastcodec.go. Writing, they give
// goavro's bytes; reading, they refuse exactly what guard and goavro refuse and build the
// values fromNative builds.

// avroWriter appends one datum. Its error is the one the generic path would report: that
// path checks every amount before goavro writes a byte, in its own field order, so an
// error carries the rank of that order and the lowest rank wins.
type avroWriter struct {
	b    []byte
	err  error
	rank int
}

func (w *avroWriter) fail(rank int, err error) {
	if w.err == nil || rank < w.rank {
		w.err, w.rank = err, rank
	}
}

func (w *avroWriter) long(v int64) { w.b = binary.AppendVarint(w.b, v) }

func (w *avroWriter) str(s string) {
	w.long(int64(len(s)))
	w.b = append(w.b, s...)
}

// time writes a timestamp-micros as goavro does, from the time truncated to microseconds.
func (w *avroWriter) time(t time.Time) { w.long(t.Unix()*1e6 + int64(t.Nanosecond()/1e3)) }

// union writes the branch index of a ["null", T] union.
func (w *avroWriter) union(present bool) {
	if present {
		w.b = append(w.b, 2)
	} else {
		w.b = append(w.b, 0)
	}
}

// strs writes an array of strings in one block.
func (w *avroWriter) strs(ss []string) {
	if len(ss) > 0 {
		w.long(int64(len(ss)))
		for _, s := range ss {
			w.str(s)
		}
	}
	w.b = append(w.b, 0)
}

// strMap writes a map of strings in one block, keys in sorted order: goavro writes them in
// Go's random map order, which any order matches.
func (w *avroWriter) strMap(m map[string]string) {
	if len(m) > 0 {
		w.long(int64(len(m)))
		var buf [8]string
		keys := buf[:0]
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			w.str(k)
			w.str(m[k])
		}
	}
	w.b = append(w.b, 0)
}

// money writes a paystream.Money and returns the error Money.native gives for it.
func (w *avroWriter) money(m Money) error {
	var buf [64]byte
	a, ok := appendAmount(buf[:0], m.Amount)
	if !ok || !validCurrency(m.Currency) {
		_, err := m.native()
		if err != nil {
			return err
		}
		a = append(buf[:0], m.Amount.String()...) // valid, but too long for the fast path
	}
	w.long(int64(len(a)))
	w.b = append(w.b, a...)
	w.str(m.Currency)
	return nil
}

// appendAmount appends d spelt as decimal.Decimal.String spells it, and reports whether
// that is a plain decimal the wire allows. It only handles coefficients of up to 17
// digits, and reports false for the others: Money.native then decides.
func appendAmount(b []byte, d decimal.Decimal) ([]byte, bool) {
	if d.IsZero() {
		return append(b, '0'), true
	}
	if d.NumDigits() > 17 {
		return b, false
	}
	c, exp := d.CoefficientInt64(), d.Exponent()
	for exp < 0 && c%10 == 0 { // String drops trailing fraction zeros
		c, exp = c/10, exp+1
	}
	if exp > 40 || exp < -18 {
		return b, false
	}
	if c < 0 {
		b, c = append(b, '-'), -c
	}
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], c, 10)
	switch {
	case exp >= 0:
		if len(digits)+int(exp) > 40 {
			return b, false
		}
		b = append(b, digits...)
		for range exp {
			b = append(b, '0')
		}
	case len(digits) > int(-exp):
		point := len(digits) + int(exp)
		b = append(append(append(b, digits[:point]...), '.'), digits[point:]...)
	default:
		b = append(b, '0', '.')
		for range int(-exp) - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	}
	return b, true
}

// plainDecimal reports whether s matches amountPattern, -?(0|[1-9][0-9]{0,39})(\.[0-9]{1,18})?.
func plainDecimal(s []byte) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	n := digits(s)
	if n == 0 || n > 40 || (n > 1 && s[0] == '0') {
		return false
	}
	if s = s[n:]; len(s) == 0 {
		return true
	}
	if s[0] != '.' {
		return false
	}
	n = digits(s[1:])
	return n >= 1 && n <= 18 && n == len(s)-1
}

func digits(s []byte) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// validCurrency reports whether c matches currencyPattern, [A-Z]{3}.
func validCurrency[T string | []byte](c T) bool {
	return len(c) == 3 && isUpper(c[0]) && isUpper(c[1]) && isUpper(c[2])
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// avroReader reads one datum. After the first malformed byte it keeps that error and every
// read returns a zero value, so a decoder reads on and checks once. The generic path
// reports the guard's errors first, then goavro's, then fromNative's invalid amounts in
// fromNative's field order; the reader keeps one of each and ranks the amounts.
type avroReader struct {
	b       []byte
	err     error // malformed: what guard refuses
	dup     error // a duplicate map key: what goavro refuses
	bad     error // an invalid amount: what fromNative refuses
	badRank int

	currency string // the last currency read, reused: a record's amounts mostly share one
}

func (r *avroReader) malformed(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errGuard}, args...)...)
	}
	r.b = nil
}

func (r *avroReader) invalid(rank int, err error) {
	if r.bad == nil || rank < r.badRank {
		r.bad, r.badRank = err, rank
	}
}

// wireErr returns what guard or goavro refuse in the datum read, trailing bytes included.
// Invalid amounts, which fromNative refuses, are in bad.
func (r *avroReader) wireErr() error {
	if r.err == nil && len(r.b) != 0 {
		r.malformed("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	return r.dup
}

// uvarint reads what binary.Uvarint reads: at most ten bytes, no overflow.
func (r *avroReader) uvarint() uint64 {
	var x uint64
	for i, c := range r.b {
		if i == binary.MaxVarintLen64 {
			break
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			r.b = r.b[i+1:]
			return x | uint64(c)<<(7*i)
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	r.malformed("bad varint")
	return 0
}

func (r *avroReader) long() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// int reads an Avro int as goavro does: any long, its low 32 bits kept.
func (r *avroReader) int() int {
	u := r.uvarint()
	return int(int32(uint32(u>>1)) ^ -int32(u&1))
}

// bytes reads a string's bytes without copying them.
func (r *avroReader) bytes() []byte {
	n := r.long()
	if n < 0 || n > int64(len(r.b)) {
		r.malformed("length %d beyond the %d bytes left", n, len(r.b))
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *avroReader) str() string { return string(r.bytes()) }

func (r *avroReader) time() time.Time {
	micros := r.long()
	sec := micros / 1e6
	return time.Unix(sec, (micros-sec*1e6)*1e3).UTC()
}

// union reads the branch index of a ["null", T] union and reports whether it is T.
func (r *avroReader) union() bool {
	switch n := r.long(); {
	case r.err != nil:
		return false
	case n == 0 || n == 1:
		return n == 1
	default:
		r.malformed("bad union branch %d", n)
		return false
	}
}

// block reads the item count of the next block of an array or map, 0 at its end or on
// error. Every item is at least min bytes long, so a count the remaining bytes cannot
// hold is an error before anything is sized from it.
func (r *avroReader) block(min int) int {
	n := r.long()
	if n < 0 {
		if n == math.MinInt64 {
			r.malformed("bad block count")
			return 0
		}
		n = -n
		r.long() // the block's size in bytes
	}
	switch {
	case r.err != nil:
		return 0
	case n > int64(len(r.b)) || n > 1<<20: // guard's bounds
		r.malformed("block of %d items in %d bytes", n, len(r.b))
		return 0
	case n*int64(min) > int64(len(r.b)):
		r.malformed("block of %d items in %d bytes", n, len(r.b))
		return 0
	}
	return int(n)
}

// strs reads an array of strings as fields.strs returns it: never nil.
func (r *avroReader) strs() []string {
	var out []string
	for n := r.block(1); n > 0; n = r.block(1) {
		if out == nil {
			out = make([]string, 0, n)
		}
		for range n {
			out = append(out, r.str())
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// strMap reads a map of strings as fields.strMap returns it: never nil.
func (r *avroReader) strMap() map[string]string {
	var out map[string]string
	for n := r.block(2); n > 0; n = r.block(2) {
		if out == nil {
			out = make(map[string]string, n)
		}
		for range n {
			k, v := r.bytes(), r.str()
			if _, dup := out[string(k)]; dup && r.dup == nil {
				r.dup = fmt.Errorf("cannot decode binary map: duplicate key: %q", k)
			}
			out[string(k)] = v
		}
	}
	if out == nil {
		out = map[string]string{}
	}
	return out
}

// money reads a paystream.Money and checks it as parseMoney does.
func (r *avroReader) money() (Money, error) {
	a, c := r.bytes(), r.bytes()
	if r.err != nil {
		return Money{}, nil
	}
	if d, ok := parseAmount(a); ok && validCurrency(c) {
		if string(c) != r.currency {
			r.currency = string(c)
		}
		return Money{Amount: d, Currency: r.currency}, nil
	}
	return parseMoney(string(a), string(c))
}

// parseAmount returns what decimal.NewFromString returns for a plain decimal whose digits
// fit its int64 shortcut, and false for any other input.
func parseAmount(a []byte) (decimal.Decimal, bool) {
	if !plainDecimal(a) {
		return decimal.Decimal{}, false
	}
	var v int64
	var exp int32
	n := 0 // the length of the string NewFromString parses, sign included
	neg := a[0] == '-'
	if neg {
		a, n = a[1:], 1
	}
	for i, c := range a {
		if c == '.' {
			exp = -int32(len(a) - i - 1)
			continue
		}
		v, n = v*10+int64(c-'0'), n+1
	}
	if n > 18 {
		return decimal.Decimal{}, false
	}
	if neg {
		v = -v
	}
	return decimal.New(v, exp), true
}
