package schemas

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/paystream/paystream/schemas/catalog"
)

// genericSerde is a serde with the hand-written codecs off: native, goavro, guard and
// fromNative, the reference the hand-written codecs must match.
func genericSerde(tb testing.TB) *Serde {
	tb.Helper()
	s := embeddedSerde(tb)
	s.fast = map[int]Schema{}
	for topic, w := range s.writers {
		w.schema.kind.fast = 0
		s.writers[topic] = w
	}
	return s
}

// codecPair is the serde under test and its reference.
type codecPair struct{ fast, generic *Serde }

func newCodecPair(tb testing.TB) codecPair {
	return codecPair{fast: embeddedSerde(tb), generic: genericSerde(tb)}
}

// sameEncoding checks both serdes encode v alike, and returns the reference's bytes.
func (c codecPair) sameEncoding(tb testing.TB, topic catalog.Topic, v any) []byte {
	tb.Helper()
	want, werr := c.generic.Encode(topic, v)
	got, err := c.fast.Encode(topic, v)
	if err != nil || werr != nil {
		// goavro's own errors come unwrapped from the generic path; the fast one wraps
		// them like the others.
		if err == nil || werr == nil || (err.Error() != werr.Error() && !strings.HasSuffix(err.Error(), ": "+werr.Error())) {
			tb.Fatalf("encoding errors differ:\n fast    %v\n generic %v\nof %+v", err, werr, v)
		}
		return nil
	}
	if manyKeys(v) {
		// goavro writes a map's entries in Go's random map order: compare what they read as.
		g, gerr := c.generic.Decode(topic, got)
		w, werr := c.generic.Decode(topic, want)
		if gerr != nil || werr != nil || !reflect.DeepEqual(g, w) || len(got) != len(want) {
			tb.Fatalf("encodings read differently (%v, %v):\n fast    %+v\n generic %+v", gerr, werr, g, w)
		}
		if again, _ := c.fast.Encode(topic, v); !bytes.Equal(again, got) {
			tb.Fatalf("the fast encoding of a map changes from one call to the next")
		}
		return want
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("encodings differ:\n fast    % x\n generic % x\nof %+v", got, want, v)
	}
	return want
}

func manyKeys(v any) bool {
	p, ok := v.(*Payment)
	return ok && len(p.Metadata) > 1
}

// sameDecoding checks both serdes decode b alike: the same value, or errors of the same
// kind, and the same message where the data is well formed.
func (c codecPair) sameDecoding(tb testing.TB, topic catalog.Topic, b []byte) {
	tb.Helper()
	got, err := c.fast.Decode(topic, b)
	want, werr := c.generic.Decode(topic, b)
	if (err == nil) != (werr == nil) {
		tb.Fatalf("decoding % x on %s:\n fast    %v\n generic %v", b, topic, err, werr)
	}
	if err != nil {
		for _, kind := range []error{errGuard, ErrInvalidMoney, ErrWrongTopic, sr.ErrBadHeader, sr.ErrNotRegistered} {
			if errors.Is(err, kind) != errors.Is(werr, kind) {
				tb.Fatalf("decoding % x on %s, errors of different kinds:\n fast    %v\n generic %v", b, topic, err, werr)
			}
		}
		if !errors.Is(werr, errGuard) && strings.Contains(werr.Error(), "duplicate key") != strings.Contains(err.Error(), "duplicate key") {
			tb.Fatalf("decoding % x on %s:\n fast    %v\n generic %v", b, topic, err, werr)
		}
		if (errors.Is(werr, ErrInvalidMoney) || errors.Is(werr, ErrWrongTopic)) && err.Error() != werr.Error() {
			tb.Fatalf("decoding % x on %s, messages differ:\n fast    %v\n generic %v", b, topic, err, werr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("decoding % x on %s:\n fast    %#v\n generic %#v", b, topic, got, want)
	}
}

// gen makes random records, every field drawn from valid and edge values. With invalid
// set it also draws amounts, currencies and scores the encoders refuse.
type gen struct {
	*rand.Rand
	invalid bool
}

func newGen(seed uint64, invalid bool) gen {
	return gen{Rand: rand.New(rand.NewPCG(seed, 0x5eed)), invalid: invalid}
}

func (g gen) str() string {
	switch g.IntN(9) {
	case 0, 1:
		return ""
	case 2:
		return "ñandú € 😀 支付 \u202e"
	case 3:
		return strings.Repeat("x", 60+g.IntN(80)) // lengths on either side of a one-byte varint
	case 4:
		if g.IntN(8) == 0 {
			return strings.Repeat("é", 2000+g.IntN(8000))
		}
		return "wal-" + strconv.Itoa(g.IntN(1e6))
	case 5:
		return string([]byte{0xff, 0xfe, 0, 'a', 0x80}) // not UTF-8, with a NUL
	default:
		b := make([]byte, g.IntN(24))
		for i := range b {
			b[i] = byte(' ' + g.IntN(95))
		}
		return string(b)
	}
}

func (g gen) strs() []string {
	switch g.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+g.IntN(6))
	for i := range out {
		out[i] = g.str()
	}
	return out
}

func (g gen) metadata() map[string]string {
	switch g.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	case 2:
		return map[string]string{g.str(): g.str()}
	}
	m := map[string]string{}
	for range 2 + g.IntN(12) {
		m[g.str()+strconv.Itoa(g.IntN(100))] = g.str()
	}
	return m
}

