package schemas

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/paystream/paystream/schemas/catalog"
)

// fuzzDecoder checks that arbitrary bytes never panic the decoder of topic, and that
// whatever it accepts encodes and decodes again to the same record.
func fuzzDecoder(f *testing.F, topic catalog.Topic, seed any) {
	s := embeddedSerde(f)
	valid, err := s.Encode(topic, seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:5])
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Decode(topic, b)
		if err != nil {
			return
		}
		again, err := s.Encode(topic, v)
		if err != nil {
			// The decoder accepted a value the encoder refuses: only allowed where the
			// encoder is stricter on purpose (ids present).
			if _, ok := asRecord(v, reflect.TypeOf(v).Elem()); !ok {
				t.Fatalf("decoded %T is not a record", v)
			}
			return
		}
		v2, err := s.Decode(topic, again)
		if err != nil {
			t.Fatalf("re-decoding what we encoded from a decoded record: %v", err)
		}
		// Compare encodings: decimals that parse from different spellings are equal values
		// with different internal forms.
		again2, err := s.Encode(topic, v2)
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("decode/encode/decode changed the record (%v):\n%+v\n%+v", err, v, v2)
		}
	})
}

func FuzzDecodePayment(f *testing.F) { fuzzDecoder(f, catalog.PaymentsRouted, newTestPayment()) }
func FuzzDecodePaymentOutcome(f *testing.F) {
	fuzzDecoder(f, catalog.PaymentsOutcomes, newTestOutcome())
}
func FuzzDecodeConnectorRequest(f *testing.F) {
	fuzzDecoder(f, catalog.ConnectorRequests, newTestConnectorRequest())
}
func FuzzDecodeConnectorResult(f *testing.F) {
	fuzzDecoder(f, catalog.ConnectorResults, newTestConnectorResult())
}
func FuzzDecodeStatementLine(f *testing.F) {
	fuzzDecoder(f, catalog.ReconStatements, newTestStatementLine())
}
func FuzzDecodeReconResult(f *testing.F) { fuzzDecoder(f, catalog.ReconResults, newTestReconResult()) }
