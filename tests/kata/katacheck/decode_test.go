package katacheck

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/kata-containers/kata-containers/src/runtime/virtcontainers/types"
)

// Hand-made volumes on which encoding/json and Go's base64 differ from a
// strict reading: key case (and Unicode folding), repeated keys, null,
// wrong types, keys only kata's Rust side has. Our decode command's
// go_valid must be kata's own verdict (ParseKataVirtualVolume: base64,
// json.Unmarshal, IsValid) on each, and what it prints what Go read.
var handMadeVolumes = []string{
	`{"volume_type":"image_guest_pull","source":"busybox","image_pull":{"metadata":{"a":"b"}}}`,
	`{"Volume_Type":"image_guest_pull","SOURCE":"busybox","Image_Pull":{"Metadata":{"A":"b"}}}`,
	"{\"volume_type\":\"image_guest_pull\",\"\u017Fource\":\"busybox\"}",
	`{"volume_type":"image_guest_pull","source":"busybox","image_pull":{"metadata":{"a":null}}}`,
	`{"volume_type":"image_guest_pull","source":"busybox","source":null}`,
	`{"volume_type":"x","VOLUME_TYPE":"image_guest_pull","source":"busybox"}`,
	`{"volume_type":"image_guest_pull","source":1,"source":"busybox"}`,
	`{"volume_type":"image_guest_pull","source":"busybox","image_pull":{"metadata":{"a":"1"}},"image_pull":{"metadata":{"b":"2"}}}`,
	`{"volume_type":"image_guest_pull","source":"busybox","image_pull":{"metadata":{"a":"1"}},"image_pull":null}`,
	`{"volume_type":"image_guest_pull","source":"busybox","options":["a"],"options":null}`,
	`{"volume_type":"image_guest_pull","source":"busybox","options":["a",1]}`,
	`{"volume_type":"image_guest_pull","source":"busybox","options":["a",null]}`,
	`{"volume_type":"image_guest_pull","source":"busybox","options":["x","y"],"options":["a"],"options":["b",null]}`,
	`{"volume_type":"image_guest_pull","source":"busybox","dm_verity":{"hashtype":"sha256","hash":"` +
		strings.Repeat("a", 64) + `","blocknum":1,"blocksize":4096,"hashsize":4096,"offset":4096,"salt":7}}`,
	`{"volume_type":"image_guest_pull","source":"busybox","dm_verity":{"HASHTYPE":"sha256","Hash":"` +
		strings.Repeat("a", 64) + `","blocknum":1,"bloc\u212Asize":4096,"hashsize":4096,"offset":4096}}`,
	`{"volume_type":"image_guest_pull","source":"busybox","dm_verity":{"hashtype":"sha256","hash":"` +
		strings.Repeat("a", 64) + `","blocknum":-1,"blocksize":4096,"hashsize":4096,"offset":4096}}`,
	`{"volume_type":"image_guest_pull","source":"busybox","dm_verity":{"hashtype":"sha256","hash":"` +
		strings.Repeat("a", 64) + `","blocknum":1.0,"blocksize":4096,"hashsize":4096,"offset":4096}}`,
	`{"volume_type":"image_guest_pull","source":"busybox","image_pull":[]}`,
	`{"volume_type":"image_guest_pull","source":"busybox","unknown":{"source":1}}`,
	`{"volume_type":"direct_block","source":"/dev/x","fs_type":"ext4","direct_volume":{"metadata":null}}`,
	`{"volume_type":"image_guest_pull","source":"\ud800busybox"}`,
	"{\"volume_type\":\"image_guest_pull\",\"source\":\"busybox\",\"image_pull\":{\"metadata\":{\"a\":\"\xff\xed\xa0\x80\"}}}",
	`null`,
	`[]`,
}

// Our decode's verdict and the volume it printed, for the option `b64`.
func ourDecode(t *testing.T, tool, b64 string) (bool, map[string]any) {
	t.Helper()
	out, err := exec.Command(tool, "decode", b64).Output()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s decode: %v", tool, err)
	}
	text := string(out)
	i := strings.Index(text, "\ngo_valid: ")
	if code == 2 || i < 0 {
		return false, nil
	}
	var printed map[string]any
	if err := json.Unmarshal([]byte(text[:i]), &printed); err != nil {
		t.Fatalf("decode printed no JSON: %v\n%s", err, text)
	}
	return strings.HasPrefix(text[i:], "\ngo_valid: yes"), printed
}

func TestDecodeGoVerdictIsKatas(t *testing.T) {
	tool := os.Getenv("GUEST_PULL_VERITY_TOOL")
	if tool == "" {
		t.Skip("GUEST_PULL_VERITY_TOOL is not set (tests/kata/kata_patch.sh sets it)")
	}
	cases := 0
	for _, doc := range handMadeVolumes {
		b64 := base64.StdEncoding.EncodeToString([]byte(doc))
		var wrapped strings.Builder // Go's base64 skips newlines
		for i := 0; i < len(b64); i += 16 {
			wrapped.WriteString(b64[i:min(i+16, len(b64))] + "\r\n")
		}
		for _, option := range []string{b64, strings.TrimSpace(wrapped.String())} {
			cases++
			v, kataErr := types.ParseKataVirtualVolume(option)
			ours, printed := ourDecode(t, tool, option)
			if ours != (kataErr == nil) {
				t.Errorf("%s (base64 %q): kata's verdict %v (%v), ours go_valid %v", doc, option, kataErr == nil, kataErr, ours)
				continue
			}
			if kataErr != nil {
				continue
			}
			// What we printed is what Go read (the fields Go has).
			goJSON, _ := json.Marshal(v)
			var goRead map[string]any
			_ = json.Unmarshal(goJSON, &goRead)
			for _, key := range []string{"volume_type", "source", "fs_type", "options", "image_pull", "direct_volume"} {
				if !reflect.DeepEqual(nonEmpty(goRead[key]), nonEmpty(printed[key])) {
					t.Errorf("%s: %s: Go read %v, decode printed %v", doc, key, goRead[key], printed[key])
				}
			}
		}
	}
	t.Logf("katacheck: decode's go_valid is kata's ParseKataVirtualVolume verdict on %d hand-made options", cases)
}

// `v` with "", [] and {} as nil, at any depth (Go's omitempty and a nil
// map marshal them one way, our printer another).
func nonEmpty(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = nonEmpty(e)
		}
		return out
	}
	return v
}