func (g gen) time() time.Time {
	switch g.IntN(7) {
	case 0:
		return time.Time{}
	case 1:
		return time.Now() // with a monotonic reading, local
	case 2:
		return time.Unix(g.Int64N(1<<36)-1<<35, g.Int64N(1e9)).In(time.FixedZone("X", -3600*7))
	case 3:
		return time.UnixMicro(int64(g.Uint64())) // any long
	case 4:
		return time.Date(-300000+g.IntN(600000), 1, 1, 0, 0, 0, g.IntN(1e9), time.UTC) // micros overflow
	case 5:
		return time.Unix(-g.Int64N(1e10), g.Int64N(1e9)) // before 1970, with a fraction
	}
	return at
}

func (g gen) decimal() decimal.Decimal {
	switch g.IntN(10) {
	case 0:
		return decimal.Decimal{}
	case 1:
		return decimal.New(0, -int32(g.IntN(5)))
	case 2:
		return decimal.New(g.Int64N(1e6)-5e5, int32(g.IntN(6))) // positive exponent
	case 3: // up to 58 digits, the most the wire allows
		ip, fp := 1+g.IntN(40), g.IntN(19)
		s := randomDigits(g, ip, true)
		if fp > 0 {
			s += "." + randomDigits(g, fp, false)
		}
		if g.IntN(2) == 0 {
			s = "-" + s
		}
		return decimal.RequireFromString(s)
	case 4:
		return decimal.New([]int64{math.MaxInt64, math.MinInt64, 1e17, -1e17 + 1, 99999999999999999}[g.IntN(5)], -int32(g.IntN(20)))
	case 5:
		return decimal.New(g.Int64N(1e12)*int64(math.Pow10(g.IntN(6))), -int32(g.IntN(24))) // trailing zeros
	case 6:
		if g.invalid {
			// too many digits, unless trailing zeros drop
			return decimal.New(g.Int64N(1e9), -int32(15+g.IntN(10)))
		}
	case 7:
		if g.invalid {
			return decimal.NewFromBigInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(38+g.IntN(5))), nil), int32(g.IntN(3)))
		}
	}
	return decimal.New(g.Int64N(1e9)-1e8, -int32(g.IntN(4)))
}

func randomDigits(g gen, n int, lead bool) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.IntN(10))
	}
	if lead && n > 1 && b[0] == '0' {
		b[0] = '7'
	}
	return string(b)
}

func (g gen) money() Money {
	cur := []string{"KES", "EUR", "USD", "XAF"}[g.IntN(4)]
	if g.invalid && g.IntN(12) == 0 {
		cur = []string{"", "kes", "EURO", "€UR", "E1R"}[g.IntN(5)]
	}
	return Money{Amount: g.decimal(), Currency: cur}
}

func (g gen) reward() Reward {
	return Reward{Campaign: g.str(), Kind: g.str(), Amount: g.money(), Points: int64(g.Uint64())}
}

func (g gen) count() int {
	if g.IntN(5) == 0 {
		return 20 + g.IntN(150)
	}
	return g.IntN(4)
}

