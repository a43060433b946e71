package transform

import "testing"

func TestDrop(t *testing.T) {
	const own = "pachca-export (reader 0123456789abcdef)"
	read := func(agent string, valid bool) *Record {
		return &Record{EventKey: AccessedKey, UserAgent: NullString{Valid: valid, Str: agent}}
	}
	for _, tc := range []struct {
		name string
		d    Drop
		r    *Record
		want bool
	}{
		{"own read", NewDrop(nil, own), read(own, true), true},
		{"another reader's, same tool", NewDrop(nil, own), read("pachca-export (reader ffffffffffffffff)", true), false},
		{"a script's read", NewDrop(nil, own), read("curl/8.5.0", true), false},
		{"a read with no user agent", NewDrop(nil, own), read("", false), false},
		{"own reads kept", NewDrop(nil, ""), read(own, true), false},
		{"another key with the agent", NewDrop(nil, own), &Record{EventKey: "user_login", UserAgent: NullString{Valid: true, Str: own}}, false},
		{"a dropped key", NewDrop([]string{"user_login"}, ""), &Record{EventKey: "user_login"}, true},
		{"every read dropped", NewDrop([]string{AccessedKey}, ""), read("curl/8.5.0", true), true},
	} {
		if got := tc.d.Dropped(tc.r); got != tc.want {
			t.Errorf("%s: Dropped = %v, want %v", tc.name, got, tc.want)
		}
	}
}
