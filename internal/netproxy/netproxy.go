// Package netproxy tells a proxy's refusal of a CONNECT apart from the
// server's answers, for the HTTP clients of the API and of S3. net/http
// reports only the proxy's status text ("Proxy Authentication Required"),
// which names neither the proxy nor the variable that sets it.
package netproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Error is a proxy's answer other than 200 to the CONNECT that opens a
// tunnel to an https:// server, or its 407 to a request it was to forward
// to an http:// one.
type Error struct {
	Status  int
	line    string   // "407 Proxy Authentication Required"
	proxy   *url.URL // with its user info, which Error never prints
	target  string   // host:port of the CONNECT, or host of the URL
	forward bool     // a request to forward, not a CONNECT
}

// Refused is an http.Transport's OnProxyConnectResponse: it turns a CONNECT
// answer other than 200 into an *Error, which the client's error wraps.
func Refused(_ context.Context, proxy *url.URL, req *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &Error{Status: resp.StatusCode, line: resp.Status, proxy: proxy, target: req.Host}
}

// Forwarded is the *Error of a 407 to a request for target (an http://
// URL), which only a proxy answers, when tr sends such requests through
// one; nil otherwise.
func Forwarded(tr http.RoundTripper, target string, status int) error {
	t, ok := tr.(*http.Transport)
	if !ok || t.Proxy == nil || status != http.StatusProxyAuthRequired {
		return nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil
	}
	p, err := t.Proxy(&http.Request{URL: u})
	if err != nil || p == nil {
		return nil
	}
	return &Error{Status: status, line: fmt.Sprintf("%d %s", status, http.StatusText(status)), proxy: p, target: u.Host, forward: true}
}

// Error names the proxy without its user info, and what to do. A CONNECT
// always tunnels to an https:// URL, whose proxy is HTTPS_PROXY; a request
// to forward is for an http:// one, whose proxy is HTTP_PROXY.
func (e *Error) Error() string {
	host, _, _ := strings.Cut(e.target, ":")
	variable, what := "HTTPS_PROXY", "the CONNECT to "
	if e.forward {
		variable, what = "HTTP_PROXY", "the request for "
	}
	msg := fmt.Sprintf("the proxy %s (%s) answered %s to %s%s", Name(e.proxy), variable, e.line, what, e.target)
	switch {
	case e.Status == http.StatusProxyAuthRequired && e.proxy.User == nil:
		return msg + fmt.Sprintf(": it wants a user and password: set %s to http://USER:PASSWORD@HOST:PORT (special characters percent-encoded)", variable)
	case e.Status == http.StatusProxyAuthRequired:
		return msg + fmt.Sprintf(": it refused the user %q and the password in %s: check them (special characters percent-encoded)", e.proxy.User.Username(), variable)
	case e.Status >= 500:
		return msg + ": it could not reach " + host
	}
	return msg + ": it does not let this machine through to " + host + "; ask its administrators to allow the host, or list the host in NO_PROXY if it is reachable without the proxy"
}

// Retryable: a proxy's 5xx is its failure to reach the server, which may
// pass; its 4xx (a refused user, a host its policy blocks) is the answer to
// every try.
func (e *Error) Retryable() bool { return e.Status >= 500 }

// Name is the proxy's scheme and host: without its user info, nor a path,
// query or fragment, where the password of a value net/http misread (an
// unencoded / or #) would be.
func Name(u *url.URL) string { return u.Scheme + "://" + u.Host }

// Via is " (through the proxy http://HOST:PORT, HTTPS_PROXY)" when tr sends
// the requests to target through a proxy, else "": a connection the proxy
// resets, or a CONNECT it never answers, reads as the server's failure
// otherwise.
func Via(tr http.RoundTripper, target string) string {
	t, ok := tr.(*http.Transport)
	if !ok || t.Proxy == nil {
		return ""
	}
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	p, err := t.Proxy(&http.Request{URL: u})
	if err != nil || p == nil {
		return ""
	}
	return fmt.Sprintf(" (through the proxy %s, %s_PROXY)", Name(p), strings.ToUpper(u.Scheme))
}

// Parse reads the value of a proxy variable as net/http does (a value
// without a scheme is http://) and returns the proxy's URL without its
// user info, or an error when net/http would not use it as meant: it
// ignores a value that is no URL, and misreads one whose password holds a
// %, #, / or ? not percent-encoded (the proxy's host becomes a piece of
// it). The error quotes nothing of the value, which holds the password.
func Parse(value string) (string, error) {
	u, err := url.Parse(value)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if u2, err2 := url.Parse("http://" + value); err2 == nil {
			u, err = u2, nil
		}
	}
	bad := errors.New("not a proxy URL as Go reads it, http://[USER:PASSWORD@]HOST:PORT: percent-encode the user's and password's special characters (% as %25, # as %23, / as %2F, ? as %3F, @ as %40, a space as %20)")
	if err != nil {
		return "", bad
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return "", bad
	}
	if _, perr := strconv.ParseUint(u.Port(), 10, 16); u.Hostname() == "" || (u.Port() != "" && perr != nil) ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", bad
	}
	return Name(u), nil
}
