package processors

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/paystream/paystream/schemas/catalog"
)

// Definition declares a stage's wiring once: what it reads, which group it consumes in,
// what it may write, and whether it keeps per-key state.
type Definition struct {
	Name  string
	Input catalog.Topic
	Group catalog.Group
	// Outputs lists every topic the stage may write; writing elsewhere is a permanent error.
	Outputs []catalog.Topic
	// Stateful stages get their State restored from Group.Changelog() on assignment.
	Stateful bool
	// AlsoReads lists topics written from outside the chain whose records enter the chain
	// at this stage (the fee stage reads the payments operators approve in review). A hop
	// consumes its first stage's input and the AlsoReads of all its stages, so a fused hop
	// takes these records in mid-chain instead of being split at this stage.
	AlsoReads []catalog.Topic
	Stage     Stage
}

// ErrUnknownStage is returned for a stage name the registry does not hold.
var ErrUnknownStage = errors.New("unknown stage")

// Validate checks that d is complete.
func (d Definition) Validate() error {
	var errs []error
	if d.Name == "" || strings.ContainsAny(d.Name, ", ") {
		errs = append(errs, fmt.Errorf("stage name %q: must be non-empty without commas or spaces", d.Name))
	}
	if d.Input == "" {
		errs = append(errs, fmt.Errorf("stage %s: Input is required", d.Name))
	}
	if d.Group == "" {
		errs = append(errs, fmt.Errorf("stage %s: Group is required", d.Name))
	}
	if len(d.Outputs) == 0 {
		errs = append(errs, fmt.Errorf("stage %s: Outputs is required", d.Name))
	}
	if d.Stage == nil {
		errs = append(errs, fmt.Errorf("stage %s: Stage is required", d.Name))
	}
	if d.Stateful && len(d.AlsoReads) > 0 {
		// State lives per partition of the input; records of another topic come from
		// partitions the worker may not own on the input.
		errs = append(errs, fmt.Errorf("stage %s: a stateful stage reads one topic, not AlsoReads", d.Name))
	}
	for _, t := range d.AlsoReads {
		if t == "" || t == d.Input || d.writes(t) {
			errs = append(errs, fmt.Errorf("stage %s: AlsoReads %q is empty, its Input or one of its Outputs", d.Name, t))
		}
	}
	return errors.Join(errs...)
}

func (d Definition) writes(t catalog.Topic) bool { return slices.Contains(d.Outputs, t) }

// reads reports whether records of t enter the stage.
func (d Definition) reads(t catalog.Topic) bool {
	return t == d.Input || slices.Contains(d.AlsoReads, t)
}

// Registry holds the stages a binary can run, by name.
type Registry struct {
	defs  map[string]Definition
	order []string
}

// NewRegistry returns a registry of defs.
func NewRegistry(defs ...Definition) (*Registry, error) {
	r := &Registry{defs: map[string]Definition{}}
	for _, d := range defs {
		if err := r.Register(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds d.
func (r *Registry) Register(d Definition) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("registering stage: %w", err)
	}
	if _, dup := r.defs[d.Name]; dup {
		return fmt.Errorf("registering stage %s: already registered", d.Name)
	}
	r.defs[d.Name] = d
	r.order = append(r.order, d.Name)
	return nil
}

// Names returns the registered stage names in registration order.
func (r *Registry) Names() []string { return slices.Clone(r.order) }

// Lookup returns the named stage.
func (r *Registry) Lookup(name string) (Definition, error) {
	d, ok := r.defs[name]
	if !ok {
		return Definition{}, fmt.Errorf("%w %q (have %s)", ErrUnknownStage, name, strings.Join(r.order, ", "))
	}
	return d, nil
}

// Hop is what one worker runs: one stage, or several fused so that each one's output on
// the next one's input topic is handed over in memory. The hop consumes its Inputs in the
// first stage's group, and every stage still writes all its outputs, so the topics hold
// the same records fused or not.
type Hop struct {
	Stages []Definition
}

// Name is the hop's stage names joined with "+".
func (h Hop) Name() string {
	names := make([]string, len(h.Stages))
	for i, s := range h.Stages {
		names[i] = s.Name
	}
	return strings.Join(names, "+")
}

// Input is the hop's main input, its first stage's; stateful stages keep their state per
// partition of it.
func (h Hop) Input() catalog.Topic { return h.Stages[0].Input }

// Inputs are the topics the hop consumes: its input, then its stages' AlsoReads.
func (h Hop) Inputs() []catalog.Topic {
	ts := []catalog.Topic{h.Input()}
	for _, s := range h.Stages {
		for _, t := range s.AlsoReads {
			if !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// entry is the index of the stage where records of t enter the hop, or -1.
func (h Hop) entry(t catalog.Topic) int {
	return slices.IndexFunc(h.Stages, func(d Definition) bool { return d.reads(t) })
}

// writesAny reports whether a stage of the hop writes one of ts: a hop must not consume
// what it writes itself, so a stage that also reads such a topic starts a hop of its own.
func (h Hop) writesAny(ts []catalog.Topic) bool {
	for _, s := range h.Stages {
		for _, t := range ts {
			if s.writes(t) {
				return true
			}
		}
	}
	return false
}

// Group is the consumer group of the hop, which also names its transactional ids.
func (h Hop) Group() catalog.Group { return h.Stages[0].Group }

// Plan turns the named stages into hops: one per stage, or, with fuse, consecutive stages
// where each reads a topic the previous one writes become one hop, unless the later stage
// also reads a topic the hop writes.
func (r *Registry) Plan(names []string, fuse bool) ([]Hop, error) {
	if len(names) == 0 {
		return nil, errors.New("planning hops: no stages named")
	}
	var hops []Hop
	seen := map[string]bool{}
	for _, n := range names {
		d, err := r.Lookup(n)
		if err != nil {
			return nil, fmt.Errorf("planning hops: %w", err)
		}
		if seen[n] {
			return nil, fmt.Errorf("planning hops: stage %s named twice", n)
		}
		seen[n] = true
		if fuse && len(hops) > 0 {
			last := &hops[len(hops)-1]
			if prev := last.Stages[len(last.Stages)-1]; prev.writes(d.Input) && !last.writesAny(d.AlsoReads) {
				last.Stages = append(last.Stages, d)
				continue
			}
		}
		hops = append(hops, Hop{Stages: []Definition{d}})
	}
	return hops, nil
}

// ParseStages splits a --stages flag value ("validation,risk").
func ParseStages(flag string) []string {
	var names []string
	for _, n := range strings.Split(flag, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}
