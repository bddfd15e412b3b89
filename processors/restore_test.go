package processors

import (
	"context"
	"maps"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/schemas/catalog"
)

// A trimming worker may delete a changelog's head while another restores it. Here the
// reader has taken a value of "gone" when everything before the copy is deleted, the
// tombstone of "gone" with it: a reader that went on from the new start would keep the
// deleted key.
func TestRestoreStartsOverWhenTheChangelogIsTrimmedMidRead(t *testing.T) {
	ctx := context.Background()
	k := testenv.NewKafka(t, testenv.Partitions(1))
	if k.Fake == nil {
		t.Skip("needs the in-process broker to step between fetches")
	}
	topic := catalog.GroupRisk.Changelog()
	cl := k.Client(t)
	for _, r := range []*kgo.Record{
		{Key: []byte("gone"), Value: []byte("v1")}, // offset 0
		{Key: []byte("gone")},                      // offset 1, its tombstone
		{Key: []byte("kept"), Value: []byte("v2")}, // offset 2, the copy
	} {
		r.Topic = string(topic)
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(k.Client(t))
	var trimmed atomic.Bool
	k.Fake.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		for _, ft := range req.(*kmsg.FetchRequest).Topics {
			for _, fp := range ft.Partitions {
				if fp.FetchOffset != 1 || trimmed.Swap(true) {
					continue
				}
				k.Fake.SleepControl(func() {
					var os kadm.Offsets
					os.Add(kadm.Offset{Topic: string(topic), Partition: 0, At: 2})
					if resps, err := adm.DeleteRecords(ctx, os); err != nil || resps.Error() != nil {
						t.Errorf("deleting records: %v %v", err, resps.Error())
					}
				})
			}
		}
		return nil, nil, false
	})

	// One batch a fetch, so the deletion falls between the value and its tombstone.
	state, err := restoreChangelog(ctx, k.Brokers, []kgo.Opt{kgo.FetchMaxPartitionBytes(1)}, adm, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !trimmed.Load() {
		t.Fatal("the reader never fetched offset 1: the test did not trim mid-read")
	}
	if want := map[string][]byte{"kept": []byte("v2")}; !maps.EqualFunc(state, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("restored %q, want %q", state, want)
	}
}
