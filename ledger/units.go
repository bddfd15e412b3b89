package ledger

import (
	"math"

	"github.com/shopspring/decimal"
)

// maxUnits bounds an amount in minor units. The posting engine computes in int64 minor
// units (no big-number allocation per leg); with amounts below 10^17 units, balances
// have room for 90 of the largest amounts before int64 could overflow, and balance
// reads cast to bigint, so an overflow would fail loudly, never wrap. Amounts are below it.
const maxUnits = int64(1e17)

var pow10 = [...]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// toUnits converts an amount already checked to have at most exp fraction digits into
// minor units. ok is false when it does not fit.
func toUnits(d decimal.Decimal, exp int32) (int64, bool) {
	if d.NumDigits() > 18 {
		return 0, false
	}
	c, k := d.CoefficientInt64(), d.Exponent()+exp
	switch {
	case k >= 0 && int(k) < len(pow10):
		if lim := (maxUnits - 1) / pow10[k]; c > lim || c < -lim {
			return 0, false
		}
		return c * pow10[k], true
	case k < 0 && int(-k) < len(pow10):
		return c / pow10[-k], true // exact: the amount has no more than exp fraction digits
	}
	return 0, c == 0
}

func fromUnits(u int64, exp int32) decimal.Decimal { return decimal.New(u, -exp) }

// parseUnits reads a NUMERIC in text form ("-1234.5") as minor units of a currency with
// exp fraction digits; ok is false if it has more digits or does not fit.
func parseUnits(s []byte, exp int32) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, false
	}
	var v int64
	frac := int32(-1)
	for _, c := range s {
		switch {
		case c == '.' && frac < 0:
			frac = 0
		case c >= '0' && c <= '9':
			if frac >= 0 {
				if frac == exp {
					if c != '0' {
						return 0, false
					}
					continue
				}
				frac++
			}
			if v > (math.MaxInt64-9)/10 {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		default:
			return 0, false
		}
	}
	if frac < 0 {
		frac = 0
	}
	for ; frac < exp; frac++ {
		if v > math.MaxInt64/10 {
			return 0, false
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, true
}

// ceilUnits and floorUnits are parseUnits rounding extra fraction digits up or down (a
// minimum set finer than the currency is read on the strict side); 0 if unreadable.
func ceilUnits(s []byte, exp int32) int64 { return roundUnits(s, exp, decimal.Decimal.Ceil) }

func floorUnits(s []byte, exp int32) int64 { return roundUnits(s, exp, decimal.Decimal.Floor) }

func roundUnits(s []byte, exp int32, round func(decimal.Decimal) decimal.Decimal) int64 {
	if v, ok := parseUnits(s, exp); ok {
		return v
	}
	d, err := decimal.NewFromString(string(s))
	if err != nil {
		return 0
	}
	v, _ := toUnits(round(d.Shift(exp)).Shift(-exp), exp)
	return v
}
