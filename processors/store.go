package processors

import (
	"fmt"
	"maps"
)

// stateKey names one stateful stage's state of one partition.
type stateKey struct {
	stage     int // index in the hop
	partition int32
}

// store keeps committed per-key state in memory and stages a transaction's writes beside
// it, so an aborted transaction leaves no trace. Memory per key is the key and value
// (bounded by maxKey and maxValue) plus Go map overhead of roughly 100 bytes.
type store struct {
	maxKey, maxValue int
	committed        map[stateKey]map[string][]byte
	txn              map[stateKey]map[string][]byte // nil value: deleted in this transaction
}

func newStore(maxKey, maxValue int) *store {
	return &store{maxKey: maxKey, maxValue: maxValue,
		committed: map[stateKey]map[string][]byte{}, txn: map[stateKey]map[string][]byte{}}
}

func (s *store) loaded(k stateKey) bool { _, ok := s.committed[k]; return ok }

func (s *store) load(k stateKey, m map[string][]byte) { s.committed[k] = m }

func (s *store) drop(partition int32) {
	for k := range s.committed {
		if k.partition == partition {
			delete(s.committed, k)
		}
	}
	for k := range s.txn {
		if k.partition == partition {
			delete(s.txn, k)
		}
	}
}

func (s *store) commit() {
	for k, writes := range s.txn {
		c := s.committed[k]
		if c == nil {
			continue // the partition was dropped mid-transaction
		}
		for key, v := range writes {
			if v == nil {
				delete(c, key)
			} else {
				c[key] = v
			}
		}
	}
	clear(s.txn)
}

func (s *store) abort() { clear(s.txn) }

func (s *store) get(k stateKey, key string) ([]byte, bool) {
	if v, ok := s.txn[k][key]; ok {
		return v, v != nil
	}
	v, ok := s.committed[k][key]
	return v, ok
}

// recordState is the State one stage call sees: it reads through to the transaction and
// the committed state, and keeps its own writes until the call succeeds. Setting an empty
// value deletes the key.
type recordState struct {
	s      *store
	k      stateKey
	writes map[string][]byte
}

func (r *recordState) Get(key string) ([]byte, bool) {
	if v, ok := r.writes[key]; ok {
		return v, v != nil
	}
	return r.s.get(r.k, key)
}

func (r *recordState) Set(key string, value []byte) error {
	if len(key) > r.s.maxKey || len(value) > r.s.maxValue {
		return Permanent(fmt.Errorf("%w: key %d bytes (max %d), value %d bytes (max %d)",
			ErrStateTooLarge, len(key), r.s.maxKey, len(value), r.s.maxValue))
	}
	if len(value) == 0 {
		r.Delete(key) // a changelog tombstone cannot tell empty from deleted
		return nil
	}
	if r.writes == nil {
		r.writes = map[string][]byte{}
	}
	r.writes[key] = append([]byte(nil), value...)
	return nil
}

func (r *recordState) Delete(key string) {
	if r.writes == nil {
		r.writes = map[string][]byte{}
	}
	r.writes[key] = nil
}

// keep moves the call's writes into the transaction.
func (r *recordState) keep() {
	if len(r.writes) == 0 {
		return
	}
	t := r.s.txn[r.k]
	if t == nil {
		t = map[string][]byte{}
		r.s.txn[r.k] = t
	}
	maps.Copy(t, r.writes)
}

// noState is the State of a stateless stage.
type noState struct{}

func (noState) Get(string) ([]byte, bool) { return nil, false }
func (noState) Set(string, []byte) error {
	return Permanent(fmt.Errorf("setting state: the stage is not declared Stateful"))
}
func (noState) Delete(string) {}
