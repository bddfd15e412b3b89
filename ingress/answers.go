package ingress

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// answerDelay is how long a payment's 202 answer waits before it is kept. Its outcome
// usually arrives well within it, and then the answer is never written: a retry is
// answered from the payment's status and outcome rows (readKeySQL), and the table of
// answers takes a row only for the payments the pipeline was slow with. A retry that
// comes meanwhile waits for one or the other, within inFlightWait.
const answerDelay = 2 * time.Second

// acceptedAnswer is the body of a payment's 202 answer: answerAccepted writes it, and a
// retry answered from the payment's outcome gets it again.
func acceptedAnswer(id string) []byte {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(PaymentAccepted{ID: id, Status: "accepted"})
	return b.Bytes()
}

// derivable reports whether a payment's answer is the one its outcome row stands for.
func derivable(id string, a keptAnswer) bool {
	return a.status == http.StatusAccepted && a.contentType == "application/json" && bytes.Equal(a.body, acceptedAnswer(id))
}

// delayedAnswers holds payments' 202 answers for answerDelay, until their outcomes
// make them needless or the delay hands them to the answer writer.
type delayedAnswers struct {
	keep   func(keptAnswer)
	mu     sync.Mutex
	delay  time.Duration
	byID   map[string]keptAnswer // by payment id
	closed bool
	order  []delayedAnswer // in the order they came
	stop   chan struct{}
	done   chan struct{}
}

type delayedAnswer struct {
	id string
	at time.Time
}

func newDelayedAnswers(keep func(keptAnswer)) *delayedAnswers {
	d := &delayedAnswers{keep: keep, delay: answerDelay, byID: map[string]keptAnswer{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

// add holds an answer; once the clock has stopped, it is kept at once.
func (d *delayedAnswers) add(id string, a keptAnswer) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.keep(a)
		return
	}
	defer d.mu.Unlock()
	d.byID[id] = a
	d.order = append(d.order, delayedAnswer{id: id, at: time.Now()})
}

func (d *delayedAnswers) setDelay(delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.delay = delay
}

// holds reports which of the payments' answers it holds.
func (d *delayedAnswers) holds(ids []string) []bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	held := make([]bool, len(ids))
	for i, id := range ids {
		_, held[i] = d.byID[id]
	}
	return held
}

// drop forgets the answers of payments whose outcomes are kept.
func (d *delayedAnswers) drop(ids []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		delete(d.byID, id)
	}
}

// due takes the answers held since before cutoff, or all of them when all is set.
func (d *delayedAnswers) due(now time.Time, all bool) []keptAnswer {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []keptAnswer
	n := 0
	for ; n < len(d.order) && (all || d.order[n].at.Add(d.delay).Before(now)); n++ {
		if a, ok := d.byID[d.order[n].id]; ok {
			delete(d.byID, d.order[n].id)
			out = append(out, a)
		}
	}
	d.order = d.order[n:]
	return out
}

func (d *delayedAnswers) run() {
	defer close(d.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			for _, a := range d.due(now, false) {
				d.keep(a)
			}
		}
	}
}

// close stops the clock and keeps every answer still held: a process that stops cleanly
// leaves no payment's key in flight.
func (d *delayedAnswers) close() {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	for _, a := range d.due(time.Now(), true) {
		d.keep(a)
	}
}
