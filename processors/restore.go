package processors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/schemas/catalog"
)

// restoreChangelog reads one partition of a changelog from its start and returns the
// latest value per key.
//
// It first waits until no transaction is open on the partition (last stable offset equal
// to the high watermark). Only the partition's owner writes it, and we own it now, so an
// open transaction belongs to a previous owner that crashed or was fenced: it will abort
// (fencing, or the transaction timeout), never commit. Reading only to a last stable offset
// held back by such a transaction could miss a later owner's committed writes behind it.
//
// A trimmed changelog (Config.TrimChangelogs) may lose its head while we read it: the
// reader then skips to the new start, and a value read before the jump could have been
// deleted by a tombstone in the skipped part. The copy the new start begins with holds
// every live key, so the read is simply made again from there.
func restoreChangelog(ctx context.Context, brokers []string, extra []kgo.Opt, adm *kadm.Client,
	topic catalog.Topic, partition int32) (map[string][]byte, error) {
	for {
		state, first, err := readChangelog(ctx, brokers, extra, adm, topic, partition)
		if err != nil || first < 0 {
			return state, err
		}
		starts, err := adm.ListStartOffsets(ctx, string(topic))
		if err != nil {
			return nil, fmt.Errorf("listing start offsets of %s: %w", topic, err)
		}
		s, ok := starts.Lookup(string(topic), partition)
		if !ok || s.Err != nil {
			return nil, fmt.Errorf("listing start offsets of %s/%d: %w", topic, partition, errors.Join(s.Err, errors.New("partition missing")))
		}
		if s.Offset <= first {
			return state, nil
		}
	}
}

// readChangelog reads the partition once and returns its state and the first offset read
// (-1 when it read nothing).
func readChangelog(ctx context.Context, brokers []string, extra []kgo.Opt, adm *kadm.Client,
	topic catalog.Topic, partition int32) (map[string][]byte, int64, error) {
	var end int64
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		hw, err := adm.ListEndOffsets(ctx, string(topic))
		if err != nil {
			return nil, -1, fmt.Errorf("listing end offsets of %s: %w", topic, err)
		}
		lso, err := adm.ListCommittedOffsets(ctx, string(topic))
		if err != nil {
			return nil, -1, fmt.Errorf("listing stable offsets of %s: %w", topic, err)
		}
		h, ok1 := hw.Lookup(string(topic), partition)
		l, ok2 := lso.Lookup(string(topic), partition)
		if !ok1 || !ok2 || h.Err != nil || l.Err != nil {
			return nil, -1, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition,
				errors.Join(h.Err, l.Err, errors.New("partition missing: is the changelog created with at least as many partitions as the input?")))
		}
		if l.Offset >= h.Offset {
			end = h.Offset
			break
		}
		select {
		case <-ctx.Done():
			return nil, -1, fmt.Errorf("waiting for open transactions on %s/%d: %w", topic, partition, ctx.Err())
		case <-time.After(wait):
		}
	}
	state := map[string][]byte{}
	if end == 0 {
		return state, -1, nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, extra...),
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{string(topic): {partition: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are the last offsets of a transactional log; without them we could
		// not tell that we reached the end.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, -1, fmt.Errorf("creating changelog reader: %w", err)
	}
	defer cl.Close()
	first := int64(-1)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, -1, fmt.Errorf("reading %s/%d: %w", topic, partition, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, -1, fmt.Errorf("reading %s/%d: %w", topic, partition, ferr)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if first < 0 {
				first = r.Offset
			}
			if r.Offset >= end-1 {
				done = true
			}
			if r.Attrs.IsControl() || r.Offset >= end {
				return
			}
			if len(r.Value) == 0 {
				delete(state, string(r.Key))
			} else {
				state[string(r.Key)] = r.Value
			}
		})
		if done {
			return state, first, nil
		}
	}
}
