package extract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pachca-export/pachca-export/internal/secret"
)

// proxyError is a proxy's answer other than 200 to the CONNECT that opens
// the tunnel to source.base_url. net/http reports only the answer's status
// text ("Proxy Authentication Required"), which names neither the proxy
// nor the variable that sets it, and reads like the API's.
type proxyError struct {
	status int
	line   string   // "407 Proxy Authentication Required"
	proxy  *url.URL // with its user info, which Error never prints
	target string   // host:port of the CONNECT
}

// refusedByProxy is the transport's OnProxyConnectResponse: it turns a
// CONNECT answer other than 200 into a *proxyError.
func refusedByProxy(_ context.Context, proxy *url.URL, req *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &proxyError{status: resp.StatusCode, line: resp.Status, proxy: proxy, target: req.Host}
}

// Error names the proxy without its user info, and what to do. A CONNECT
// always tunnels to an https:// URL, whose proxy is HTTPS_PROXY.
func (e *proxyError) Error() string {
	host, _, _ := strings.Cut(e.target, ":")
	msg := fmt.Sprintf("the proxy %s (HTTPS_PROXY) answered %s to the CONNECT to %s", proxyName(e.proxy), e.line, e.target)
	switch {
	case e.status == http.StatusProxyAuthRequired && e.proxy.User == nil:
		return msg + ": it wants a user and password: set HTTPS_PROXY to http://USER:PASSWORD@HOST:PORT (special characters percent-encoded)"
	case e.status == http.StatusProxyAuthRequired:
		return msg + fmt.Sprintf(": it refused the user %q and the password in HTTPS_PROXY: check them (special characters percent-encoded)", e.proxy.User.Username())
	case e.status >= 500:
		return msg + ": it could not reach " + host
	}
	return msg + ": it does not let this machine through to " + host + "; ask its administrators to allow the host, or list the host in NO_PROXY if it is reachable without the proxy"
}

// retryable: a proxy's 5xx is its failure to reach the API, which may pass;
// its 4xx (a refused user, a host its policy blocks) is the answer to every
// try, as a TLS failure is.
func (e *proxyError) retryable() bool { return e.status >= 500 }

// proxyName is the proxy's URL without its user info.
func proxyName(u *url.URL) string { return secret.WithoutUser(u.String()) }

// viaProxy is " (through the proxy http://HOST:PORT, HTTPS_PROXY)" when the
// requests to source.base_url go through a proxy, else "": a connection the
// proxy resets, or a CONNECT it never answers, reads as the API's failure
// otherwise.
func (c *Client) viaProxy() string {
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr.Proxy == nil {
		return ""
	}
	u, err := url.Parse(c.cfg.BaseURL)
	if err != nil {
		return ""
	}
	p, err := tr.Proxy(&http.Request{URL: u})
	if err != nil || p == nil {
		return ""
	}
	return fmt.Sprintf(" (through the proxy %s, %s_PROXY)", proxyName(p), strings.ToUpper(u.Scheme))
}
