// Package sumfile keeps small JSON files that prove themselves: each is
// written atomically (internal/atomicfile) inside an envelope that carries
// the sha256 of its content, and checked on every read. A file cut short,
// edited or written by something else is reported as damaged, never read as
// empty: the state of an export (the days it delivered, the alerts it sent)
// must not be silently forgotten.
//
// The file stays readable JSON:
//
//	{"sha256":"<hex of the bytes of data>",
//	 "data":<the value, indented>}
//
// Versions before the envelope wrote the value alone; such a file is read
// when it is whole JSON that decodes into the value with no unknown key,
// and gets its envelope at the next Write.
package sumfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
)

// Write encodes v as indented JSON in an envelope with its sha256 and
// writes it to path atomically with mode perm: after an error path holds
// what it held before.
func Write(path string, v any, perm fs.FileMode) error {
	data, err := json.MarshalIndent(v, " ", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, Seal(data), perm)
}

// Seal is the file Write makes of data, JSON already encoded: data in an
// envelope with its sha256.
func Seal(data []byte) []byte {
	sum := sha256.Sum256(data)
	var b bytes.Buffer
	b.WriteString(`{"sha256":"`)
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteString("\",\n \"data\":")
	b.Write(data)
	b.WriteString("}\n")
	return b.Bytes()
}

// Read decodes the data of the file at path into v. A missing file gives
// false and no error. A file of an earlier version (the value alone, see
// the package comment) is read as it is. A file that is neither, whose
// checksum does not match its data, or whose data does not decode into v
// is damaged:
// the error is permanent (failure.Permanent), names the file and ends with
// recovery, the sentence that tells the user what to do.
func Read(path string, v any, recovery string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	damaged := func(why string) error {
		return failure.Permanentf("%s is damaged (%s): %s", path, why, recovery)
	}
	var env struct {
		SHA256 string          `json:"sha256"`
		Data   json.RawMessage `json:"data"`
	}
	err = json.Unmarshal(b, &env) // checks the whole of b is JSON first
	if syntax := (*json.SyntaxError)(nil); errors.As(err, &syntax) {
		return false, damaged("not valid JSON: cut short or edited")
	}
	if err != nil || env.SHA256 == "" && env.Data == nil {
		if err := decodeStrict(b, v); err != nil {
			return false, damaged("no checksum, and not a file of an earlier version: " + err.Error())
		}
		return true, nil
	}
	if env.SHA256 == "" || env.Data == nil {
		return false, damaged("no checksum: edited by hand")
	}
	sum := sha256.Sum256(env.Data)
	if hex.EncodeToString(sum[:]) != env.SHA256 {
		return false, damaged("its content does not match its sha256: edited")
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return false, damaged(err.Error())
	}
	return true, nil
}

// decodeStrict decodes b into v refusing a key v does not have, so that
// only a file that holds v's value alone reads as one of an earlier version.
// An empty value (null, {}, [], or an object whose keys hold nothing) is
// refused too: no version wrote one, and it would read as a state with
// nothing in it.
func decodeStrict(b []byte, v any) error {
	var top any
	if err := json.Unmarshal(b, &top); err != nil {
		return err
	}
	switch t := top.(type) {
	case map[string]any:
		if len(t) == 0 {
			return errors.New("empty")
		}
	case []any:
		if len(t) == 0 {
			return errors.New("empty")
		}
	default:
		return errors.New("neither an object nor a list")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	// {"days":null}, {"days":[]}: keys of v that hold nothing read as an
	// empty value all the same (was: accepted).
	if empty(reflect.ValueOf(v)) {
		return errors.New("empty")
	}
	return nil
}

// empty reports whether v holds nothing: zero, or made of empty lists,
// maps and pointers to nothing.
func empty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil() || empty(v.Elem())
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Struct:
		for i := range v.NumField() {
			if !empty(v.Field(i)) {
				return false
			}
		}
		return true
	}
	return v.IsZero()
}
