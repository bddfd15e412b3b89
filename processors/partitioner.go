package processors

import "github.com/twmb/franz-go/pkg/kgo"

// hopPartitioner sends changelog records to the partition they were set on, which is the
// input partition whose state they hold, and hashes every other record's key the way the
// Java client does (murmur2), so a wallet's records share a partition on every topic.
type hopPartitioner struct {
	manual map[string]bool
	keyed  kgo.Partitioner
}

func newHopPartitioner(manualTopics []string) hopPartitioner {
	p := hopPartitioner{manual: map[string]bool{}, keyed: kgo.StickyKeyPartitioner(nil)}
	for _, t := range manualTopics {
		p.manual[t] = true
	}
	return p
}

func (p hopPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.keyed.ForTopic(topic)
}