func (g gen) payment() *Payment {
	p := &Payment{Meta: Meta{EventID: "e" + g.str(), PaymentID: "p" + g.str(), SchemaVersion: g.IntN(5), Trace: g.str()},
		CreatedAt: g.time(), Subsidiary: g.str(), Channel: g.str(), IdempotencyKey: g.str(), Type: g.str(),
		PayerWallet: g.str(), PayeeWallet: g.str(), Amount: g.money(), Method: g.str(), Reference: g.str(),
		Metadata: g.metadata(), Description: g.str(), MCC: g.str(), Biller: g.str(), CustomerRef: g.str(),
		Phone: g.str(), Operation: g.str(), TargetPaymentID: g.str(), CaptureMode: g.str()}
	if g.IntN(3) > 0 {
		p.Validation = &Validation{Result: g.str(), ReasonCodes: g.strs(), At: g.time()}
	}
	if g.IntN(3) > 0 {
		p.Risk = &Risk{Decision: g.str(), Score: int(int32(g.Uint32())), ReasonCodes: g.strs(), At: g.time()}
		if g.invalid && g.IntN(10) == 0 {
			p.Risk.Score = 1<<31 + g.IntN(10)
		}
	}
	if g.IntN(3) > 0 {
		p.Fees = make([]FeeLine, g.count())
		for i := range p.Fees {
			p.Fees[i] = FeeLine{Code: g.str(), Amount: g.money(), VATRate: g.str(), VAT: g.money()}
		}
	}
	if g.IntN(3) > 0 {
		p.Rewards = make([]Reward, g.count())
		for i := range p.Rewards {
			p.Rewards[i] = g.reward()
		}
	}
	if g.IntN(3) > 0 {
		p.Route = &Route{Kind: g.str(), Connector: g.str(), Reason: g.str()}
	}
	if g.invalid && g.IntN(30) == 0 {
		p.EventID = ""
	}
	return p
}

func (g gen) outcome() *PaymentOutcome {
	o := &PaymentOutcome{Meta: Meta{EventID: "e" + g.str(), PaymentID: "p" + g.str(), Trace: g.str()},
		OccurredAt: g.time(), Status: g.str(), Stage: g.str(), ReasonCode: g.str(), Reason: g.str(),
		Amount: g.money(), Type: g.str()}
	if n := g.count(); n > 0 || g.IntN(2) == 0 {
		o.Postings = make([]PostingLine, n)
		for i := range o.Postings {
			o.Postings[i] = PostingLine{TransferID: g.str(), Code: g.str(), DebitAccount: g.str(), CreditAccount: g.str(), Amount: g.money()}
		}
	}
	if n := g.count(); n > 0 || g.IntN(2) == 0 {
		o.BalancesAfter = make([]BalanceAfter, n)
		for i := range o.BalancesAfter {
			o.BalancesAfter[i] = BalanceAfter{Wallet: g.str(), Account: g.str(), Balance: g.money(), Available: g.money()}
		}
	}
	if n := g.count(); n > 0 || g.IntN(2) == 0 {
		o.Fees = make([]OutcomeFee, n)
		for i := range o.Fees {
			o.Fees[i] = OutcomeFee{Code: g.str(), Amount: g.money(), VAT: g.money()}
		}
	}
	if n := g.count(); n > 0 || g.IntN(2) == 0 {
		o.Rewards = make([]Reward, n)
		for i := range o.Rewards {
			o.Rewards[i] = g.reward()
		}
	}
	if n := g.count(); n > 0 || g.IntN(2) == 0 {
		o.Decisions = make([]Decision, n)
		for i := range o.Decisions {
			o.Decisions[i] = Decision{Stage: g.str(), Decision: g.str(), Reasons: g.strs()}
		}
	}
	return o
}

func TestFastCodecSamples(t *testing.T) {
	c := newCodecPair(t)
	for _, tc := range samples() {
		t.Run(string(tc.topic), func(t *testing.T) {
			b := c.sameEncoding(t, tc.topic, tc.value)
			c.sameDecoding(t, tc.topic, b)
		})
	}
}

