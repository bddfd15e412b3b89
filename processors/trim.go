package processors

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// trimmer bounds a changelog on a broker that never drops its transaction markers
// (Config.TrimChangelogs). Once a partition's changelog has taken more transactions since
// its last copy than a quarter of the state's keys (and at least minTrimTxns), a
// transaction rewrites the partition's whole committed state ahead of its own writes, and
// once it commits, everything before that copy is deleted: the copy and what follows it
// are the state, so a restore reads the same. A transaction that aborts deletes nothing
// and the copy is made again. The copies cost at most copyEvery records per transaction
// marker they remove.
//
// What is left between copies is what the broker's compaction reads, twice, and rewrites
// on its one goroutine at each sweep, answering nothing meanwhile. Copying once the
// transactions outnumbered the keys left 56-87 ms of silence at the sweep (a probe timing
// a metadata request every 5 ms; 1,000 wallets at 2,500 payments/s, three runs); with a
// copy every quarter of that, no silence reached 40 ms, and paystream's CPU a payment did
// not change (0.322-0.328 ms against 0.324-0.329, alternating 60-s runs).
type trimmer struct {
	on     bool
	floor  int              // transactions a copy waits for at least
	writes map[stateKey]int // transactions that wrote the state's changelog since its copy
}

// minTrimTxns keeps a small state from being copied after every few transactions.
const minTrimTxns = 64

// copyEvery is how many records of copy a transaction may cost at most: a state of k keys
// is copied after k/copyEvery transactions.
const copyEvery = 4

func newTrimmer(on bool, floor int) *trimmer {
	if floor <= 0 {
		floor = minTrimTxns
	}
	return &trimmer{on: on, floor: floor, writes: map[stateKey]int{}}
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

// copied is a state whose committed state a transaction copied; first is the copy's first
// record, whose offset the producer sets once the broker has it.
type copied struct {
	key   stateKey
	first *kgo.Record
}

// copyDue produces the committed state of every state whose copy is due to its changelog
// partition, and returns those copies. It must run before the transaction's own changelog
// writes, which then follow the copy in each partition.
func (t *trimmer) copyDue(s *store, topicOf func(stateKey) string, produce func(*kgo.Record)) []copied {
	if !t.on {
		return nil
	}
	var cs []copied
	for k, n := range t.writes {
		state := s.committed[k]
		if n < max(len(state)/copyEvery, t.floor) || len(state) == 0 {
			continue // an empty state has no record to anchor the deletion on
		}
		c := copied{key: k}
		for key, v := range state {
			r := &kgo.Record{Topic: topicOf(k), Partition: k.partition, Key: []byte(key), Value: v}
			if c.first == nil {
				c.first = r
			}
			produce(r)
		}
		cs = append(cs, c)
	}
	return cs
}

// deleteBefore deletes each copied state's changelog partition up to its copy, once the
// transaction that wrote the copy has committed (so every record of it has its offset),
// and starts counting afresh. A deletion that fails is left to the next copy: nothing
// depends on it but the size of the log.
func (t *trimmer) deleteBefore(ctx context.Context, adm *kadm.Client, cs []copied) error {
	if len(cs) == 0 {
		return nil
	}
	var os kadm.Offsets
	for _, c := range cs {
		t.writes[c.key] = 0
		os.Add(kadm.Offset{Topic: c.first.Topic, Partition: c.first.Partition, At: c.first.Offset})
	}
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
