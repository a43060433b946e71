// Package secret removes a secret from text that may echo it: a response
// body, an error, a log line. A server or proxy that echoes a request can
// return the token as sent, quoted, JSON-, URL- or HTML-escaped, or in
// base64; every one of these forms is removed, not only the raw text.
package secret

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Mask is what a removed secret reads as.
const Mask = "[REDACTED]"

// MinLen is the length below which a string is not treated as a secret:
// replacing every "ab" of a message would garble it and hide nothing.
const MinLen = 4

// Forms returns s and the encodings of s a server may echo, longest first
// (so that a form containing another is replaced whole); nil when s is
// shorter than MinLen.
func Forms(s string) []string {
	if len(s) < MinLen {
		return nil
	}
	quoted := strconv.Quote(s)
	j, _ := json.Marshal(s) // escapes <, > and & as \u003c...
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	plain := strings.TrimSpace(b.String()) // JSON without the HTML escapes
	forms := []string{
		s,
		quoted[1 : len(quoted)-1],
		string(j[1 : len(j)-1]),
		plain[1 : len(plain)-1],
		url.QueryEscape(s),
		url.PathEscape(s),
		html.EscapeString(s),
		base64.StdEncoding.EncodeToString([]byte(s)),
		base64.URLEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)),
	}
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return slices.Compact(forms)
}

// Scrubber replaces the forms of a set of secrets. Its zero value removes
// nothing; it is safe for concurrent use once built.
type Scrubber struct{ r *strings.Replacer }

// NewScrubber returns a Scrubber of secrets (empty and short ones ignored).
func NewScrubber(secrets ...string) Scrubber {
	var forms []string
	for _, s := range secrets {
		forms = append(forms, Forms(s)...)
	}
	if len(forms) == 0 {
		return Scrubber{}
	}
	// strings.Replacer tries its old strings in argument order at each
	// position: longest first, so that a form is never cut by a shorter one.
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return Scrubber{r: strings.NewReplacer(pairs...)}
}

// String returns text without the secrets.
func (s Scrubber) String(text string) string {
	if s.r == nil {
		return text
	}
	return s.r.Replace(text)
}

// Bytes returns b without the secrets; b itself is not modified.
func (s Scrubber) Bytes(b []byte) []byte {
	if s.r == nil {
		return b
	}
	return []byte(s.r.Replace(string(b)))
}

// Password is the password in the user info of the URL u, "" when none.
func Password(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		pw, _ := p.User.Password()
		return pw
	}
	return ""
}

// Credentials returns the password of the user info of the URL u and
// "user:password", the form a Basic authorization header carries in base64
// (which a proxy's error page may echo); nil when u has no password. A u
// without a scheme ("user:pw@proxy:3128", as a proxy variable may be) is
// read as http://, as net/http reads it.
func Credentials(u string) []string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		p, err = url.Parse("http://" + u)
	}
	if err != nil || p.User == nil {
		return nil
	}
	pw, ok := p.User.Password()
	if !ok || pw == "" {
		return nil
	}
	return []string{pw, p.User.Username() + ":" + pw}
}

// WithoutUser is the URL u without its user and password (u itself when it
// has none or does not parse): credentials do not define what a URL names.
func WithoutUser(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = nil
	return p.String()
}

// URL returns raw for display: with the password of its userinfo as xxxxx
// (url.URL.Redacted), else unchanged, so that a URL without credentials
// reads exactly as configured.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	return u.Redacted()
}
