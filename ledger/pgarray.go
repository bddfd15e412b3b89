package ledger

import (
	"encoding/hex"
	"strconv"
)

// The posting path sends its columns as PostgreSQL array literals in text form. pgx sends
// a string argument in the text format whatever the parameter's type, and the server
// parses "{1,2,3}" about as fast as the binary form; pgx's binary encoding of a []int64
// or []string goes through a generic path that boxes every element, which was a third of
// a batch's Go time.

// intArray renders xs as an array literal: {1,-2,3}.
func intArray[T ~int64 | ~int16](xs []T) string {
	buf := make([]byte, 0, 2+len(xs)*8)
	buf = append(buf, '{')
	for i, x := range xs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, int64(x), 10)
	}
	return string(append(buf, '}'))
}

// textArray renders xs as an array literal of quoted elements ("a","b\"c"), so no value
// reads as NULL and none needs more than a backslash before " and \.
func textArray(xs []string) string {
	n := 2
	for _, x := range xs {
		n += len(x) + 3
	}
	buf := make([]byte, 0, n)
	buf = append(buf, '{')
	for i, x := range xs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		for j := 0; j < len(x); j++ {
			if c := x[j]; c == '"' || c == '\\' {
				buf = append(buf, '\\', c)
			} else {
				buf = append(buf, c)
			}
		}
		buf = append(buf, '"')
	}
	return string(append(buf, '}'))
}

// byteaArray renders xs as an array literal of bytea values in hex form ("\\x0a1b").
func byteaArray(xs [][]byte) string {
	buf := make([]byte, 0, 2+len(xs)*(7+64))
	buf = append(buf, '{')
	for i, x := range xs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `"\\x`...)
		buf = hex.AppendEncode(buf, x)
		buf = append(buf, '"')
	}
	return string(append(buf, '}'))
}

// numericArray renders minor units as an array literal of NUMERICs with exactly their
// currency's fraction digits ({12.34,-0.50,7.00}): the values units * currencies.unit
// would give, without a join and a multiplication per value in the database.
func numericArray(units []int64, exp func(i int) int32) string {
	buf := make([]byte, 0, 2+len(units)*10)
	buf = append(buf, '{')
	for i, u := range units {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendUnits(buf, u, exp(i))
	}
	return string(append(buf, '}'))
}

// appendUnits appends u minor units of a currency with exp fraction digits as a decimal.
func appendUnits(buf []byte, u int64, exp int32) []byte {
	mag := uint64(u)
	if u < 0 {
		buf = append(buf, '-')
		mag = -mag
	}
	var d [24]byte
	digits := strconv.AppendUint(d[:0], mag, 10)
	e := int(exp)
	switch {
	case e <= 0:
		return append(buf, digits...)
	case len(digits) <= e:
		buf = append(buf, '0', '.')
		for range e - len(digits) {
			buf = append(buf, '0')
		}
		return append(buf, digits...)
	}
	buf = append(buf, digits[:len(digits)-e]...)
	buf = append(buf, '.')
	return append(buf, digits[len(digits)-e:]...)
}

// nonZero is render(xs), or nil (NULL) when every value is zero.
func nonZero[T ~int64 | ~int16](xs []T, render func([]T) string) any {
	for _, x := range xs {
		if x != 0 {
			return render(xs)
		}
	}
	return nil
}
