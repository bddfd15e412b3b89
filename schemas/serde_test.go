package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/paystream/paystream/schemas/catalog"
)

func embeddedSerde(t testing.TB) *Serde {
	t.Helper()
	s, err := NewSerde(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type sample struct {
	topic catalog.Topic
	value any
}

func samples() []sample {
	return []sample{
		{catalog.PaymentsRequested, newTestPayment(func(p *Payment) {
			p.Validation, p.Risk, p.Fees, p.Rewards, p.Route = nil, nil, nil, nil, nil
		})},
		{catalog.PaymentsRouted, newTestPayment()},
		{catalog.PaymentsPriced, newTestPayment(func(p *Payment) { p.Fees = []FeeLine{}; p.Rewards = nil })},
		{catalog.PaymentsOutcomes, newTestOutcome()},
		{catalog.ConnectorRequests, newTestConnectorRequest()},
		{catalog.ConnectorResults, newTestConnectorResult()},
		{catalog.ReconStatements, newTestStatementLine()},
		{catalog.ReconResults, newTestReconResult()},
	}
}

// withVersion returns a copy of a record pointer with SchemaVersion set, as decoding sets it.
func withVersion(v any, version int) any {
	p := reflect.New(reflect.TypeOf(v).Elem())
	p.Elem().Set(reflect.ValueOf(v).Elem())
	p.Elem().FieldByName("Meta").FieldByName("SchemaVersion").SetInt(int64(version))
	return p.Interface()
}

func TestRoundTrip(t *testing.T) {
	s := embeddedSerde(t)
	for _, tc := range samples() {
		t.Run(string(tc.topic), func(t *testing.T) {
			b, err := s.Encode(tc.topic, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := s.SchemaID(tc.topic)
			if b[0] != 0 || int(binary.BigEndian.Uint32(b[1:5])) != id {
				t.Fatalf("header % x, want magic 0 and schema id %d", b[:5], id)
			}
			got, err := s.Decode(tc.topic, b)
			if err != nil {
				t.Fatal(err)
			}
			if want := withVersion(tc.value, s.writers[tc.topic].schema.Version); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the record:\n got %+v\nwant %+v", got, want)
			}
			// A value (not a pointer) encodes the same.
			b2, err := s.Encode(tc.topic, reflect.ValueOf(tc.value).Elem().Interface())
			if err != nil || !bytes.Equal(b, b2) {
				t.Errorf("encoding by value: %v, equal %v", err, bytes.Equal(b, b2))
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	s := embeddedSerde(t)
	for name, tc := range map[string]struct {
		topic catalog.Topic
		value any
		err   error
	}{
		"payment on outcomes": {catalog.PaymentsOutcomes, newTestPayment(), ErrWrongTopic},
		"nil":                 {catalog.PaymentsRequested, nil, ErrWrongTopic},
		"nil pointer":         {catalog.PaymentsRequested, (*Payment)(nil), ErrWrongTopic},
		"no event id":         {catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.EventID = "" }), ErrMissingField},
		"no payment id":       {catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.PaymentID = "" }), ErrMissingField},
		"bad currency":        {catalog.PaymentsRequested, newTestPayment(func(p *Payment) { p.Amount.Currency = "kes" }), ErrInvalidMoney},
		"bad fee currency": {catalog.PaymentsPriced, newTestPayment(func(p *Payment) {
			p.Fees[0].VAT.Currency = ""
		}), ErrInvalidMoney},
		"too many digits": {catalog.PaymentsRequested, newTestPayment(func(p *Payment) {
			p.Amount = money("0.0000000000000000001", "KES")
		}), ErrInvalidMoney},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Encode(tc.topic, tc.value); !errors.Is(err, tc.err) {
				t.Errorf("Encode = %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := s.Encode("no.such.topic", newTestPayment()); err == nil {
		t.Error("encoded for a topic without a schema")
	}
}

func TestDecodeRejects(t *testing.T) {
	s := embeddedSerde(t)
	payment, err := s.Encode(catalog.PaymentsRequested, newTestPayment())
	if err != nil {
		t.Fatal(err)
	}
	badAmount := bytes.Replace(payment, []byte("1250.5"), []byte("1.25e3"), 1)
	unknownID := append([]byte{0, 0, 0, 0x7f, 0x7f}, payment[5:]...)
	for name, tc := range map[string]struct {
		topic catalog.Topic
		b     []byte
	}{
		"empty":            {catalog.PaymentsRequested, nil},
		"no magic":         {catalog.PaymentsRequested, append([]byte{1}, payment[1:]...)},
		"unknown id":       {catalog.PaymentsRequested, unknownID},
		"wrong topic":      {catalog.PaymentsOutcomes, payment},
		"truncated":        {catalog.PaymentsRequested, payment[:len(payment)-3]},
		"trailing bytes":   {catalog.PaymentsRequested, append(append([]byte{}, payment...), 0)},
		"exponent amount":  {catalog.PaymentsRequested, badAmount},
		"huge array count": {catalog.PaymentsOutcomes, hugeArray(t, s)},
	} {
		t.Run(name, func(t *testing.T) {
			if v, err := s.Decode(tc.topic, tc.b); err == nil {
				t.Errorf("Decode succeeded: %+v", v)
			}
		})
	}
	if _, err := s.Decode(catalog.PaymentsOutcomes, hugeArray(t, s)); !errors.Is(err, errGuard) {
		t.Errorf("huge array: %v, want the guard to refuse it before goavro allocates", err)
	}
}

// hugeArray is an outcome whose postings claim 2^30 items: without the guard, goavro
// would allocate 16 GiB for it before failing.
func hugeArray(t testing.TB, s *Serde) []byte {
	o := newTestOutcome()
	o.Postings, o.BalancesAfter = nil, nil
	b, err := s.Encode(catalog.PaymentsOutcomes, o)
	if err != nil {
		t.Fatal(err)
	}
	// The record ends with two empty arrays (0x00 0x00); claim 2^30 postings instead.
	b = b[:len(b)-2]
	return binary.AppendVarint(b, 1<<30)
}

func TestSchemasAreFrozenOnceReleased(t *testing.T) {
	schemas, err := Schemas()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range schemas {
		seen[s.File()] = true
		frozen, err := os.ReadFile("testdata/" + s.File()[len("avro/"):])
		if err != nil {
			t.Errorf("%s has no frozen copy in testdata/: copy it there when releasing a version", s.File())
			continue
		}
		if string(frozen) != s.Text {
			t.Errorf("%s differs from its released copy in testdata/: add version %d instead of editing it",
				s.File(), s.Version+1)
		}
	}
	entries, err := os.ReadDir("avro")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen["avro/"+e.Name()] {
			t.Errorf("avro/%s is not in the schema table", e.Name())
		}
	}
}

// TestReadsPreviousVersions writes each sample with every older version of its schema and
// reads it back with the current serde.
func TestReadsPreviousVersions(t *testing.T) {
	s := embeddedSerde(t)
	schemas, _ := Schemas()
	for _, tc := range samples() {
		rec, _ := asRecord(tc.value, reflect.TypeOf(tc.value).Elem())
		for _, sch := range schemas {
			if sch.Latest() || !carries(sch, tc.topic) {
				continue
			}
			native, err := rec.native(sch.Version)
			if err != nil {
				t.Fatal(err)
			}
			b, err := sr.AppendEncode(nil, native, &sr.ConfluentHeader{}, sch.FixedID, nil,
				func(b []byte, v any) ([]byte, error) { return sch.codec.BinaryFromNative(b, v) })
			if err != nil {
				t.Fatalf("writing with %s: %v", sch.File(), err)
			}
			if _, err := s.Decode(tc.topic, b); err != nil {
				t.Errorf("reading %s data: %v", sch.File(), err)
			}
		}
	}
}

// TestReadsWritersWithoutOptionalFields writes each sample with its schema stripped of
// every field that has a default, the oldest shape a compatible writer can have, and
// checks the decoder fills the absent fields with zero values instead of failing.
func TestReadsWritersWithoutOptionalFields(t *testing.T) {
	schemas, _ := Schemas()
	for _, tc := range samples() {
		for _, sch := range schemas {
			if !sch.Latest() || !carries(sch, tc.topic) {
				continue
			}
			t.Run(string(tc.topic), func(t *testing.T) {
				stripped := stripDefaulted(t, sch.Text)
				rec, _ := asRecord(tc.value, reflect.TypeOf(tc.value).Elem())
				native, err := rec.native(sch.Version)
				if err != nil {
					t.Fatal(err)
				}
				bin, err := stripped.BinaryFromNative(nil, native)
				if err != nil {
					t.Fatalf("writing with the stripped schema: %v", err)
				}
				back, _, err := stripped.NativeFromBinary(bin)
				if err != nil {
					t.Fatal(err)
				}
				got := sch.kind.newRec()
				if err := got.fromNative(back); err != nil {
					t.Fatalf("reading a writer without optional fields: %v", err)
				}
				meta := reflect.ValueOf(got).Elem().FieldByName("Meta").Interface().(Meta)
				want := reflect.ValueOf(tc.value).Elem().FieldByName("Meta").Interface().(Meta)
				if meta.EventID != want.EventID || meta.PaymentID != want.PaymentID || meta.Trace != "" {
					t.Errorf("meta %+v, want ids of %+v and an empty trace", meta, want)
				}
			})
		}
	}
}

func TestSchemaRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	ctx := context.Background()
	s, err := NewSerde(ctx, reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range samples() {
		if !reg.SubjectExists(Subject(tc.topic)) {
			t.Errorf("subject %s not registered", Subject(tc.topic))
		}
	}
	for _, tc := range samples() {
		b, err := s.Encode(tc.topic, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := s.SchemaID(tc.topic)
		cl, _ := sr.NewClient(sr.URLs(reg.URL()))
		got, err := cl.SchemaByID(ctx, id)
		if err != nil || got.Schema == "" {
			t.Fatalf("schema id %d of %s not in the registry: %v", id, tc.topic, err)
		}
		// A second process registering again gets the same ids and reads the records.
		again, err := NewSerde(ctx, reg.URL())
		if err != nil {
			t.Fatal(err)
		}
		if id2, _ := again.SchemaID(tc.topic); id2 != id {
			t.Errorf("%s: re-registering gave id %d, first %d", tc.topic, id2, id)
		}
		v, err := again.Decode(tc.topic, b)
		if err != nil || !reflect.DeepEqual(v, withVersion(tc.value, again.writers[tc.topic].schema.Version)) {
			t.Errorf("%s: registry round trip: %v", tc.topic, err)
		}
	}
	if _, err := NewSerde(ctx, "http://127.0.0.1:1"); err == nil {
		t.Error("NewSerde with an unreachable registry succeeded")
	}
}

// TestReadsANewerWriterThroughTheRegistry: a writer already on a newer version of the
// payment schema (here one more field with a default) is read by an older process, which
// learns the writer schema from the registry.
func TestReadsANewerWriterThroughTheRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	ctx := context.Background()
	reader, err := NewSerde(ctx, reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	schemas, _ := Schemas()
	var latest Schema
	for _, s := range schemas {
		if s.Name == "payment" && s.Latest() {
			latest = s
		}
	}
	next := latest.Version + 1
	newer := strings.Replace(latest.Text, `"fields": [`,
		`"fields": [`+"\n"+`    {"name": "device_id", "type": "string", "default": ""},`, 1)
	id, _, err := reg.RegisterSchema(Subject(catalog.PaymentsRequested), sr.Schema{Schema: newer, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	codec, err := goavro.NewCodec(newer)
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPayment()
	native, err := p.native(next)
	if err != nil {
		t.Fatal(err)
	}
	native["device_id"] = "ios-17"
	b, err := sr.AppendEncode(nil, native, &sr.ConfluentHeader{}, id, nil,
		func(b []byte, v any) ([]byte, error) { return codec.BinaryFromNative(b, v) })
	if err != nil {
		t.Fatal(err)
	}
	got, err := reader.Decode(catalog.PaymentsRequested, b)
	if err != nil {
		t.Fatalf("reading a newer writer: %v", err)
	}
	if !reflect.DeepEqual(got, withVersion(p, next)) {
		t.Errorf("newer writer read as\n%+v\nwant\n%+v", got, withVersion(p, next))
	}
	if _, err := reader.Decode(catalog.PaymentsOutcomes, b); !errors.Is(err, ErrWrongTopic) {
		t.Errorf("a payment on payments.outcomes: %v, want ErrWrongTopic", err)
	}
	unknown := append([]byte{0, 0, 1, 0, 0}, b[5:]...)
	for range 2 {
		if _, err := reader.Decode(catalog.PaymentsRequested, unknown); err == nil {
			t.Error("decoded a record whose schema id the registry does not know")
		}
	}
}
