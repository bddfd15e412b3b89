package schemas

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/paystream/paystream/schemas/catalog"
)

// EnvSchemaRegistryURL names the environment variable cmd/ reads the registry URL from.
const EnvSchemaRegistryURL = "PAYSTREAM_SCHEMA_REGISTRY_URL"

// ErrWrongTopic is returned when a value or schema id does not belong to the topic.
var ErrWrongTopic = errors.New("record type does not belong to the topic")

// Serde encodes and decodes every paystream record in the Confluent wire format. It is
// safe for concurrent use.
type Serde struct {
	decoder *sr.Serde
	header  sr.SerdeHeader
	writers map[catalog.Topic]writer // newest version per topic
	readers map[int]Schema           // by schema id
}

type writer struct {
	id     int
	schema Schema
}

// NewSerde returns a serde whose schema ids come from the Schema Registry at registryURL,
// registering every schema version there first, or from the fixed embedded table when
// registryURL is empty. opts configure the registry client (auth, TLS).
func NewSerde(ctx context.Context, registryURL string, opts ...sr.ClientOpt) (*Serde, error) {
	schemas, err := Schemas()
	if err != nil {
		return nil, err
	}
	s := &Serde{decoder: sr.NewSerde(sr.Header(&sr.ConfluentHeader{})), header: &sr.ConfluentHeader{},
		writers: map[catalog.Topic]writer{}, readers: map[int]Schema{}}
	var cl *sr.Client
	if registryURL != "" {
		if cl, err = sr.NewClient(append([]sr.ClientOpt{sr.URLs(registryURL)}, opts...)...); err != nil {
			return nil, fmt.Errorf("creating schema registry client: %w", err)
		}
	}
	for _, sch := range schemas {
		for _, topic := range sch.Topics {
			id := sch.FixedID
			if cl != nil {
				ss, err := cl.CreateSchema(ctx, Subject(topic), sr.Schema{Schema: sch.Text, Type: sr.TypeAvro})
				if err != nil {
					return nil, fmt.Errorf("registering %s under %s: %w", sch.File(), Subject(topic), err)
				}
				id = ss.ID
			}
			s.register(id, sch)
			if sch.Latest() {
				s.writers[topic] = writer{id: id, schema: sch}
			}
		}
	}
	return s, nil
}

// Subject is the registry subject of a topic's values (TopicNameStrategy).
func Subject(topic catalog.Topic) string { return string(topic) + "-value" }

func (s *Serde) register(id int, sch Schema) {
	if _, done := s.readers[id]; done {
		return
	}
	s.readers[id] = sch
	s.decoder.Register(id, reflect.New(sch.kind.typ).Elem().Interface(), sr.DecodeFn(func(b []byte, v any) error {
		rec, ok := v.(record)
		if !ok {
			return fmt.Errorf("decoding %s: %T is not a paystream record", sch.File(), v)
		}
		if err := sch.guard.check(b); err != nil {
			return fmt.Errorf("decoding %s: %w", sch.File(), err)
		}
		native, rest, err := sch.codec.NativeFromBinary(b)
		if err != nil {
			return fmt.Errorf("decoding %s: %w", sch.File(), err)
		}
		if len(rest) != 0 {
			return fmt.Errorf("decoding %s: %d trailing bytes", sch.File(), len(rest))
		}
		return rec.fromNative(native)
	}))
}

// Encode encodes v, a record type (value or pointer) that topic carries, with the newest
// schema version, framed with its schema id.
func (s *Serde) Encode(topic catalog.Topic, v any) ([]byte, error) {
	w, ok := s.writers[topic]
	if !ok {
		return nil, fmt.Errorf("encoding for %s: no schema carries this topic", topic)
	}
	rec, ok := asRecord(v, w.schema.kind.typ)
	if !ok {
		return nil, fmt.Errorf("encoding %T for %s: %w (want %s)", v, topic, ErrWrongTopic, w.schema.kind.typ.Name())
	}
	native, err := rec.native(w.schema.Version)
	if err != nil {
		return nil, fmt.Errorf("encoding %s for %s: %w", w.schema.kind.typ.Name(), topic, err)
	}
	return sr.AppendEncode(nil, native, s.header, w.id, nil, func(b []byte, v any) ([]byte, error) {
		return w.schema.codec.BinaryFromNative(b, v)
	})
}

func asRecord(v any, typ reflect.Type) (record, bool) {
	rv := reflect.ValueOf(v)
	switch {
	case !rv.IsValid():
		return nil, false
	case rv.Type() == typ:
		p := reflect.New(typ)
		p.Elem().Set(rv)
		return p.Interface().(record), true
	case rv.Type() == reflect.PointerTo(typ) && !rv.IsNil():
		return v.(record), true
	}
	return nil, false
}

// Decode decodes a record of topic, returning a pointer to its Go type (*Payment, ...).
// Any input, however malformed, gives an error, never a panic.
func (s *Serde) Decode(topic catalog.Topic, b []byte) (any, error) {
	v, err := s.decoder.DecodeNew(b)
	if err != nil {
		return nil, fmt.Errorf("decoding record of %s: %w", topic, err)
	}
	id, _, _ := s.decoder.DecodeID(b)
	if sch := s.readers[id]; !carries(sch, topic) {
		return nil, fmt.Errorf("decoding record of %s: schema id %d (%s): %w", topic, id, sch.File(), ErrWrongTopic)
	}
	return v, nil
}

func carries(sch Schema, topic catalog.Topic) bool {
	for _, t := range sch.Topics {
		if t == topic {
			return true
		}
	}
	return false
}

// SchemaID returns the id the serde writes for topic.
func (s *Serde) SchemaID(topic catalog.Topic) (int, bool) {
	w, ok := s.writers[topic]
	return w.id, ok
}
