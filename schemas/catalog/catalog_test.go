package catalog

import (
	"strings"
	"testing"
)

func TestTopicsAreUniqueAndConfigured(t *testing.T) {
	seen := map[Topic]bool{}
	for _, s := range Topics() {
		if seen[s.Name] {
			t.Errorf("topic %s listed twice", s.Name)
		}
		seen[s.Name] = true
		c := s.Configs()
		if c["cleanup.policy"] != s.Cleanup {
			t.Errorf("%s: cleanup.policy %q, want %q", s.Name, c["cleanup.policy"], s.Cleanup)
		}
		if s.Cleanup == CleanupDelete && c["retention.ms"] == "" {
			t.Errorf("%s: delete topic without retention.ms", s.Name)
		}
		if s.Cleanup == CleanupCompact && c["retention.ms"] != "-1" {
			t.Errorf("%s: compacted topic with retention.ms %q, want -1 (kept for good)", s.Name, c["retention.ms"])
		}
		if s.DLQ != strings.HasSuffix(string(s.Name), DLQSuffix) {
			t.Errorf("%s: DLQ flag %v does not match its name", s.Name, s.DLQ)
		}
	}
	for _, want := range []Topic{PaymentsRequested, PaymentsRequested.DLQ(), PaymentsOutcomes, GroupRisk.Changelog()} {
		if !seen[want] {
			t.Errorf("catalog lacks %s", want)
		}
	}
	if s, err := Lookup(string(GroupRisk.Changelog())); err != nil || s.Cleanup != CleanupCompact {
		t.Errorf("risk changelog: %+v, %v; want a compacted topic", s, err)
	}
	if _, err := Lookup("payments.nope"); err == nil {
		t.Error("Lookup of an unknown topic succeeded")
	}
}

func TestGroupsAreUniqueAndNameTheirTransactionalIDs(t *testing.T) {
	seen := map[Group]bool{}
	for _, g := range Groups() {
		if seen[g] {
			t.Errorf("group %s listed twice", g)
		}
		seen[g] = true
		if !strings.HasPrefix(string(g.TxnPrefix()), string(g)) || IsKnown(string(g)) {
			t.Errorf("group %s: transactional prefix %s, or it collides with a topic", g, g.TxnPrefix())
		}
	}
}
