package kafkasink

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFramedConn: responses of any size up to maxFrame pass, whatever the
// sizes of the reads that cut them; one announcing more fails the read.
func TestFramedConn(t *testing.T) {
	frame := func(body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		return append(b, body...)
	}
	var stream []byte
	for _, body := range []string{"abc", "", "hello, broker"} {
		stream = append(stream, frame(body)...)
	}
	for _, readSize := range []int{1, 2, 3, 5, 64} {
		client, server := net.Pipe()
		go func() {
			server.Write(stream)
			server.Write([]byte("HTTP/1.1 400 Bad Request\r\n"))
			server.Close()
		}()
		c := &framedConn{Conn: client}
		var got []byte
		buf := make([]byte, readSize)
		var err error
		for err == nil {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
		}
		require.ErrorIs(t, err, errNotKafka, "reads of %d bytes", readSize)
		require.Equal(t, stream, got[:len(stream)], "reads of %d bytes", readSize)
		require.Less(t, len(got), len(stream)+4, "reads of %d bytes: nothing of the 1.2 GB response", readSize)
		require.NotErrorIs(t, err, io.EOF)
		client.Close()
	}
}