func TestFastCodecVariants(t *testing.T) {
	c := newCodecPair(t)
	for name, p := range map[string]*Payment{
		"requested":       newTestPayment(func(p *Payment) { p.Validation, p.Risk, p.Fees, p.Rewards, p.Route = nil, nil, nil, nil, nil }),
		"priced free":     newTestPayment(func(p *Payment) { p.Fees, p.Rewards = []FeeLine{}, []Reward{} }),
		"nil codes":       newTestPayment(func(p *Payment) { p.Validation.ReasonCodes, p.Risk.ReasonCodes = nil, nil }),
		"no metadata":     newTestPayment(func(p *Payment) { p.Metadata = nil }),
		"empty metadata":  newTestPayment(func(p *Payment) { p.Metadata = map[string]string{} }),
		"empty key":       newTestPayment(func(p *Payment) { p.Metadata = map[string]string{"": ""} }),
		"zero time":       newTestPayment(func(p *Payment) { p.CreatedAt, p.Validation.At = time.Time{}, time.Time{} }),
		"nanoseconds":     newTestPayment(func(p *Payment) { p.CreatedAt = at.Add(999 * time.Nanosecond).In(time.FixedZone("Y", 5400)) }),
		"before 1970":     newTestPayment(func(p *Payment) { p.CreatedAt = time.Date(1969, 12, 31, 23, 59, 59, 999_999_999, time.UTC) }),
		"negative score":  newTestPayment(func(p *Payment) { p.Risk.Score = math.MinInt32 }),
		"zero amount":     newTestPayment(func(p *Payment) { p.Amount.Amount = decimal.Decimal{} }),
		"exponent amount": newTestPayment(func(p *Payment) { p.Amount = Money{Amount: decimal.New(-12, 3), Currency: "EUR"} }),
		"wide amount": newTestPayment(func(p *Payment) {
			p.Amount = money("-1234567890123456789012345678901234567890.123456789012345678", "EUR")
		}),
		"many fees": newTestPayment(func(p *Payment) {
			for i := range 300 {
				p.Fees = append(p.Fees, FeeLine{Code: strconv.Itoa(i), Amount: money("0.01", "KES"), VATRate: "0.16", VAT: money("0.0016", "KES")})
			}
		}),
		"long strings": newTestPayment(func(p *Payment) { p.Description, p.Trace = strings.Repeat("ü", 70_000), strings.Repeat("t", 127) }),
	} {
		t.Run(name, func(t *testing.T) {
			for _, topic := range []catalog.Topic{catalog.PaymentsRequested, catalog.PaymentsRouted} {
				c.sameDecoding(t, topic, c.sameEncoding(t, topic, p))
			}
		})
	}
}

// TestFastEncodeRejectsAsGeneric: the same records refused, with the same message.
func TestFastEncodeRejectsAsGeneric(t *testing.T) {
	c := newCodecPair(t)
	bad := func(a, cur string) Money {
		d, err := decimal.NewFromString(a)
		if err != nil {
			t.Fatal(err)
		}
		return Money{Amount: d, Currency: cur}
	}
	for name, tc := range map[string]struct {
		topic catalog.Topic
		value any
	}{
		"currency":        {catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.Amount.Currency = "kes" })},
		"fraction digits": {catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.Amount = bad("0.0000000000000000001", "KES") })},
		"integer digits":  {catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.Amount = bad("1e40", "KES") })},
		"fee vat":         {catalog.PaymentsPriced, newTestPayment(func(p *Payment) { p.Fees[0].VAT.Currency = "" })},
		"second fee":      {catalog.PaymentsPriced, newTestPayment(func(p *Payment) { p.Fees = append(p.Fees, FeeLine{Amount: bad("1", "X")}) })},
		"reward":          {catalog.PaymentsRewarded, newTestPayment(func(p *Payment) { p.Rewards[0].Amount = bad("1e-30", "KES") })},
		"score and fee":   {catalog.PaymentsRouted, newTestPayment(func(p *Payment) { p.Risk.Score, p.Fees[0].VAT.Currency = 1<<40, "" })},
		"score":           {catalog.PaymentsRouted, newTestPayment(func(p *Payment) { p.Risk.Score = math.MaxInt32 + 1 })},
		"no event id":     {catalog.PaymentsRouted, newTestPayment(func(p *Payment) { p.EventID, p.Amount.Currency = "", "" })},
		"outcome no id":   {catalog.PaymentsOutcomes, func() *PaymentOutcome { o := newTestOutcome(); o.PaymentID = ""; return o }()},
		"outcome fee":     {catalog.PaymentsOutcomes, func() *PaymentOutcome { o := newTestOutcome(); o.Fees[0].VAT.Currency = "x"; return o }()},
		"outcome order": {catalog.PaymentsOutcomes, func() *PaymentOutcome {
			o := newTestOutcome()
			o.Fees[0].Amount.Currency, o.BalancesAfter[0].Available.Currency = "", "y"
			return o
		}()},
		"outcome postings": {catalog.PaymentsOutcomes, func() *PaymentOutcome {
			o := newTestOutcome()
			o.Rewards[0].Amount.Currency, o.Postings[0].Amount.Currency = "", "y"
			return o
		}()},
		"payment on outcome": {catalog.PaymentsOutcomes, newTestPayment()},
		"outcome on payment": {catalog.PaymentsRouted, newTestOutcome()},
	} {
		t.Run(name, func(t *testing.T) {
			if b := c.sameEncoding(t, tc.topic, tc.value); b != nil {
				t.Fatal("encoded")
			}
		})
	}
}

