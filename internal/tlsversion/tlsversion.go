// Package tlsversion tells a TLS handshake that failed on the protocol
// version, for the clients of the API, S3 and Kafka, which all require TLS
// 1.2 or later.
package tlsversion

import (
	"errors"
	"net"
	"strings"
)

// TooOld reports whether err is a handshake that failed on the protocol
// version: the server's protocol_version alert to a client that offers TLS
// 1.2 and 1.3 only, or a server hello of an older version. The tls package
// exports neither, hence their texts.
func TooOld(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && op.Err.Error() == "tls: protocol version not supported" {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "tls: server selected unsupported protocol version")
}
