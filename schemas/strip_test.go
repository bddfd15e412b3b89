package schemas

import (
	"encoding/json"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// stripDefaulted compiles schema text with every record field that has a default removed.
func stripDefaulted(t testing.TB, text string) *goavro.Codec {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch s := v.(type) {
		case []any:
			for _, e := range s {
				walk(e)
			}
		case map[string]any:
			if fs, ok := s["fields"].([]any); ok {
				kept := fs[:0]
				for _, f := range fs {
					fm := f.(map[string]any)
					if _, has := fm["default"]; has {
						continue
					}
					walk(fm["type"])
					kept = append(kept, f)
				}
				s["fields"] = kept
			}
			for _, k := range []string{"items", "values"} {
				if x, ok := s[k]; ok {
					walk(x)
				}
			}
		}
	}
	walk(v)
	b, _ := json.Marshal(v)
	c, err := goavro.NewCodec(string(b))
	if err != nil {
		t.Fatalf("compiling stripped schema: %v", err)
	}
	return c
}
