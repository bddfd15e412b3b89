package ingress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMayRepeatKey(t *testing.T) {
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"a":1,"b":2}`, false},
		{`{"a":1,"a":2}`, true},
		{`{"a":"a","b":"a"}`, false},
		{`{"a":{"a":1},"b":[{"a":1},{"a":2}]}`, false},
		{`{"a":{"x":1,"x":2}}`, true},
		{`[{"a":1,"a":1}]`, true},
		{`{"a":1,"\u0061":2}`, true},
		{`{"a\"b":1,"a\"b":2}`, true},
		{`{"a\"b":1,"a\\b":2}`, false},
		{`{"k":"{\"k\":1,\"k\":2}"}`, false},
		{`{"a":[1,2,3],"b":"x,y:z"}`, false},
		{`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"11":11,"12":12,"13":13,"14":14,"15":15,"16":16,"17":17,"3":0}`, true},
		{`{"1":1,"2":2,"3":3,"4":4,"5":5,"6":6,"7":7,"8":8,"9":9,"10":10,"11":11,"12":12,"13":13,"14":14,"15":15,"16":16,"17":17,"18":0}`, false},
		{`{"a":1`, true},  // not closed: the full check decides
		{`{"a":"x`, true}, // unterminated string
	} {
		if got := mayRepeatKey([]byte(tc.body)); got != tc.want {
			t.Errorf("mayRepeatKey(%s) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

// FuzzMayRepeatKey checks the one-pass scan against the tokenizer walk: on valid JSON, a
// repeated key the walk finds must never be missed by the scan.
func FuzzMayRepeatKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"c":2}]}}`, `{"\u0061":1,"a":2}`, `[]`, `"x"`, `{"a":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		err := checkDuplicateKeys(json.NewDecoder(bytes.NewReader(b)))
		dup := err != nil && strings.HasPrefix(err.Error(), "duplicate key")
		if dup && !mayRepeatKey(b) {
			t.Fatalf("scan missed a repeated key in %q", b)
		}
	})
}
