package ingress

import (
	"sync"
	"testing"
	"time"
)

// With linger, items arriving shortly after the first share its group; without, the first
// is written at once, alone.
func TestGroupsLinger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		linger time.Duration
		first  int // the first group's size; all groups hold the five items
	}{
		{"no linger", 0, 1},
		{"linger", time.Second, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var sizes []int
			g := newGroups(1, 16, tc.linger, func(items []int) {
				mu.Lock()
				sizes = append(sizes, len(items))
				mu.Unlock()
			})
			g.add(0)
			time.Sleep(50 * time.Millisecond) // the writer has taken the first item

			for i := 1; i < 5; i++ {
				g.add(i)
			}
			g.close()
			mu.Lock()
			defer mu.Unlock()
			total := 0
			for _, n := range sizes {
				total += n
			}
			if len(sizes) == 0 || sizes[0] != tc.first || total != 5 {
				t.Errorf("groups of %v, want the first of %d and five items in all", sizes, tc.first)
			}
		})
	}
}
