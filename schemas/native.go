package schemas

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/linkedin/goavro/v2"
)

// fields reads goavro's native form of a record. The first type mismatch is kept in err
// and later reads return zero values, so a decoder reads every field and checks once. A
// missing field reads as its zero value: the writer's schema version predates it, and
// every field added after version 1 has a default.
type fields struct {
	m    map[string]any
	path string
	err  error
}

func newFields(v any, path string) *fields {
	m, ok := v.(map[string]any)
	f := &fields{m: m, path: path}
	if !ok {
		f.err = fmt.Errorf("decoding %s: got %T, want a record", path, v)
	}
	return f
}

func (f *fields) fail(name string, v any, want string) {
	if f.err == nil {
		f.err = fmt.Errorf("decoding %s.%s: got %T, want %s", f.path, name, v, want)
	}
}

func (f *fields) get(name string) (any, bool) {
	if f.err != nil {
		return nil, false
	}
	v, ok := f.m[name]
	return v, ok && v != nil
}

func (f *fields) str(name string) string {
	v, ok := f.get(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.fail(name, v, "string")
	}
	return s
}

func (f *fields) int(name string) int {
	v, ok := f.get(name)
	if !ok {
		return 0
	}
	switch n := v.(type) {
	case int32:
		return int(n)
	case int64:
		return int(n)
	}
	f.fail(name, v, "int")
	return 0
}

func (f *fields) time(name string) time.Time {
	v, ok := f.get(name)
	if !ok {
		return time.Time{}
	}
	t, ok := v.(time.Time)
	if !ok {
		f.fail(name, v, "timestamp")
	}
	return t.UTC()
}

func (f *fields) strs(name string) []string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		f.fail(name, v, "array")
		return nil
	}
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok {
			f.fail(name, e, "string item")
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (f *fields) strMap(name string) map[string]string {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		f.fail(name, v, "map")
		return nil
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			f.fail(name, e, "string value")
			return nil
		}
		out[k] = s
	}
	return out
}

// union returns the branch value of a ["null", T] union, or nil for null.
func (f *fields) union(name string) any {
	v, ok := f.get(name)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		f.fail(name, v, "union")
		return nil
	}
	for _, b := range m {
		return b
	}
	return nil
}

// record reads a nested record (or the record branch of a union when optional).
func (f *fields) record(name string, optional bool) *fields {
	var v any
	if optional {
		v = f.union(name)
	} else {
		v, _ = f.get(name)
	}
	if v == nil || f.err != nil {
		return nil
	}
	sub := newFields(v, f.path+"."+name)
	if sub.err != nil {
		f.err = sub.err
		return nil
	}
	return sub
}

// records reads an array of records, from a ["null", array] union when optional.
func (f *fields) records(name string, optional bool) []*fields {
	var v any
	var ok bool
	if optional {
		v = f.union(name)
		ok = v != nil
	} else {
		v, ok = f.get(name)
	}
	if !ok || f.err != nil {
		return nil
	}
	a, isArr := v.([]any)
	if !isArr {
		f.fail(name, v, "array")
		return nil
	}
	out := make([]*fields, 0, len(a))
	for i, e := range a {
		sub := newFields(e, fmt.Sprintf("%s.%s[%d]", f.path, name, i))
		if sub.err != nil {
			f.err = sub.err
			return nil
		}
		out = append(out, sub)
	}
	return out
}

func (f *fields) money(name string) Money {
	sub := f.record(name, false)
	return f.moneyOf(name, sub)
}

func (f *fields) optMoney(name string) *Money {
	sub := f.record(name, true)
	if sub == nil {
		return nil
	}
	m := f.moneyOf(name, sub)
	return &m
}

func (f *fields) moneyOf(name string, sub *fields) Money {
	if sub == nil {
		if f.err == nil {
			f.err = fmt.Errorf("decoding %s.%s: %w: missing", f.path, name, ErrInvalidMoney)
		}
		return Money{}
	}
	a, c := sub.str("amount"), sub.str("currency")
	if sub.err != nil {
		f.err = sub.err
		return Money{}
	}
	m, err := parseMoney(a, c)
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("decoding %s.%s: %w", f.path, name, err)
	}
	return m
}

// merge keeps the first error of sub-readers.
func (f *fields) merge(subs ...*fields) {
	for _, s := range subs {
		if s != nil && s.err != nil && f.err == nil {
			f.err = s.err
		}
	}
}

// encoding helpers

func optional(branch string, v any) any {
	if v == nil {
		return nil
	}
	return goavro.Union(branch, v)
}

func strsNative(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func strMapNative(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out[k] = m[k]
	}
	return out
}

func micros(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
