package kafkasink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// maxFrame bounds the size a broker's response may announce: a producer's
// responses (metadata of one topic, produce acknowledgements) are small.
// kafka-go trusts the size and decodes that much, so that another
// service's answer on the port ("HTTP/1.1 400" reads as 1.2 GB) grew the
// heap by gigabytes before the deadline ended the request.
const maxFrame = 64 << 20

// errNotKafka is a response whose size no Kafka broker would announce.
var errNotKafka = errors.New("did not answer as Kafka (another service on this port?)")

// dialFramed dials as kafka-go's own dialer does, and checks the size that
// starts every response of the connection (see framedConn). For plain-text
// connections only: under TLS the bytes read here are TLS records, and
// another service's answer fails the handshake.
func dialFramed(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

// framedConn follows the Kafka framing of what it reads (each response is
// a 4-byte big-endian size, then that many bytes) and fails a read that
// starts a response larger than maxFrame. Used by one reader at a time, as
// kafka-go reads a connection.
type framedConn struct {
	net.Conn
	size  [4]byte
	nsize int   // bytes of the next size read so far
	left  int64 // bytes of the current response not read yet
}

func (c *framedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if c.left > 0 {
			k := min(int64(len(b)), c.left)
			c.left -= k
			b = b[k:]
			continue
		}
		c.size[c.nsize] = b[0]
		c.nsize++
		b = b[1:]
		if c.nsize == len(c.size) {
			c.nsize = 0
			size := int32(binary.BigEndian.Uint32(c.size[:]))
			if size < 0 || size > maxFrame {
				return 0, fmt.Errorf("%s %w", c.RemoteAddr(), errNotKafka)
			}
			c.left = int64(size)
		}
	}
	return n, err
}