// withMoney encodes v with the generic encoder after every Money in its native form is
// replaced by amount and currency spellings pick draws: what another writer could send.
// It returns nil for a v the encoder refuses.
func withMoney(tb testing.TB, s *Serde, topic catalog.Topic, v record, pick func() (string, string)) []byte {
	tb.Helper()
	w := s.writers[topic]
	native, err := v.native(w.schema.Version)
	if err != nil {
		return nil
	}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if _, ok := x["currency"]; ok && len(x) == 2 {
				x["amount"], x["currency"] = pick()
				return
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(native)
	b, err := sr.AppendEncode(nil, native, s.header, w.id, nil,
		func(b []byte, v any) ([]byte, error) { return w.schema.codec.BinaryFromNative(b, v) })
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var amountSpellings = []string{"0", "-0", "1250.5", "1.50", "-0.000000000000000001", "00", "01", "1.", ".5", "-", "",
	"1e3", "1E3", " 1", "1 ", "+1", "1.2.3", "0x10", "١٢", "123456789012345678", "-123456789012345678",
	"1234567890123456789", "12345678901234567.8", "0.000000000000000000", "0.0000000000000000001",
	"1234567890123456789012345678901234567890", "12345678901234567890123456789012345678901",
	"1234567890123456789012345678901234567890.123456789012345678", "9223372036854775808", "-9223372036854775809"}

var currencySpellings = []string{"KES", "EUR", "kes", "", "EU", "EURO", "€", "E1R", "ÉUR"}

// TestFastDecodeMoneyAsGeneric: amounts and currencies of every spelling read as the
// generic path reads them, valid or not, with the same message.
func TestFastDecodeMoneyAsGeneric(t *testing.T) {
	c := newCodecPair(t)
	g := newGen(1, false)
	pick := func() (string, string) {
		if g.IntN(3) > 0 {
			return "1.5", "KES"
		}
		return amountSpellings[g.IntN(len(amountSpellings))], currencySpellings[g.IntN(len(currencySpellings))]
	}
	for range 1500 {
		if b := withMoney(t, c.generic, catalog.PaymentsRouted, g.payment(), pick); b != nil {
			c.sameDecoding(t, catalog.PaymentsRouted, b)
		}
		if b := withMoney(t, c.generic, catalog.PaymentsOutcomes, g.outcome(), pick); b != nil {
			c.sameDecoding(t, catalog.PaymentsOutcomes, b)
		}
	}
}

// TestFastCodecRandom is the property: for random records of every shape, the fast
// encoding is the generic one, and the fast decoding of it is the generic one, also of
// the bytes mangled.
func TestFastCodecRandom(t *testing.T) {
	c := newCodecPair(t)
	for seed := range uint64(4) {
		g := newGen(seed, seed%2 == 1)
		for range 500 {
			for _, tc := range []struct {
				topic catalog.Topic
				value any
			}{{catalog.PaymentsRouted, g.payment()}, {catalog.PaymentsOutcomes, g.outcome()}} {
				b := c.sameEncoding(t, tc.topic, tc.value)
				if b == nil {
					continue
				}
				c.sameDecoding(t, tc.topic, b)
				for range 8 {
					c.sameDecoding(t, tc.topic, mangle(g, b))
				}
			}
		}
	}
}

// mangle returns a copy of b with a few bytes changed, cut or added, after its header.
func mangle(g gen, b []byte) []byte {
	b = bytes.Clone(b)
	for range 1 + g.IntN(3) {
		i := 5 + g.IntN(len(b)-4)
		switch g.IntN(4) {
		case 0:
			if i < len(b) {
				b[i] = byte(g.Uint32())
			}
		case 1:
			b = b[:i]
		case 2:
			b = append(b[:i:i], append([]byte{byte(g.Uint32())}, b[i:]...)...)
		default:
			if i < len(b) {
				b[i] ^= 1 << g.IntN(8)
			}
		}
	}
	return b
}

// TestFastDecodeOddBytesAsGeneric: corrupt lengths, counts and branches are refused by
// both, before anything is sized from them; wrong topics are still wrong; well-formed
// encodings goavro does not write read the same.
func TestFastDecodeOddBytesAsGeneric(t *testing.T) {
	c := newCodecPair(t)
	payment, err := c.generic.Encode(catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.Validation, p.Risk, p.Fees, p.Rewards, p.Route = nil, nil, nil, nil, nil }))
	if err != nil {
		t.Fatal(err)
	}
	outcome, err := c.generic.Encode(catalog.PaymentsOutcomes, newTestOutcome())
	if err != nil {
		t.Fatal(err)
	}
	emptyOutcome := hugeArray(t, c.generic)[:len(hugeArray(t, c.generic))-5]
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	varint := func(v int64) []byte { return binaryVarint(v) }
	head := payment[:len(payment)-5] // up to the five null unions
	for name, tc := range map[string]struct {
		topic catalog.Topic
		b     []byte
	}{
		"wrong topic":                 {catalog.PaymentsOutcomes, payment},
		"outcome on payments":         {catalog.PaymentsRouted, outcome},
		"malformed, wrong topic":      {catalog.PaymentsOutcomes, payment[:len(payment)-1]},
		"huge postings":               {catalog.PaymentsOutcomes, hugeArray(t, c.generic)},
		"negative count":              {catalog.PaymentsOutcomes, cat(emptyOutcome, varint(-3), varint(1), []byte{0})},
		"min count":                   {catalog.PaymentsOutcomes, cat(emptyOutcome, varint(math.MinInt64))},
		"count beyond bytes":          {catalog.PaymentsOutcomes, cat(emptyOutcome, varint(4), bytes.Repeat([]byte{0}, 10), []byte{0, 0})},
		"union branch 2":              {catalog.PaymentsRouted, cat(head, varint(2), []byte{0, 0, 0, 0})},
		"union branch -1":             {catalog.PaymentsRouted, cat(head, varint(-1), []byte{0, 0, 0, 0})},
		"long varint":                 {catalog.PaymentsRouted, cat(head, bytes.Repeat([]byte{0x80}, 10), []byte{0, 0, 0, 0, 0})},
		"overflowing varint":          {catalog.PaymentsRouted, cat(head, bytes.Repeat([]byte{0xff}, 9), []byte{2, 0, 0, 0, 0})},
		"fees count 2^40":             {catalog.PaymentsRouted, cat(head, []byte{0, 0, 2}, varint(1<<40), []byte{0, 0})},
		"reason codes too many":       {catalog.PaymentsRouted, cat(head, []byte{2, 2, 'a'}, varint(3), []byte{2, 'x', 0, 0, 0, 0, 0, 0})},
		"string past the end":         {catalog.PaymentsRouted, cat(head, []byte{0, 0, 0, 0, 2}, varint(9), []byte("short"))},
		"negative length":             {catalog.PaymentsRouted, cat(head, []byte{0, 0, 0, 0, 2}, varint(-1), []byte{0, 0})},
		"trailing byte":               {catalog.PaymentsRouted, cat(payment, []byte{0})},
		"empty body":                  {catalog.PaymentsRouted, payment[:5]},
		"truncated":                   {catalog.PaymentsRouted, payment[:len(payment)-3]},
		"route present":               {catalog.PaymentsRouted, cat(head, []byte{0, 0, 0, 0, 2, 2, 'i', 0, 0})},
		"duplicate key":               {catalog.PaymentsRouted, withMetadata(t, c.generic, "\x04\x0cdevice\x06ios\x0cdevice\x06ios\x00")},
		"duplicate key in two blocks": {catalog.PaymentsRouted, withMetadata(t, c.generic, "\x02\x0cdevice\x06ios\x02\x0cdevice\x06ios\x00")},
	} {
		t.Run(name, func(t *testing.T) {
			c.sameDecoding(t, tc.topic, tc.b)
		})
	}
	// Well formed, though not as goavro writes them.
	for name, b := range map[string][]byte{
		"map in a sized block":  withMetadata(t, c.generic, "\x01\x14\x0cdevice\x06ios\x00"),
		"map in two blocks":     withMetadata(t, c.generic, "\x02\x0cdevice\x06ios\x02\x02k\x02v\x00"),
		"array in two blocks":   cat(head, []byte{2, 2, 'a', 2, 2, 'x', 2, 2, 'y', 0, 0, 0, 0, 0, 0}),
		"array in sized blocks": cat(head, []byte{2, 2, 'a', 3, 8, 2, 'x', 2, 'y', 1, 2, 0, 0, 0, 0, 0, 0, 0}),
		"long varints":          cat(head, []byte{2, 0x82, 0x80, 0x00, 'a', 0x80, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0}),
		"fees in a sized block": cat(head, []byte{0, 0, 2, 1, 12, 2, 'f', 2, '1', 6}, []byte("KES"), []byte{0, 2, '0', 6}, []byte("KES"), []byte{0, 0, 0}),
		"int beyond 32 bits":    withVersionVarint(payment, varint(1<<33|2)),
		"int of ten bytes":      withVersionVarint(payment, varint(math.MinInt64+5)),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.fast.Decode(catalog.PaymentsRouted, b); err != nil {
				t.Fatal(err)
			}
			c.sameDecoding(t, catalog.PaymentsRouted, b)
		})
	}
	if _, err := c.fast.Decode(catalog.PaymentsOutcomes, hugeArray(t, c.fast)); !errors.Is(err, errGuard) {
		t.Errorf("huge array: %v, want errGuard", err)
	}
	if _, err := c.fast.Decode(catalog.PaymentsOutcomes, payment); !errors.Is(err, ErrWrongTopic) {
		t.Errorf("payment on outcomes: %v, want ErrWrongTopic", err)
	}
}

