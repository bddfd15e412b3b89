package ingress

import (
	"bytes"
	"encoding/json"
)

// mayRepeatKey scans a JSON text for an object that names a key twice, in one pass and
// without decoding values. It only says whether checkDuplicateKeys, which walks the text
// with a full tokenizer and explains what it finds, needs to run: false means no key is
// repeated, true means there may be one (or the text is not JSON the scan can follow).
func mayRepeatKey(b []byte) bool {
	var stack []keyFrame
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, keyFrame{object: true, wantKey: true})
		case '[':
			stack = append(stack, keyFrame{})
		case '}', ']':
			if len(stack) == 0 {
				return true
			}
			stack = stack[:len(stack)-1]
		case ':':
			if len(stack) == 0 || !stack[len(stack)-1].object {
				return true
			}
			stack[len(stack)-1].wantKey = false
		case ',':
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = true
			}
		case '"':
			end, escaped := stringEnd(b, i)
			if end < 0 {
				return true
			}
			if len(stack) > 0 && stack[len(stack)-1].wantKey {
				key := b[i+1 : end]
				if escaped { // keys compare decoded: "a" and "\u0061" are one key
					var s string
					if json.Unmarshal(b[i:end+1], &s) != nil {
						return true
					}
					key = []byte(s)
				}
				if stack[len(stack)-1].repeats(key) {
					return true
				}
				stack[len(stack)-1].wantKey = false
			}
			i = end
		}
	}
	return len(stack) != 0
}

// stringEnd returns the index of the quote closing the string that opens at b[start], or
// -1, and whether the string holds an escape.
func stringEnd(b []byte, start int) (int, bool) {
	escaped := false
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i, escaped
		}
	}
	return -1, escaped
}

// keyFrame is an object or array mayRepeatKey is inside.
type keyFrame struct {
	object  bool
	wantKey bool // the next string in this object is a key
	keys    [][]byte
	set     map[string]bool // once an object has manyKeys, so a large one costs no more than a pass
}

const manyKeys = 16

// repeats records key and reports whether the object had it already.
func (f *keyFrame) repeats(key []byte) bool {
	if f.set != nil {
		if f.set[string(key)] {
			return true
		}
		f.set[string(key)] = true
		return false
	}
	for _, k := range f.keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	f.keys = append(f.keys, key)
	if len(f.keys) == manyKeys {
		f.set = make(map[string]bool, 2*manyKeys)
		for _, k := range f.keys {
			f.set[string(k)] = true
		}
	}
	return false
}
