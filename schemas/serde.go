package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/linkedin/goavro/v2"
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
	kinds   map[string]kind          // by Avro full name of the record
	fast    map[int]Schema           // ids whose version fastcodec.go reads; fixed by NewSerde

	mu       sync.RWMutex
	readers  map[int]Schema // by schema id
	missing  map[int]bool   // ids the registry does not know
	registry *sr.Client     // nil without a registry
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
		writers: map[catalog.Topic]writer{}, kinds: map[string]kind{}, fast: map[int]Schema{},
		readers: map[int]Schema{}, missing: map[int]bool{}}
	for _, sch := range schemas {
		name, err := recordName(sch.Text)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", sch.File(), err)
		}
		s.kinds[name] = sch.kind
	}
	var cl *sr.Client
	if registryURL != "" {
		if cl, err = sr.NewClient(append([]sr.ClientOpt{sr.URLs(registryURL)}, opts...)...); err != nil {
			return nil, fmt.Errorf("creating schema registry client: %w", err)
		}
		s.registry = cl
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
			if sch.fast() {
				s.fast[id] = sch
			}
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
	s.mu.Lock()
	defer s.mu.Unlock()
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
	if fr, ok := rec.(fastRecord); ok && w.schema.fast() {
		b, _ := s.header.AppendEncode(make([]byte, 0, encodeCap), w.id, nil)
		b, err := fr.appendAvro(b, w.schema.Version)
		if err != nil {
			return nil, fmt.Errorf("encoding %s for %s: %w", w.schema.kind.typ.Name(), topic, err)
		}
		return b, nil
	}
	native, err := rec.native(w.schema.Version)
	if err != nil {
		return nil, fmt.Errorf("encoding %s for %s: %w", w.schema.kind.typ.Name(), topic, err)
	}
	return sr.AppendEncode(nil, native, s.header, w.id, nil, func(b []byte, v any) ([]byte, error) {
		return w.schema.codec.BinaryFromNative(b, v)
	})
}

// encodeCap is the buffer Encode starts with: a payment through every stage takes about
// 350 bytes.
const encodeCap = 512

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
//
// With a registry, a schema id this process does not know (a newer writer's version) is
// fetched from the registry once and read with the Go type of its record name, so readers
// may be upgraded after writers.
func (s *Serde) Decode(topic catalog.Topic, b []byte) (any, error) {
	if id, body, err := s.header.DecodeID(b); err == nil {
		if sch, ok := s.fast[id]; ok {
			return decodeFast(topic, id, sch, body)
		}
	}
	v, err := s.decoder.DecodeNew(b)
	if errors.Is(err, sr.ErrNotRegistered) && s.registry != nil {
		if lerr := s.learn(b); lerr != nil {
			return nil, fmt.Errorf("decoding record of %s: %w", topic, lerr)
		}
		v, err = s.decoder.DecodeNew(b)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding record of %s: %w", topic, err)
	}
	id, _, _ := s.decoder.DecodeID(b)
	s.mu.RLock()
	sch := s.readers[id]
	s.mu.RUnlock()
	if !carries(sch, topic) {
		return nil, fmt.Errorf("decoding record of %s: schema id %d (%s): %w", topic, id, sch.File(), ErrWrongTopic)
	}
	return v, nil
}

// decodeFast is Decode with the hand-written codec: the same value, the same errors.
func decodeFast(topic catalog.Topic, id int, sch Schema, body []byte) (any, error) {
	rec, ok := sch.kind.newRec().(fastRecord)
	if !ok {
		return nil, fmt.Errorf("decoding record of %s: %s has no hand-written codec", topic, sch.File())
	}
	r := avroReader{b: body}
	rec.readAvro(&r)
	if err := r.wireErr(); err != nil {
		return nil, fmt.Errorf("decoding record of %s: decoding %s: %w", topic, sch.File(), err)
	}
	if r.bad != nil {
		return nil, fmt.Errorf("decoding record of %s: %w", topic, r.bad)
	}
	if !carries(sch, topic) {
		return nil, fmt.Errorf("decoding record of %s: schema id %d (%s): %w", topic, id, sch.File(), ErrWrongTopic)
	}
	return rec, nil
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

// learnTimeout bounds one registry lookup of an unknown schema id.
const learnTimeout = 5 * time.Second

// learn fetches the writer schema of b from the registry and registers it for decoding.
func (s *Serde) learn(b []byte) error {
	id, _, err := s.decoder.DecodeID(b)
	if err != nil {
		return err
	}
	s.mu.RLock()
	missing := s.missing[id]
	s.mu.RUnlock()
	if missing {
		return fmt.Errorf("schema id %d: %w", id, sr.ErrNotRegistered)
	}
	ctx, cancel := context.WithTimeout(context.Background(), learnTimeout)
	defer cancel()
	got, err := s.registry.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			s.mu.Lock()
			s.missing[id] = true
			s.mu.Unlock()
		}
		return fmt.Errorf("looking up schema id %d: %w", id, err)
	}
	if got.Type != sr.TypeAvro {
		return fmt.Errorf("schema id %d is %s, not Avro", id, got.Type)
	}
	name, err := recordName(got.Schema)
	if err != nil {
		return fmt.Errorf("schema id %d: %w", id, err)
	}
	k, ok := s.kinds[name]
	if !ok {
		return fmt.Errorf("schema id %d is record %s, which paystream does not read", id, name)
	}
	sch := Schema{Name: k.name, FixedID: id, Text: got.Schema, Topics: k.topics, kind: k}
	if sch.codec, err = goavro.NewCodec(sch.Text); err != nil {
		return fmt.Errorf("compiling schema id %d: %w", id, err)
	}
	if sch.guard, err = newGuard(sch.Text); err != nil {
		return fmt.Errorf("compiling schema id %d: %w", id, err)
	}
	s.register(id, sch)
	return nil
}

// recordName returns the full name of the top-level record of a schema.
func recordName(text string) (string, error) {
	var top struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	if err := json.Unmarshal([]byte(text), &top); err != nil || top.Name == "" {
		return "", fmt.Errorf("finding the record name: not a named record schema (%v)", err)
	}
	if top.Namespace == "" {
		return top.Name, nil
	}
	return top.Namespace + "." + top.Name, nil
}