func binaryVarint(v int64) []byte {
	w := avroWriter{}
	w.long(v)
	return w.b
}

// withVersionVarint replaces the schema_version of an encoded payment, the varint after
// the first two strings.
func withVersionVarint(b, v []byte) []byte {
	r := avroReader{b: b[5:]}
	r.str()
	r.str()
	at := len(b) - len(r.b)
	r.int()
	return bytes.Join([][]byte{b[:at], v, r.b}, nil)
}

// withMetadata is a payment whose metadata, {"device": "ios"}, is written as the map
// bytes given instead.
func withMetadata(tb testing.TB, s *Serde, metadata string) []byte {
	p := newTestPayment(func(p *Payment) { p.Metadata = map[string]string{"device": "ios"} })
	b, err := s.Encode(catalog.PaymentsRouted, p)
	if err != nil {
		tb.Fatal(err)
	}
	one := []byte("\x02\x0cdevice\x06ios\x00")
	i := bytes.Index(b, one)
	if i < 0 {
		tb.Fatal("metadata block not found")
	}
	return bytes.Join([][]byte{b[:i], []byte(metadata), b[i+len(one):]}, nil)
}

// TestPreviousVersionsTakeTheGenericPath: v1 records, the fuzz corpus' among them, are
// read by the generic path, unchanged.
func TestPreviousVersionsTakeTheGenericPath(t *testing.T) {
	c := newCodecPair(t)
	schemas, _ := Schemas()
	for _, tc := range samples() {
		rec, _ := asRecord(tc.value, reflect.TypeOf(tc.value).Elem())
		for _, sch := range schemas {
			if sch.Latest() || !carries(sch, tc.topic) {
				continue
			}
			if _, fast := c.fast.fast[sch.FixedID]; fast {
				t.Fatalf("%s is read by the hand-written codec", sch.File())
			}
			native, err := rec.native(sch.Version)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sr.AppendEncode(nil, native, &sr.ConfluentHeader{}, sch.FixedID, nil,
				func(b []byte, v any) ([]byte, error) { return sch.codec.BinaryFromNative(b, v) })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.fast.Decode(tc.topic, b); err != nil {
				t.Fatalf("reading %s: %v", sch.File(), err)
			}
			c.sameDecoding(t, tc.topic, b)
		}
	}
	entries, err := os.ReadDir("testdata/fuzz/FuzzDecodePayment")
	if err != nil || len(entries) == 0 {
		t.Fatalf("reading the v1 fuzz corpus: %v", err)
	}
	for _, e := range entries {
		text, err := os.ReadFile("testdata/fuzz/FuzzDecodePayment/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		_, line, _ := strings.Cut(strings.TrimSpace(string(text)), "\n")
		fixture, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if id := int(binary.BigEndian.Uint32([]byte(fixture[1:5]))); id != 101 {
			t.Fatalf("%s has schema id %d, want payment v1's 101", e.Name(), id)
		}
		for _, topic := range []catalog.Topic{catalog.PaymentsRouted, catalog.PaymentsOutcomes} {
			c.sameDecoding(t, topic, []byte(fixture))
		}
	}
}

// TestFastCodecWithTheRegistry: with registry ids, the hand-written codec reads exactly the
// payment and outcome versions it codes.
func TestFastCodecWithTheRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	s, err := NewSerde(t.Context(), reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := s.SchemaID(catalog.PaymentsRequested)
	oid, _ := s.SchemaID(catalog.PaymentsOutcomes)
	if len(s.fast) != 2 || s.fast[pid].Name != "payment" || s.fast[oid].Name != "payment_outcome" {
		t.Fatalf("fast ids %v, want payment %d and outcome %d", s.fast, pid, oid)
	}
	for _, tc := range samples() {
		b, err := s.Encode(tc.topic, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Decode(tc.topic, b)
		if want := withVersion(tc.value, s.writers[tc.topic].schema.Version); err != nil || !reflect.DeepEqual(v, want) {
			t.Errorf("%s: %v\n got %+v\nwant %+v", tc.topic, err, v, want)
		}
	}
}

// The plain-decimal matchers are the patterns' fast spelling.
func TestMatchersArePatterns(t *testing.T) {
	g := newGen(7, true)
	alphabet := "0123456789-.e+ A"
	inputs := append([]string{}, amountSpellings...)
	for range 20000 {
		b := make([]byte, g.IntN(62))
		for i := range b {
			b[i] = alphabet[g.IntN(len(alphabet))]
		}
		inputs = append(inputs, string(b), randomDigits(g, 1+g.IntN(45), g.IntN(2) == 0)+"."+randomDigits(g, g.IntN(21), false))
	}
	for _, s := range inputs {
		if plainDecimal([]byte(s)) != amountPattern.MatchString(s) {
			t.Errorf("plainDecimal(%q) = %v", s, plainDecimal([]byte(s)))
		}
	}
	for _, s := range append(currencySpellings, "AAA", "ZZZ", "@AA", "AA[", "ABCD", "abc") {
		if validCurrency(s) != currencyPattern.MatchString(s) {
			t.Errorf("validCurrency(%q) = %v", s, validCurrency(s))
		}
	}
	for range 20000 {
		d := g.decimal()
		a, ok := appendAmount(nil, d)
		if ok && (string(a) != d.String() || !amountPattern.MatchString(string(a))) {
			t.Errorf("appendAmount(%s) = %q, %v", d.String(), a, ok)
		}
		if s := d.String(); amountPattern.MatchString(s) {
			want, _ := decimal.NewFromString(s)
			if got, ok := parseAmount([]byte(s)); ok && !reflect.DeepEqual(got, want) {
				t.Errorf("parseAmount(%s) = %#v, want %#v", s, got, want)
			}
		}
	}
}

// newTypicalP2P is a P2P payment as the routing stage writes it: validated, screened,
// priced with two fee lines, routed.
func newTypicalP2P() *Payment {
	return newTestPayment(func(p *Payment) {
		p.Biller, p.CustomerRef, p.Phone, p.Operation, p.TargetPaymentID, p.CaptureMode = "", "", "", "", "", ""
		p.Fees = append(p.Fees, FeeLine{Code: "instant_fee", Amount: money("5", "KES"), VATRate: "0.16", VAT: money("0.8", "KES")})
		p.Rewards = nil
	})
}

// codecsToCompare are the generic path and the hand-written codec, for benchmarks.
func codecsToCompare(tb testing.TB) []struct {
	name string
	s    *Serde
} {
	c := newCodecPair(tb)
	return []struct {
		name string
		s    *Serde
	}{{"generic", c.generic}, {"fast", c.fast}}
}

func benchmarkEncode(b *testing.B, topic catalog.Topic, v any) {
	for _, tc := range codecsToCompare(b) {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.s.Encode(topic, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchmarkDecode(b *testing.B, topic catalog.Topic, v any) {
	for _, tc := range codecsToCompare(b) {
		b.Run(tc.name, func(b *testing.B) {
			enc, err := tc.s.Encode(topic, v)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.s.Decode(topic, enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodePayment(b *testing.B) {
	benchmarkEncode(b, catalog.PaymentsRouted, newTypicalP2P())
}
func BenchmarkDecodePayment(b *testing.B) {
	benchmarkDecode(b, catalog.PaymentsRouted, newTypicalP2P())
}
func BenchmarkEncodeOutcome(b *testing.B) {
	benchmarkEncode(b, catalog.PaymentsOutcomes, newTestOutcome())
}
func BenchmarkDecodeOutcome(b *testing.B) {
	benchmarkDecode(b, catalog.PaymentsOutcomes, newTestOutcome())
}
