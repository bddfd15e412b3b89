package schemas

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// guard walks Avro binary data against its schema without allocating, so a corrupt length
// or block count is an error before goavro sizes a slice from it (goavro would allocate a
// slice as long as any block count up to 2^31 that the bytes claim).
type guard struct {
	kind     string // null, boolean, int, long, float, double, bytes, string, record, enum, array, map, union, fixed
	fields   []*guard
	items    *guard // array items, map values
	branches []*guard
	size     int // fixed size, enum symbol count
}

var errGuard = errors.New("malformed avro")

// newGuard builds the guard of a schema text.
func newGuard(text string) (*guard, error) {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("parsing schema: %w", err)
	}
	named := map[string]*guard{}
	return buildGuard(v, "", named)
}

func buildGuard(v any, ns string, named map[string]*guard) (*guard, error) {
	switch s := v.(type) {
	case string:
		switch s {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return &guard{kind: s}, nil
		}
		if g, ok := named[s]; ok {
			return g, nil
		}
		if g, ok := named[ns+"."+s]; ok {
			return g, nil
		}
		return nil, fmt.Errorf("unknown type %q", s)
	case []any:
		g := &guard{kind: "union"}
		for _, b := range s {
			bg, err := buildGuard(b, ns, named)
			if err != nil {
				return nil, err
			}
			g.branches = append(g.branches, bg)
		}
		return g, nil
	case map[string]any:
		t, _ := s["type"].(string)
		name, _ := s["name"].(string)
		if n, ok := s["namespace"].(string); ok {
			ns = n
		}
		full := name
		if name != "" && ns != "" {
			full = ns + "." + name
		}
		switch t {
		case "record", "error":
			g := &guard{kind: "record"}
			named[full] = g
			fs, _ := s["fields"].([]any)
			for _, f := range fs {
				fm, _ := f.(map[string]any)
				fg, err := buildGuard(fm["type"], ns, named)
				if err != nil {
					return nil, err
				}
				g.fields = append(g.fields, fg)
			}
			return g, nil
		case "enum":
			syms, _ := s["symbols"].([]any)
			g := &guard{kind: "enum", size: len(syms)}
			named[full] = g
			return g, nil
		case "fixed":
			size, _ := s["size"].(float64)
			g := &guard{kind: "fixed", size: int(size)}
			named[full] = g
			return g, nil
		case "array":
			items, err := buildGuard(s["items"], ns, named)
			return &guard{kind: "array", items: items}, err
		case "map":
			values, err := buildGuard(s["values"], ns, named)
			return &guard{kind: "map", items: values}, err
		default:
			return buildGuard(s["type"], ns, named) // a primitive with a logical type
		}
	}
	return nil, fmt.Errorf("unsupported schema element %T", v)
}

// check reports whether b is exactly one datum of the schema.
func (g *guard) check(b []byte) error {
	rest, err := g.skip(b, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errGuard, len(rest))
	}
	return nil
}

const maxDepth = 64

func varint(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", errGuard)
	}
	return v, b[n:], nil
}

func (g *guard) skip(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested too deep", errGuard)
	}
	switch g.kind {
	case "null":
		return b, nil
	case "boolean":
		if len(b) < 1 || b[0] > 1 {
			return nil, fmt.Errorf("%w: bad boolean", errGuard)
		}
		return b[1:], nil
	case "int", "long":
		_, rest, err := varint(b)
		return rest, err
	case "float":
		return take(b, 4)
	case "double":
		return take(b, 8)
	case "fixed":
		return take(b, int64(g.size))
	case "bytes", "string":
		n, rest, err := varint(b)
		if err != nil {
			return nil, err
		}
		return take(rest, n)
	case "enum":
		n, rest, err := varint(b)
		if err != nil || n < 0 || n >= int64(g.size) {
			return nil, fmt.Errorf("%w: bad enum index", errGuard)
		}
		return rest, nil
	case "record":
		var err error
		for _, f := range g.fields {
			if b, err = f.skip(b, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case "union":
		n, rest, err := varint(b)
		if err != nil || n < 0 || n >= int64(len(g.branches)) {
			return nil, fmt.Errorf("%w: bad union branch", errGuard)
		}
		return g.branches[n].skip(rest, depth+1)
	case "array", "map":
		for {
			n, rest, err := varint(b)
			if err != nil {
				return nil, err
			}
			b = rest
			if n == 0 {
				return b, nil
			}
			if n < 0 {
				if n == -n { // math.MinInt64
					return nil, fmt.Errorf("%w: bad block count", errGuard)
				}
				n = -n
				if _, b, err = varint(b); err != nil { // block size in bytes
					return nil, err
				}
			}
			// Every item takes at least one byte except null, so a count above the
			// remaining bytes is a lie.
			if n > int64(len(b)) && !(g.kind == "array" && g.items.kind == "null") {
				return nil, fmt.Errorf("%w: block of %d items in %d bytes", errGuard, n, len(b))
			}
			if n > 1<<20 {
				return nil, fmt.Errorf("%w: block of %d items", errGuard, n)
			}
			for range n {
				if g.kind == "map" {
					if b, err = (&guard{kind: "string"}).skip(b, depth+1); err != nil {
						return nil, err
					}
				}
				if b, err = g.items.skip(b, depth+1); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, fmt.Errorf("%w: unknown kind %s", errGuard, g.kind)
}

func take(b []byte, n int64) ([]byte, error) {
	if n < 0 || n > int64(len(b)) {
		return nil, fmt.Errorf("%w: length %d beyond the %d bytes left", errGuard, n, len(b))
	}
	return b[n:], nil
}
