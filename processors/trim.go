package processors

import (
	"context"
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// trimmer bounds a changelog on a broker that never drops its transaction markers
// (Config.TrimChangelogs). Once a partition's changelog has taken more transactions since
// its last copy than the state has keys (and at least minTrimTxns), a transaction
// rewrites the partition's whole committed state ahead of its own writes, and once it
// commits, everything before that copy is deleted: the copy and what follows it are the
// state, so a restore reads the same. A transaction that aborts deletes nothing and the
// copy is made again. The log then stays within a few times the state's own size, and
// the copies cost at most one record per transaction marker they remove.
type trimmer struct {
	on     bool
	floor  int              // transactions a copy waits for at least
	writes map[stateKey]int // transactions that wrote the state's changelog since its copy

	mu      sync.Mutex
	anchors map[stateKey]int64 // offset of this transaction's first copied record, per state
}

// minTrimTxns keeps a small state from being copied after every few transactions.
const minTrimTxns = 64

func newTrimmer(on bool, floor int) *trimmer {
	if floor <= 0 {
		floor = minTrimTxns
	}
	return &trimmer{on: on, floor: floor, writes: map[stateKey]int{}, anchors: map[stateKey]int64{}}
}

// wrote counts a transaction that writes the changelog of k.
func (t *trimmer) wrote(k stateKey) {
	if t.on {
		t.writes[k]++
	}
}

func (t *trimmer) drop(partition int32) {
	for k := range t.writes {
		if k.partition == partition {
			delete(t.writes, k)
		}
	}
}

// copyDue produces the committed state of every state whose copy is due to its changelog
// partition, and returns those states. It must run before the transaction's own
// changelog writes, which then follow the copy in each partition.
func (t *trimmer) copyDue(s *store, topicOf func(stateKey) string,
	produce func(*kgo.Record, func(*kgo.Record, error))) []stateKey {
	if !t.on {
		return nil
	}
	clear(t.anchors)
	var copied []stateKey
	for k, n := range t.writes {
		state := s.committed[k]
		if n < max(len(state), t.floor) || len(state) == 0 {
			continue // an empty state has no record to anchor the deletion on
		}
		copied = append(copied, k)
		first := true
		for key, v := range state {
			r := &kgo.Record{Topic: topicOf(k), Partition: k.partition, Key: []byte(key), Value: v}
			if !first {
				produce(r, nil)
				continue
			}
			first = false
			produce(r, func(r *kgo.Record, err error) {
				if err == nil {
					t.mu.Lock()
					t.anchors[k] = r.Offset
					t.mu.Unlock()
				}
			})
		}
	}
	return copied
}

// deleteBefore deletes each copied state's changelog partition up to its copy, once the
// transaction that wrote the copy has committed, and starts counting afresh. A deletion
// that fails is left to the next copy: nothing depends on it but the size of the log.
func (t *trimmer) deleteBefore(ctx context.Context, adm *kadm.Client, copied []stateKey,
	topicOf func(stateKey) string) error {
	if len(copied) == 0 {
		return nil
	}
	t.mu.Lock()
	var os kadm.Offsets
	for _, k := range copied {
		t.writes[k] = 0
		if at, ok := t.anchors[k]; ok {
			os.Add(kadm.Offset{Topic: topicOf(k), Partition: k.partition, At: at})
		}
	}
	t.mu.Unlock()
	resps, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		return err
	}
	var errs []error
	resps.Each(func(r kadm.DeleteRecordsResponse) {
		// Out of range: the broker's compaction already moved the log start past the copy.
		if r.Err != nil && !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			errs = append(errs, r.Err)
		}
	})
	return errors.Join(errs...)
}
