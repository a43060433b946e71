// Package loopback tells the hosts whose traffic never leaves the machine:
// a secret sent there unencrypted is not exposed on a network.
package loopback

import "net"

// Host reports whether host (a name or an IP address, without a port) is
// localhost or a loopback address.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
